"""Ceilometer API v2 (up to Pike): meter samples, one stream per meter."""

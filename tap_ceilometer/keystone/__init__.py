"""Keystone's projects, domains and users: the names a BI tool shows beside the ids."""

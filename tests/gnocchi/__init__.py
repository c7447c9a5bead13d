"""The Gnocchi tier: tests against a real Gnocchi 4.7.1 (and the conformance Keystone)."""

"""tap-ceilometer: a Singer tap for OpenStack metering data (Ceilometer API v2)."""

"""Gnocchi (Ceilometer's storage since Queens): measures per metric name, and its dimensions."""

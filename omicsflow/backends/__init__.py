"""Backends: where an attempt's pipeline actually runs."""

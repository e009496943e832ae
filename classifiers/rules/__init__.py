"""Deterministic classification rules. `registry.RULES` is the ordered list; each rule module
documents the platform texts it reads."""

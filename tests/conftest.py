"""Shared test configuration. Integration fixtures live next to the tests that use them."""

"""Helpers that only the test suite uses (never imported by the running portal)."""

"""Helpers shared by the tests (launchers, waiting on conditions)."""

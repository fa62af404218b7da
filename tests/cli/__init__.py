"""Tests of the `pilothouse` command line and the Python SDK."""

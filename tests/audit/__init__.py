"""Tests of the hash-chained audit log."""

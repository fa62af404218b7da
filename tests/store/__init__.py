"""Tests of the store: migrations, repositories and the trace sink."""

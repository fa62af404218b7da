"""The `pilothouse` command line: one module per command group."""

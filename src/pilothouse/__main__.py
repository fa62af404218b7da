"""`python -m pilothouse` runs the CLI."""

from pilothouse.cli.main import main

main()

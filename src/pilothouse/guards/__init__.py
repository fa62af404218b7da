"""Runtime guards: scanners that inspect text at inference time, and the policies that decide what runs.

`scanner.py` is the protocol every scanner implements; `registry.py` finds scanners (built in, or plugins
through the `pilothouse.scanners` entry point group).
"""

"""Personal data: the `pii` scanner (`scanner.py`), one module per family of detectors, and the span
redaction (`redaction.py`) that the policy engine and trace storage reuse."""

from pilothouse.guards.pii.redaction import redact
from pilothouse.guards.pii.scanner import ENTITIES, PiiScanner

__all__ = ["ENTITIES", "PiiScanner", "redact"]

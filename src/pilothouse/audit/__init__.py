"""The append-only, hash-chained audit log, its signed checkpoints and their verification."""

from pilothouse.audit.chain import AuditEvent, BrokenLink, append_event, list_events, verify_chain
from pilothouse.audit.checkpoints import AuditSetup, Checkpoint, write_checkpoint
from pilothouse.audit.verification import AuditReport, verify_log

__all__ = [
    "AuditEvent",
    "AuditReport",
    "AuditSetup",
    "BrokenLink",
    "Checkpoint",
    "append_event",
    "list_events",
    "verify_chain",
    "verify_log",
    "write_checkpoint",
]

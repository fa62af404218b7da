"""The append-only, hash-chained audit log."""

from pilothouse.audit.chain import AuditEvent, BrokenLink, append_event, list_events, verify_chain

__all__ = ["AuditEvent", "BrokenLink", "append_event", "list_events", "verify_chain"]

"""Prompt-injection and jailbreak detection: rules (`heuristics`), a learned classifier (`classifier`), the
indirect-mode reading of documents and tool results (`indirect`: `address` rules over segments and the
hidden or decoded `views`), all layered in `layered` (scanner `injection`, the one policies use). See
docs/guards-injection.md."""

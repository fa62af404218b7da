"""Prompt-injection and jailbreak detection: rules (`heuristics`), a learned classifier (`classifier`), and the
two layered (`layered`, scanner `injection`, the one policies use). See docs/guards-injection.md."""

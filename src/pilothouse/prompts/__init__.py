"""Prompts as production code, in three packages by job: `registry` (prompt files, versions, labels),
`testing` (scenario tests of a version) and `rollout` (gated promotion, canaries, per-version statistics).

`pilothouse.prompts.get(name, label=...)` fetches a version for use in your own code; it is part of the
client (`pilothouse/sdk/prompt_fetch.py`), exported here as the documented way to reach it.
"""

from pilothouse.prompts.registry.templates import VariableError
from pilothouse.sdk.prompt_fetch import Prompt, clear_cache, get

__all__ = ["Prompt", "VariableError", "clear_cache", "get"]

"""Prompts as production code: a versioned registry, prompt files in git, labels, and the SDK.

`pilothouse.prompts.get(name, label=...)` fetches a version for use in your own code (see `sdk.py`);
the registry itself (`registry.py`) is used by the server.
"""

from pilothouse.prompts.sdk import Prompt, clear_cache, get
from pilothouse.prompts.templates import VariableError

__all__ = ["Prompt", "VariableError", "clear_cache", "get"]

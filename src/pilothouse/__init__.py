"""Pilothouse: an LLMOps platform with an OpenAI-compatible gateway at its core.

The public Python surface is small on purpose: the HTTP client SDK and the version.
"""

from pilothouse.sdk import Pilothouse, PilothouseError

__version__ = "0.1.0"

__all__ = ["Pilothouse", "PilothouseError", "__version__"]

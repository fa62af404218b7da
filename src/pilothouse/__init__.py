"""Pilothouse: an LLMOps platform with an OpenAI-compatible gateway at its core.

The public Python surface is small on purpose: the HTTP client SDK, the tracing SDK for applications
(`observe`, `span`, `update_trace`, `wrap_openai`, `configure`, `flush`), `evaluate` (your own function run
over a dataset and scored by the server) and the version.
"""

from pilothouse.sdk import Pilothouse, PilothouseError
from pilothouse.sdk.evaluate import evaluate
from pilothouse.sdk.tracing import configure, flush, observe, span, update_trace, wrap_openai

__version__ = "0.1.0"

__all__ = [
    "Pilothouse",
    "PilothouseError",
    "__version__",
    "configure",
    "evaluate",
    "flush",
    "observe",
    "span",
    "update_trace",
    "wrap_openai",
]

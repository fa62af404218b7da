"""What every part of the benchmark shares: paths, keys, the request it sends, its error and its log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BENCH_DIR.parent

MODEL = "bench-model"
PROMPT = "Say hello in five words."
CHAT_PATH = "/v1/chat/completions"

DIRECT_KEY = "x"  # the upstream takes any key
LITELLM_MASTER_KEY = "sk-bench-litellm-master-key"
PILOTHOUSE_ADMIN_KEY = "ph-bench-admin-key-0123456789abcdef"

# Other processes using more than this share of all CPUs during a run skew its numbers.
BUSY_THRESHOLD_PCT = 10.0


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def chat_body() -> dict[str, Any]:
    """The chat-completions request every target gets, from the readiness check and from wrk."""
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 16,
        "temperature": 0,
    }

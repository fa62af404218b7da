"""Build `src/pilothouse/gateway/pricing_data.json` from the shared LiteLLM-format price reference.

Usage (from the repository root):

    python scripts/build_pricing.py [--reference PATH] [--output PATH] [--version YYYY-MM-DD]

What is kept: chat and embedding models of four providers, under one canonical provider name each:

| LiteLLM `litellm_provider`  | kept as     | which entries                                       |
|-----------------------------|-------------|-----------------------------------------------------|
| `openai`                    | `openai`    | mode `chat` and `embedding`                         |
| `anthropic`                 | `anthropic` | mode `chat`                                         |
| `gemini` (Gemini API)       | `google`    | mode `chat` and `embedding`                         |
| `vertex_ai-language-models` | `google`    | ids starting `gemini-`, only where `gemini` has none |
| `mistral`                   | `mistral`   | mode `chat` and `embedding`                         |

Left out on purpose: `text-completion-openai` (legacy completions-only models, which our chat gateway cannot
call), OpenAI `responses`-mode models (Responses API only), image/audio/moderation modes, and the
third-party models Vertex AI hosts. Provider prefixes in keys (`openai/`, `anthropic/`, `gemini/`,
`mistral/`) are stripped; when two keys give the same model id, the Gemini API entry beats the Vertex AI
one and the unprefixed key beats the prefixed one, and any price difference is printed to stderr.

Prices become exact decimal strings per 1M tokens: `Decimal(repr(float)) * 1_000_000`, normalized, so
1.5e-07 gives "0.15" with no binary-float residue. The output is deterministic (sorted keys), so running
the script again on the same reference gives the same bytes; the version defaults to the newest release
date found in the reference's model ids (the snapshot is no older than that), and `source` carries the
reference's SHA-256 so two references with the same version still differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REFERENCE = REPO_ROOT.parent / "shared" / "data" / "pricing" / "model_prices.json"
DEFAULT_OUTPUT = REPO_ROOT / "src" / "pilothouse" / "gateway" / "pricing_data.json"
SOURCE = "LiteLLM model prices and context windows (AgentOps-AI/tokencost, tokencost/model_prices.json)"

# litellm_provider -> (canonical provider, rank: lower wins when two keys give the same model id)
PROVIDERS: dict[str, tuple[str, int]] = {
    "openai": ("openai", 0),
    "anthropic": ("anthropic", 0),
    "gemini": ("google", 0),
    "vertex_ai-language-models": ("google", 1),
    "mistral": ("mistral", 0),
}
MODES = {"chat": "chat", "embedding": "embedding"}
PREFIXES = ("openai/", "anthropic/", "gemini/", "mistral/")
MILLION = Decimal(1_000_000)
_DATE = re.compile(r"(?<!\d)(20\d\d)-?(0[1-9]|1[0-2])-?(0[1-9]|[12]\d|3[01])(?!\d)")


@dataclass(frozen=True)
class Candidate:
    key: str
    rank: tuple[int, int, str]
    entry: dict[str, Any]


def per_million(value: Any) -> str | None:
    """A per-token price (JSON float or int) as an exact decimal string per 1M tokens."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"price {value!r} is not a number")
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not exact.is_finite() or exact < 0:
        raise ValueError(f"price {value!r} is not a finite non-negative number")
    text = format((exact * MILLION).normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def model_id(key: str) -> str:
    for prefix in PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _wanted(key: str, entry: dict[str, Any]) -> tuple[str, str] | None:
    """(canonical provider, model id) if this reference entry belongs in our file."""
    litellm_provider = entry.get("litellm_provider")
    if litellm_provider not in PROVIDERS or entry.get("mode") not in MODES:
        return None
    provider, _ = PROVIDERS[litellm_provider]
    model = model_id(key)
    if litellm_provider == "vertex_ai-language-models" and not model.startswith("gemini-"):
        return None  # MedLM and other non-Gemini models Vertex AI serves
    return provider, model


def convert(entry: dict[str, Any], provider: str, model: str) -> dict[str, Any] | None:
    """One output record, or None when the reference gives no input or output price."""
    mode = MODES[entry["mode"]]
    input_price = per_million(entry.get("input_cost_per_token"))
    output_price = per_million(entry.get("output_cost_per_token"))
    if mode == "embedding" and output_price is None:
        output_price = "0"  # embeddings produce no output tokens
    if input_price is None or output_price is None:
        return None
    return {
        "provider": provider,
        "model": model,
        "input": input_price,
        "output": output_price,
        "cached_input": per_million(entry.get("cache_read_input_token_cost")),
        "context_window": _positive_int(entry.get("max_input_tokens")),
        "max_output_tokens": _positive_int(entry.get("max_output_tokens")),
        "mode": mode,
    }


def reference_version(reference: dict[str, Any]) -> str:
    """The newest YYYY-MM-DD (or YYYYMMDD) release date found in the reference's model ids."""
    dates = {"-".join(match.groups()) for key in reference for match in _DATE.finditer(key)}
    if not dates:
        raise ValueError("no dated model id in the reference: pass --version")
    return max(dates)


def build(reference_bytes: bytes, version: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """The output document and a list of notes (conflicts, skipped entries) for stderr."""
    reference: dict[str, Any] = json.loads(reference_bytes)
    notes: list[str] = []
    candidates: dict[tuple[str, str], list[Candidate]] = {}
    for key, entry in reference.items():
        if not isinstance(entry, dict):
            continue
        wanted = _wanted(key, entry)
        if wanted is None:
            continue
        rank = (PROVIDERS[entry["litellm_provider"]][1], int(model_id(key) != key), key)
        candidates.setdefault(wanted, []).append(Candidate(key, rank, entry))

    models: dict[str, dict[str, Any]] = {}
    for (provider, model), found in sorted(candidates.items()):
        found.sort(key=lambda candidate: candidate.rank)
        records = [(c.key, convert(c.entry, provider, model)) for c in found]
        chosen_key, chosen = records[0]
        if chosen is None:
            notes.append(f"skipped {chosen_key}: no input or output price in the reference")
            continue
        for other_key, other in records[1:]:
            if other is not None and other != chosen:
                diff = ", ".join(
                    f"{field} {chosen[field]} vs {other[field]}"
                    for field in ("input", "output", "cached_input", "context_window", "max_output_tokens")
                    if chosen[field] != other[field]
                )
                notes.append(f"{provider}/{model}: kept {chosen_key} over {other_key} ({diff})")
        models[f"{provider}/{model}"] = chosen

    digest = hashlib.sha256(reference_bytes).hexdigest()
    document = {
        "version": version or reference_version(reference),
        "source": f"{SOURCE}, sha256 {digest}",
        "currency": "USD",
        "unit": "per 1M tokens",
        "models": models,
    }
    return document, notes


def render(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--version", help="YYYY-MM-DD (default: newest model date in the reference)")
    parser.add_argument("--quiet", action="store_true", help="print no notes or summary")
    args = parser.parse_args(argv)
    if args.version is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", args.version):
        parser.error("--version must be YYYY-MM-DD")

    document, notes = build(args.reference.read_bytes(), args.version)
    args.output.write_bytes(render(document))
    if not args.quiet:
        for note in notes:
            print(note, file=sys.stderr)
        counts: dict[str, int] = {}
        for record in document["models"].values():
            label = f"{record['provider']} {record['mode']}"
            counts[label] = counts.get(label, 0) + 1
        summary = ", ".join(f"{label}: {n}" for label, n in sorted(counts.items()))
        print(f"wrote {args.output} ({len(document['models'])} models; {summary})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Reading a judge's verdict out of free text.

The judge is asked for one JSON object `{"score": N, "reason": "..."}`. Small models wrap it in prose or code
fences, use single quotes, write `Score: 4/5`, or run out of tokens inside the object (`{"score": 4, "reason":
"...`); those are read. What cannot be read, or a score outside the scale, raises JudgeParseError with what was
wrong, so the caller retries (telling the model what was wrong) and finally reports a failed judgement: never a
silent zero.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

__all__ = ["JudgeParseError", "Verdict", "parse_verdict"]

_OBJECT = re.compile(r"\{[^{}]*\}", re.DOTALL)
_SCORE_LINE = re.compile(r"\bscore\b['\"]?\s*[:=]?\s*(-?\d+(?:\.\d+)?)(?:\s*/\s*\d+)?", re.IGNORECASE)


class JudgeParseError(ValueError):
    """The judge's answer holds no usable verdict; the message says why (it is shown to the judge on retry)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    score: float
    reason: str


def _in_scale(value: float, low: int, high: int) -> float:
    if not low <= value <= high:
        raise JudgeParseError(f"the score {value:g} is outside the scale {low} to {high}")
    return value


def parse_verdict(text: str, *, low: int, high: int) -> Verdict:
    for match in _OBJECT.finditer(text):
        raw = match.group(0)
        for candidate in (raw, raw.replace("'", '"')):
            try:
                found = json.loads(candidate)
            except json.JSONDecodeError:
                continue
            if isinstance(found, dict) and "score" in found:
                score = found["score"]
                if isinstance(score, bool) or not isinstance(score, int | float | str):
                    raise JudgeParseError(f"the score must be a number from {low} to {high}, got {score!r}")
                try:
                    value = float(score)
                except ValueError:
                    raise JudgeParseError(f"the score must be a number from {low} to {high}, got {score!r}") from None
                return Verdict(_in_scale(value, low, high), str(found.get("reason", "")).strip())
    line = _SCORE_LINE.search(text)
    if line:
        return Verdict(_in_scale(float(line.group(1)), low, high), text.strip()[:500])
    shown = text.strip()[:120] or "(nothing)"
    raise JudgeParseError(f'no verdict found in {shown!r}: answer with one JSON object {{"score": N, "reason": "..."}}')

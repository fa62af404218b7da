"""The shape of a guard policy file (YAML), validated with pydantic.

A policy says which scanners run on a call's input (the messages on their way to the model) and output (its
answer), with what threshold and what action, for which calls (`scope`), and how trace content is redacted
before it is stored (`storage`). Example (`examples/policies/redact-pii.yaml`):

    name: redact-pii
    description: PII and secrets never reach the model, the caller's answer or the stored traces.
    scope: {routes: [chat]}
    input:
      - {scanner: pii, action: redact}
    output:
      - {scanner: pii, action: redact}
    storage: {mode: mask, scanners: [pii, secrets]}

A policy applies to the project of the key that pushed it; `scope` narrows it to some keys (ids), models
(public names), prompts (names) or routes (`chat`, `embeddings`); a list left out matches everything.
`mode: shadow` evaluates every rule and records what it would have done, without acting (safe rollout).
Versions live in the store (`store/policies.py`): pushing a changed body makes a new one.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Action = Literal["block", "redact", "flag", "shadow"]
"""`block`: refuse the call (input) or the answer (output) with a 400 `guard_blocked`; `redact`: replace what was
found and go on; `flag`: go on, and record the hit on the trace; `shadow`: record only (never acted on)."""

Route = Literal["chat", "embeddings"]
StorageMode = Literal["mask", "hash", "drop"]
"""How found content is kept in stored traces: `mask` (the scanner's mask, e.g. `<EMAIL_ADDRESS>`), `hash`
(`<KIND:sha256 prefix>`, so equal values still correlate) or `drop` (the whole text replaced by a note)."""

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scope(_Strict):
    """Which calls of the project a policy applies to; a list left out (null) matches every call."""

    keys: tuple[str, ...] | None = Field(default=None, description="API key ids (`key_...`).")
    models: tuple[str, ...] | None = Field(default=None, description="Public model names asked for.")
    prompts: tuple[str, ...] | None = Field(default=None, description="Prompt names (`prompt:NAME@REF` calls).")
    routes: tuple[Route, ...] | None = Field(default=None, description="`chat`, `embeddings`.")

    def matches(self, *, key_id: str | None, model: str | None, prompt: str | None, route: str) -> bool:
        checks = ((self.keys, key_id), (self.models, model), (self.prompts, prompt), (self.routes, route))
        return all(allowed is None or value in allowed for allowed, value in checks)


class Rule(_Strict):
    """One scanner, its options, the score from which it counts as a hit, and what a hit does."""

    scanner: str = Field(min_length=1, description="A registered scanner name (`pilothouse policy scanners`).")
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the scanner.")
    threshold: float = Field(default=0.5, ge=0.0, le=1.0, description="A verdict scoring at least this is a hit.")
    action: Action = "block"


class StorageRule(_Strict):
    """How the content of this policy's calls is redacted before their traces are stored (or exported)."""

    mode: StorageMode = "mask"
    scanners: tuple[str, ...] = Field(min_length=1, description="Scanners whose findings are redacted.")
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Options per scanner name (default: the scanner's own defaults)."
    )


class Policy(_Strict):
    """A whole policy file."""

    name: str = Field(pattern=NAME_PATTERN, description="Lower case letters, digits, `.`, `_`, `-`.")
    description: str = ""
    mode: Literal["enforce", "shadow"] = "enforce"
    """`shadow`: every rule is evaluated and recorded with the action it would take, none is acted on."""
    scope: Scope = Field(default_factory=Scope)
    input: tuple[Rule, ...] = ()
    output: tuple[Rule, ...] = ()
    storage: StorageRule | None = None

    @field_validator("input", "output", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return () if value is None else value

    def scanner_names(self) -> set[str]:
        """Every scanner the policy uses."""
        names = {r.scanner for r in (*self.input, *self.output)}
        return names | set(self.storage.scanners if self.storage else ())

"""One dataset item, validated, and the canonical form that versions hash.

An item is what an experiment feeds a variant and what metrics compare against:

- `input`: the variables of a prompt template (an object), a list of chat messages, or a plain text;
- `expected`: the reference output (any JSON value; metrics with no explicit value compare against it);
- `context`: reference context (retrieved passages) for RAG metrics: a text or a list of texts;
- `metadata`: free-form object (where the item came from, tags, difficulty ...);
- `split`: the split it belongs to (`train`, `test`, ...), or none;
- `id`: a stable key, given or derived from the content, unique within a version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "ITEM_ID_PATTERN",
    "MAX_ITEMS",
    "MAX_ITEM_BYTES",
    "SPLIT_PATTERN",
    "DatasetItem",
    "ItemError",
    "Message",
    "canonical",
    "content_hash",
    "item_key",
    "validate_items",
    "version_hash",
]

MAX_ITEMS = 100_000
"""Items in one version."""
MAX_ITEM_BYTES = 256 * 1024
"""The canonical JSON of one item."""
ITEM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$"
SPLIT_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"


class ItemError(ValueError):
    """A bad item: the message names it (its position, 1-based, or the file line) and what to fix."""

    def __init__(self, message: str, *, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str = Field(max_length=MAX_ITEM_BYTES)
    name: str | None = Field(default=None, max_length=200)


class DatasetItem(BaseModel):
    """An item as the API and files take it (unknown fields are refused, so a typo is not silently dropped)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: str | None = Field(default=None, pattern=ITEM_ID_PATTERN, description="A stable key (default: from content).")
    input: dict[str, Any] | list[Message] | str = Field(
        description="Template variables (object), chat messages (list of {role, content}) or a plain text."
    )
    expected: Any = Field(default=None, description="The reference output; metrics compare against it.")
    context: str | list[str] | None = Field(default=None, description="Reference context for RAG metrics.")
    metadata: dict[str, Any] = Field(default_factory=dict)
    split: str | None = Field(default=None, pattern=SPLIT_PATTERN)

    @field_validator("input")
    @classmethod
    def _input_not_empty(cls, value: dict[str, Any] | list[Message] | str) -> dict[str, Any] | list[Message] | str:
        if isinstance(value, str) and not value.strip():
            raise ValueError("input is an empty text")
        if isinstance(value, list) and not value:
            raise ValueError("input is an empty message list")
        if isinstance(value, dict):
            bad = [k for k in value if not k or not k.replace("_", "a").isalnum()]
            if bad:
                raise ValueError(f"variable names must be letters, digits and _ (got {bad[0]!r})")
        return value


def canonical(item: DatasetItem) -> dict[str, Any]:
    """The stored form: only the fields that are set, messages as plain objects, `id` included."""
    body = item.model_dump(mode="json", exclude_none=True)
    if not body.get("metadata"):
        body.pop("metadata", None)
    if isinstance(body.get("input"), list):
        body["input"] = [{k: v for k, v in m.items() if v is not None} for m in body["input"]]
    return body


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def item_key(body: Mapping[str, Any]) -> str:
    """The item's id: the one given, else the first 16 hex digits of the hash of its content without split."""
    given = body.get("id")
    if isinstance(given, str):
        return given
    content = {k: v for k, v in body.items() if k not in ("id", "split")}
    return hashlib.sha256(_dumps(content)).hexdigest()[:16]


def content_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(_dumps(body)).hexdigest()


def version_hash(hashes: Sequence[str]) -> str:
    """A version's hash: of its items' hashes in order (two pushes of the same list make one version)."""
    digest = hashlib.sha256()
    for h in hashes:
        digest.update(h.encode())
    return digest.hexdigest()


def _where(error: ValidationError) -> str:
    first = error.errors()[0]
    place = ".".join(str(p) for p in first["loc"]) or "item"
    return f"{place}: {first['msg']}"


def validate_items(raw: Iterable[Any], *, label: str = "item") -> list[dict[str, Any]]:
    """Validate raw items (dicts) into canonical bodies, each with its `id`.

    ItemError names the first bad item (`label` N, 1-based: "item 3" or "line 3") and the field. Ids must be
    unique within the list; an item without one gets its content key, so two identical items are a duplicate.
    """
    bodies: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for position, value in enumerate(raw, start=1):
        if len(bodies) >= MAX_ITEMS:
            raise ItemError(f"a version holds at most {MAX_ITEMS} items", position=position)
        if not isinstance(value, dict):
            raise ItemError(f"{label} {position}: an item is a JSON object", position=position)
        try:
            item = DatasetItem.model_validate(value)
        except ValidationError as exc:
            raise ItemError(f"{label} {position}: {_where(exc)}", position=position) from None
        body = canonical(item)
        body["id"] = item_key(body)
        if len(_dumps(body)) > MAX_ITEM_BYTES:
            raise ItemError(f"{label} {position}: larger than {MAX_ITEM_BYTES // 1024} KiB", position=position)
        first = seen.setdefault(body["id"], position)
        if first != position:
            raise ItemError(
                f"{label} {position}: id {body['id']!r} was already used by {label} {first} "
                "(identical items without an id count as duplicates; give them distinct ids)",
                position=position,
            )
        bodies.append(body)
    return bodies

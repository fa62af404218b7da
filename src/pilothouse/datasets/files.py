"""Dataset files in and out: JSONL (lossless) and CSV (for spreadsheets).

JSONL: one item per line, as `items.DatasetItem` describes it; blank lines are skipped.

CSV (a header row, UTF-8): `id`, `input` (a plain-text input) or `input.NAME` columns (template variables, one
per column), `expected`, `expected_json` (a JSON value, for a non-text expected output), `context` (a text, or a
JSON array of texts), `metadata` (a JSON object) and/or `metadata.KEY` columns (texts), `split`. Empty cells
count as absent. Export writes CSV only when it can be read back to the same items (text inputs or text
variables); chat messages and non-text variables need JSONL, and the error says which item has them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import orjson

from pilothouse.datasets.items import ItemError, validate_items

__all__ = ["FileFormat", "detect_format", "dump_csv", "dump_jsonl", "load_csv", "load_file", "load_jsonl"]

FileFormat = Literal["jsonl", "csv"]
_FIXED = ("id", "input", "expected", "expected_json", "context", "metadata", "split")


def detect_format(path: Path, given: str | None = None) -> FileFormat:
    name = (given or path.suffix.lstrip(".")).lower()
    if name in ("jsonl", "ndjson", "json"):
        return "jsonl"
    if name == "csv":
        return "csv"
    raise ItemError(f"{path.name}: cannot tell the format from the name; use .jsonl or .csv (or --format)")


def _jsonl_rows(text: str) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ItemError(f"line {number}: not valid JSON ({exc})", position=number) from None


def load_jsonl(text: str) -> list[dict[str, Any]]:
    """Validated items of a JSONL text; ItemError names the line."""
    rows = list(_jsonl_rows(text))
    try:
        return validate_items((row for _, row in rows), label="item")
    except ItemError as exc:
        if exc.position is None:
            raise
        line = rows[exc.position - 1][0]
        raise ItemError(str(exc).replace(f"item {exc.position}", f"line {line}", 1), position=line) from None


def _json_cell(value: str, column: str, line: int) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        raise ItemError(f"line {line}: column {column!r} must hold JSON (got {value[:40]!r})", position=line) from None


def _context_list(cell: str) -> list[str] | None:
    """A `context` cell that holds a JSON array of texts, as a list; None for a plain text."""
    if not cell.startswith("["):
        return None
    try:
        found = orjson.loads(cell)
    except orjson.JSONDecodeError:
        return None
    return found if isinstance(found, list) and all(isinstance(x, str) for x in found) else None


def _csv_item(row: dict[str, str], line: int) -> dict[str, Any]:
    item: dict[str, Any] = {}
    variables = {k[6:]: v for k, v in row.items() if k.startswith("input.") and v != ""}
    if row.get("input", "") != "" and variables:
        raise ItemError(f"line {line}: give either an `input` cell or `input.NAME` cells, not both", position=line)
    if variables:
        item["input"] = variables
    elif row.get("input", "") != "":
        item["input"] = row["input"]
    if row.get("expected", "") != "" and row.get("expected_json", "") != "":
        raise ItemError(f"line {line}: give either `expected` or `expected_json`, not both", position=line)
    if row.get("expected", "") != "":
        item["expected"] = row["expected"]
    elif row.get("expected_json", "") != "":
        item["expected"] = _json_cell(row["expected_json"], "expected_json", line)
    context = row.get("context", "")
    if context:
        item["context"] = _context_list(context) or context
    metadata: dict[str, Any] = {}
    if row.get("metadata", "") != "":
        found = _json_cell(row["metadata"], "metadata", line)
        if not isinstance(found, dict):
            raise ItemError(f"line {line}: column 'metadata' must hold a JSON object", position=line)
        metadata.update(found)
    metadata.update({k[9:]: v for k, v in row.items() if k.startswith("metadata.") and v != ""})
    if metadata:
        item["metadata"] = metadata
    for name in ("id", "split"):
        if row.get(name, "") != "":
            item[name] = row[name]
    return item


def load_csv(text: str) -> list[dict[str, Any]]:
    """Validated items of a CSV text (header row first); ItemError names the line."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    if not header:
        raise ItemError("the CSV file has no header row")
    unknown = [
        c
        for c in header
        if (c not in _FIXED and not c.startswith(("input.", "metadata."))) or c in ("input.", "metadata.")
    ]
    if unknown:
        raise ItemError(
            f"unknown CSV column {unknown[0]!r}; columns are {', '.join(_FIXED)}, input.NAME and metadata.KEY"
        )
    raw: list[tuple[int, dict[str, Any]]] = []
    for row in reader:
        line = reader.line_num
        if None in row:
            raise ItemError(f"line {line}: more cells than header columns", position=line)
        if not any(row.values()):
            continue
        raw.append((line, _csv_item(row, line)))
    try:
        return validate_items((item for _, item in raw), label="item")
    except ItemError as exc:
        if exc.position is None:
            raise
        line = raw[exc.position - 1][0]
        raise ItemError(str(exc).replace(f"item {exc.position}", f"line {line}", 1), position=line) from None


def load_file(path: Path, given: str | None = None) -> list[dict[str, Any]]:
    """Validated items of a `.jsonl` or `.csv` file (or `given` format)."""
    fmt = detect_format(path, given)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ItemError(f"{path}: {exc}") from None
    return load_jsonl(text) if fmt == "jsonl" else load_csv(text)


def dump_jsonl(items: Sequence[dict[str, Any]]) -> str:
    return "".join(orjson.dumps(item).decode() + "\n" for item in items)


def _csv_row(item: dict[str, Any], position: int) -> dict[str, str]:
    row: dict[str, str] = {"id": item["id"]}
    value = item["input"]
    if isinstance(value, str):
        row["input"] = value
    elif isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        row.update({f"input.{k}": v for k, v in value.items()})
    else:
        kind = "chat messages" if isinstance(value, list) else "non-text variables"
        raise ItemError(f"item {position} ({item['id']}) has {kind}; CSV cannot hold them: export JSONL")
    if isinstance(item.get("expected"), str):
        row["expected"] = item["expected"]
    elif "expected" in item:
        row["expected_json"] = orjson.dumps(item["expected"]).decode()
    context = item.get("context")
    if isinstance(context, list):
        row["context"] = orjson.dumps(context).decode()
    elif isinstance(context, str):
        if _context_list(context) is not None:
            raise ItemError(
                f"item {position} ({item['id']}) has a context text that reads as a JSON list: export JSONL"
            )
        row["context"] = context
    if item.get("metadata"):
        row["metadata"] = orjson.dumps(item["metadata"]).decode()
    if item.get("split"):
        row["split"] = item["split"]
    return row


def dump_csv(items: Sequence[dict[str, Any]]) -> str:
    """CSV text that `load_csv` reads back to the same items; ItemError for an item it cannot hold."""
    rows = [_csv_row(item, n) for n, item in enumerate(items, start=1)]
    variables = sorted({k for row in rows for k in row if k.startswith("input.")})
    columns = ["id", "input", *variables, "expected", "expected_json", "context", "metadata", "split"]
    used = [c for c in columns if c == "id" or any(c in row for row in rows)]
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=used, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()

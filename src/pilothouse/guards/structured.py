"""The `json_schema` scanner: a structured answer (`response_format` with a JSON schema) must be JSON that
satisfies the schema (OWASP LLM05, improper output handling: code downstream trusts the shape).

The answer may be wrapped in one Markdown code fence (```json ... ```), as models often do, unless
`allow_fenced` is false. Findings carry where the problem is: the character offset of a parse error, or the
JSON path of each validation error (`$.items[2].price`) with the keyword that failed, never the offending
value (it may be sensitive). Without a schema in the context every answer passes.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from jsonschema import exceptions as schema_errors
from jsonschema import validators

from pilothouse.guards.scanner import Finding, ScanContext, Verdict, clean_verdict

_FENCE = re.compile(r"\A\s*```[ \t]*(?:json|JSON)?[ \t]*\n(?P<body>.*?)\n?```\s*\Z", re.DOTALL)
_CACHE_SIZE = 128


def json_path(path: Iterable[Any]) -> str:
    """`$.items[2].price` for the path ("items", 2, "price")."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(part)):
            out += f".{part}"
        else:
            out += f"[{json.dumps(str(part))}]"
    return out


class JsonSchemaScanner:
    """Options: `allow_fenced` (default true: accept one ```json fence around the JSON), `max_errors`
    (findings per answer, default 20)."""

    name: ClassVar[str] = "json_schema"
    redacts: ClassVar[bool] = False
    conformance_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, *, allow_fenced: bool = True, max_errors: int = 20) -> None:
        if isinstance(max_errors, bool) or not isinstance(max_errors, int) or max_errors < 1:
            raise ValueError("max_errors must be a positive integer")
        self.allow_fenced = bool(allow_fenced)
        self.max_errors = max_errors
        self._validators: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def scan(self, text: str, ctx: ScanContext) -> Verdict:
        if ctx.json_schema is None:
            return clean_verdict(self.name, text, redacts=False)
        try:
            validator = self._validator(ctx.json_schema)
        except schema_errors.SchemaError as exc:
            detail = f"the schema itself is invalid at {json_path(exc.path)}: {exc.validator} {exc.validator_value!r}"
            return Verdict(self.name, 1.0, (Finding("invalid_schema", 0, len(text), 1.0, detail[:300]),))
        body, offset = text, 0
        fenced = _FENCE.match(text) if self.allow_fenced else None
        if fenced:
            body, offset = fenced.group("body"), fenced.start("body")
        try:
            document = json.loads(body)
        except json.JSONDecodeError as exc:
            at = min(len(text), offset + exc.pos)
            return Verdict(self.name, 1.0, (Finding("invalid_json", at, len(text), 1.0, f"not JSON: {exc.msg}"),))
        except RecursionError:
            return Verdict(self.name, 1.0, (Finding("invalid_json", 0, len(text), 1.0, "not JSON: nested too deep"),))
        findings = []
        try:
            errors = sorted(
                validator.iter_errors(document), key=lambda e: (list(map(str, e.absolute_path)), e.validator)
            )
        except RecursionError:
            return Verdict(self.name, 1.0, (Finding("schema_violation", 0, len(text), 1.0, "$: nested too deep"),))
        for error in errors[: self.max_errors]:
            expected = json.dumps(error.validator_value, default=str)
            expected = expected if len(expected) <= 80 else expected[:77] + "..."
            where = json_path(error.absolute_path)
            detail = f"{where}: fails {error.validator!r} ({expected})"
            findings.append(Finding("schema_violation", offset, offset + len(body), 1.0, detail))
        return Verdict(self.name, 1.0 if findings else 0.0, tuple(findings))

    def _validator(self, schema: Mapping[str, Any]) -> Any:
        """A validator for `schema` (its draft from `$schema`, 2020-12 by default), checked and kept for the
        most recently used schemas."""
        key = json.dumps(schema, sort_keys=True, default=str)
        with self._lock:
            cached = self._validators.get(key)
            if cached is not None:
                self._validators.move_to_end(key)
                return cached
        cls = validators.validator_for(schema, default=validators.Draft202012Validator)
        cls.check_schema(dict(schema))
        validator = cls(schema)
        with self._lock:
            self._validators[key] = validator
            while len(self._validators) > _CACHE_SIZE:
                self._validators.popitem(last=False)
        return validator

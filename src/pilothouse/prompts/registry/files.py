"""Prompt files: YAML, or Markdown with YAML front matter, to and from canonical templates.

A folder of prompt files lives in the user's repository (see docs/prompts.md for the schema). Parsing a file
gives its canonical template (what a version stores and its content hash covers) and keeps the file's text,
so `prompt pull` can write it back byte for byte. Comments and formatting do not change the hash.

Markdown: the front matter holds everything but the template; the body is the template. Headings
`## system`, `## developer`, `## user`, `## assistant` (alone on their line, any case) start the messages of a
chat prompt; a body without such headings is one user message, or the text of a text prompt (`type: text`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
import yaml

from pilothouse.prompts.registry import safe_yaml
from pilothouse.prompts.registry.refs import check_name
from pilothouse.prompts.registry.templates import TemplateError, check_template, normalize_variables
from pilothouse.prompts.testing.scenarios import ScenarioFileError, parse_cases

CONFIG_KEYS = (
    "model",
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "seed",
    "tools",
    "tool_choice",
    "response_format",
    "rag",
)
CHAT_ROLES = ("system", "developer", "user", "assistant")
MAX_PROMPT_SIZE = 256 * 1024
"""The largest prompt or test file (in characters) and the largest JSON (in bytes) of what it defines: what a
version stores is bounded, and YAML aliases may not expand a file past it either."""
_FILE_KEYS = {"name", "description", "type", "messages", "text", "template", "variables", "message", *CONFIG_KEYS}
_MESSAGE_KEYS = {"role", "content", "name"}
FORMATS = {".yaml": "yaml", ".yml": "yml", ".md": "md"}
TEST_SUFFIXES = (".tests.yaml", ".tests.yml")
_HEADING = re.compile(r"^##[ \t]+(system|developer|user|assistant)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?\r?\n)?(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)


class PromptFileError(ValueError):
    """A prompt or test file is invalid; the message starts with the file's path (and line when known)."""

    def __init__(self, path: str, message: str, *, line: int | None = None) -> None:
        where = f"{path} line {line}" if line else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        self.message = f"{where}: {message}"


class PromptTooLarge(PromptFileError):
    """A file, or the template or test cases it defines, is longer than MAX_PROMPT_SIZE characters."""


def _check_size(path: str, what: str, size: int) -> None:
    if size > MAX_PROMPT_SIZE:
        raise PromptTooLarge(
            path,
            f"{what} is too large: {size:,} characters, where prompts and their test files may have at most "
            f"{MAX_PROMPT_SIZE:,} (pass long text in a variable instead)",
        )


@dataclass(frozen=True)
class PromptDefinition:
    """One parsed prompt: its name, canonical template and hash, and the file it came from (if any)."""

    name: str
    template: dict[str, Any]
    content_hash: str
    message: str | None = None
    source_text: str | None = None
    source_format: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class TestSuiteFile:
    """A `<name>.tests.yaml` file: its cases as parsed (a list of mappings) and its text."""

    path: str
    stem: str
    cases: list[dict[str, Any]]
    source_text: str


# -- hashing ----------------------------------------------------------------------------------------------------
def canonical_json(template: dict[str, Any]) -> bytes:
    return orjson.dumps(template, option=orjson.OPT_SORT_KEYS)


def content_hash(template: dict[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON (sorted keys) of the canonical template."""
    return hashlib.sha256(canonical_json(template)).hexdigest()


# -- checks -----------------------------------------------------------------------------------------------------
def _number(config: dict[str, Any], key: str, lo: float, hi: float) -> None:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise TemplateError(f"'{key}' must be a number between {lo:g} and {hi:g}, got {value!r}", where=key)


def normalize_config(data: dict[str, Any]) -> dict[str, Any]:
    """The model configuration of a prompt: the CONFIG_KEYS present (and not null), checked."""
    config = {k: data[k] for k in CONFIG_KEYS if data.get(k) is not None}
    if "model" in config and (not isinstance(config["model"], str) or not config["model"]):
        raise TemplateError("'model' must be a model name such as smollm2-135m", where="model")
    if "temperature" in config:
        _number(config, "temperature", 0, 2)
    if "top_p" in config:
        _number(config, "top_p", 0, 1)
    for key in ("max_tokens", "seed"):
        value = config.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TemplateError(f"'{key}' must be an integer, got {value!r}", where=key)
    if config.get("max_tokens") is not None and config["max_tokens"] < 1:
        raise TemplateError("'max_tokens' must be a positive integer", where="max_tokens")
    stop = config.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop))
    ):
        raise TemplateError("'stop' must be a string or a list of up to 4 strings", where="stop")
    tools = config.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise TemplateError("'tools' must be a list of tool objects", where="tools")
        for i, tool in enumerate(tools):
            fn = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise TemplateError(
                    f"'tools[{i}]' must be {{type: function, function: {{name: ..., parameters: ...}}}}",
                    where=f"tools[{i}]",
                )
    choice = config.get("tool_choice")
    if choice is not None and not (isinstance(choice, str | dict)):
        raise TemplateError("'tool_choice' must be auto, none, required or {type: function, ...}", where="tool_choice")
    fmt = config.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") not in {"text", "json_object", "json_schema"}):
        raise TemplateError(
            "'response_format' must be {type: text | json_object | json_schema, ...}", where="response_format"
        )
    rag = config.get("rag")
    if rag is not None and not isinstance(rag, dict):  # its fields: checked at push (prompts/registry/push.py)
        raise TemplateError(
            "'rag' must be a mapping of retrieval options (collection, k, mode, query, filters, ...)", where="rag"
        )
    return config


def _messages(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise TemplateError("'messages' must be a non-empty list of {role, content}", where="messages")
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise TemplateError(f"'{where}' must be a mapping with 'role' and 'content'", where=where)
        unknown = sorted(set(msg) - _MESSAGE_KEYS)
        if unknown:
            raise TemplateError(f"'{where}' has unknown key(s) {', '.join(map(repr, unknown))}", where=where)
        role = msg.get("role")
        if role not in CHAT_ROLES:
            raise TemplateError(f"'{where}.role' must be one of {', '.join(CHAT_ROLES)}, got {role!r}", where=where)
        content = msg.get("content")
        if not isinstance(content, str):
            raise TemplateError(
                f"'{where}.content' must be a string (quote templates that start with '{{{{')", where=where
            )
        item = {"role": role, "content": content}
        if msg.get("name") is not None:
            item["name"] = str(msg["name"])
        out.append(item)
    return out


def build_template(data: dict[str, Any]) -> tuple[str, dict[str, Any], str | None]:
    """(name, canonical template, commit message) from a file's mapping. Raises TemplateError/ValueError."""
    unknown = sorted(set(data) - _FILE_KEYS)
    if unknown:
        raise TemplateError(
            f"unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(_FILE_KEYS))}",
            where=unknown[0],
        )
    if "name" not in data:
        raise TemplateError("'name' is required (the prompt's name, e.g. support-answer)", where="name")
    name = check_name(data["name"])
    text = data.get("text", data.get("template"))
    if "text" in data and "template" in data:
        raise TemplateError("give 'text' or its alias 'template', not both", where="text")
    kind = data.get("type") or ("text" if text is not None else "chat")
    if kind not in ("chat", "text"):
        raise TemplateError(f"'type' must be chat or text, got {kind!r}", where="type")
    template: dict[str, Any] = {"type": kind}
    if kind == "chat":
        if text is not None:
            raise TemplateError("a chat prompt has 'messages', not 'text' (or set type: text)", where="text")
        template["messages"] = _messages(data.get("messages"))
    else:
        if data.get("messages") is not None:
            raise TemplateError("a text prompt has 'text', not 'messages'", where="messages")
        if not isinstance(text, str):
            raise TemplateError("'text' must be a string: the template of a text prompt", where="text")
        template["text"] = text
    template["variables"] = normalize_variables(data.get("variables"))
    template["config"] = normalize_config(data)
    description = data.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise TemplateError("'description' must be a string", where="description")
        template["description"] = description
    message = data.get("message")
    if message is not None and not isinstance(message, str):
        raise TemplateError("'message' (the commit message) must be a string", where="message")
    check_template(template)
    return name, template, message


def definition(
    data: dict[str, Any],
    *,
    source_text: str | None = None,
    source_format: str | None = None,
    path: str | None = None,
) -> PromptDefinition:
    """A PromptDefinition from a mapping in the file schema (a parsed file, or JSON from the API).
    PromptTooLarge if the mapping or its canonical template is over MAX_PROMPT_SIZE."""
    where = path or str(data.get("name") or "the prompt")
    _check_size(where, "the definition", len(orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS)))
    name, template, message = build_template(data)
    encoded = canonical_json(template)
    _check_size(where, "the template", len(encoded))
    digest = hashlib.sha256(encoded).hexdigest()
    return PromptDefinition(name, template, digest, message, source_text, source_format, path)


# -- reading files ----------------------------------------------------------------------------------------------
def file_format(path: str) -> str | None:
    """`yaml`, `yml` or `md` for a prompt file path; None for test files and anything else."""
    lower = path.lower()
    if lower.endswith(TEST_SUFFIXES):
        return None
    return FORMATS.get(PurePosixPath(lower).suffix)


def is_test_file(path: str) -> bool:
    return path.lower().endswith(TEST_SUFFIXES)


def _yaml_error(path: str, text: str, exc: yaml.YAMLError, offset: int = 0) -> PromptFileError:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 + offset if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    lines = text.splitlines()
    context = getattr(exc, "context_mark", None)
    near = {m.line for m in (mark, context) if m is not None and m.line < len(lines)}
    hint = ""
    if any("{{" in lines[i] for i in near):
        hint = " (quote values that start with '{{', e.g. content: \"{{ question }}\")"
    return PromptFileError(path, f"invalid YAML: {problem}{hint}", line=line)


def _load_yaml(path: str, text: str, offset: int = 0) -> Any:
    try:
        return safe_yaml.load(text, limit=MAX_PROMPT_SIZE)
    except yaml.YAMLError as exc:
        raise _yaml_error(path, text, exc, offset) from None


def _yaml_lines(text: str, offset: int) -> dict[str, int]:
    """The file line (1-based) where each template string of a YAML document starts."""
    out: dict[str, int] = {}
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return out
    if not isinstance(root, yaml.MappingNode):
        return out

    def first_line(node: yaml.Node) -> int:
        block = isinstance(node, yaml.ScalarNode) and node.style in ("|", ">")
        return int(node.start_mark.line) + (2 if block else 1) + offset

    for key, value in root.value:
        if key.value in ("text", "template"):
            out["text"] = first_line(value)
        elif key.value == "messages" and isinstance(value, yaml.SequenceNode):
            for i, item in enumerate(value.value):
                if isinstance(item, yaml.MappingNode):
                    for k, v in item.value:
                        if k.value == "content":
                            out[f"messages[{i}].content"] = first_line(v)
    return out


def _template_error(path: str, exc: TemplateError, lines: dict[str, int]) -> PromptFileError:
    base = lines.get(exc.where or "")
    if base is not None and exc.line is not None:
        return PromptFileError(path, exc.message, line=base + exc.line - 1)
    if base is not None:
        return PromptFileError(path, exc.message, line=base)
    return PromptFileError(path, exc.message)


def _strip_blank_lines(text: str) -> str:
    lines = text.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines).rstrip()


def _markdown(path: str, text: str) -> tuple[dict[str, Any], dict[str, int]]:
    """The file-schema mapping of a Markdown prompt, and the file line of each part of its body."""
    match = _FRONT.match(text)
    if match is None:
        raise PromptFileError(path, "a Markdown prompt starts with YAML front matter between '---' lines", line=1)
    front_text = match.group(1) or ""
    data = _load_yaml(path, front_text, 1)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PromptFileError(path, "the front matter must be a YAML mapping (name: ..., model: ...)", line=2)
    lines = _yaml_lines(front_text, 1)
    body = text[match.end() :]
    body_line = text[: match.end()].count("\n") + 1
    if not body.strip():
        return data, lines
    if any(k in data for k in ("messages", "text", "template")):
        raise PromptFileError(path, "the template is in the body: remove 'messages'/'text' from the front matter")
    headings = list(_HEADING.finditer(body))
    if data.get("type") == "text" or not headings:
        if data.get("type") == "text" and headings:
            raise PromptFileError(path, "a text prompt (type: text) has no '## role' headings")
        key = "text" if data.get("type") == "text" else "messages[0].content"
        lead = len(body) - len(body.lstrip("\r\n"))
        lines[key] = body_line + body[:lead].count("\n")
        content = _strip_blank_lines(body)
        if key == "text":
            data = {**data, "text": content}
        else:
            data = {**data, "messages": [{"role": "user", "content": content}]}
        return data, lines
    before = body[: headings[0].start()]
    if before.strip():
        line = body_line + before[: len(before) - len(before.lstrip())].count("\n")
        raise PromptFileError(
            path, "text before the first '## role' heading: start the body with ## system or ## user", line=line
        )
    messages = []
    for i, heading in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(body)
        chunk = body[heading.end() : end]
        lead = len(chunk) - len(chunk.lstrip("\r\n"))
        lines[f"messages[{i}].content"] = body_line + body[: heading.end()].count("\n") + chunk[:lead].count("\n")
        messages.append({"role": heading.group(1).lower(), "content": _strip_blank_lines(chunk)})
    return {**data, "messages": messages}, lines


def parse_prompt_file(path: str, text: str) -> PromptDefinition:
    """Parse a prompt file's text; `path` decides the format (.yaml, .yml, .md) and appears in errors."""
    fmt = file_format(path)
    if fmt is None:
        raise PromptFileError(path, "not a prompt file: use .yaml, .yml or .md (tests go in NAME.tests.yaml)")
    _check_size(path, "the file", len(text))
    if fmt == "md":
        data, lines = _markdown(path, text)
    else:
        data = _load_yaml(path, text)
        if not isinstance(data, dict):
            raise PromptFileError(path, "a prompt file is a YAML mapping with name, messages (or text), ...")
        lines = _yaml_lines(text, 0)
    try:
        return definition(data, source_text=text, source_format=fmt, path=path)
    except TemplateError as exc:
        raise _template_error(path, exc, lines) from None
    except ValueError as exc:
        raise PromptFileError(path, str(exc)) from None


def test_file_stem(path: str) -> str:
    name = PurePosixPath(path).name
    lower = name.lower()
    for suffix in TEST_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def parse_test_file(path: str, text: str) -> TestSuiteFile:
    """A test file: a YAML list of cases, or a mapping {cases: [...]}. Each case must be a mapping; the
    case schema itself is checked by the scenario runner."""
    _check_size(path, "the file", len(text))
    data = _load_yaml(path, text)
    if isinstance(data, dict) and set(data) == {"cases"}:
        data = data["cases"]
    if data is None:
        data = []
    if not isinstance(data, list):
        raise PromptFileError(path, "a test file is a YAML list of cases, or a mapping {cases: [...]}")
    for i, case in enumerate(data):
        if not isinstance(case, dict):
            raise PromptFileError(path, f"case {i + 1} must be a mapping (variables: ..., assert: ...)")
    try:
        if data:  # the full case schema, so push reports mistakes, not promotion; an empty file is allowed
            parse_cases(data, source=path)
    except ScenarioFileError as exc:
        raise PromptFileError(path, "; ".join(str(p) for p in exc.problems)) from None
    _check_size(path, "the test cases", len(orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS)))
    return TestSuiteFile(path, test_file_stem(path), data, text)


def discover(directory: Path) -> list[Path]:
    """The prompt and test files directly in `directory`, sorted. Markdown files without front matter
    (a README) are not prompts and are left out."""
    found = []
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        if is_test_file(path.name):
            found.append(path)
        elif file_format(path.name) == "md":
            with path.open("rb") as fh:
                if fh.read(3) == b"---":
                    found.append(path)
        elif file_format(path.name) is not None:
            found.append(path)
    return found


# -- writing files ----------------------------------------------------------------------------------------------
class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _variable_spec(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": spec["type"]}
    if spec.get("required", True) != ("default" not in spec):
        out["required"] = spec.get("required", True)
    for key in ("default", "enum", "description"):
        if key in spec:
            out[key] = spec[key]
    return out


def to_mapping(name: str, template: dict[str, Any]) -> dict[str, Any]:
    """The file-schema mapping of a canonical template (what `to_yaml` writes)."""
    data: dict[str, Any] = {"name": name}
    if template.get("description") is not None:
        data["description"] = template["description"]
    config = template.get("config") or {}
    for key in CONFIG_KEYS:
        if key in config:
            data[key] = config[key]
    variables = template.get("variables") or {}
    if variables:
        data["variables"] = {k: _variable_spec(v) for k, v in variables.items()}
    if template.get("type") == "text":
        data["type"] = "text"
        data["text"] = template.get("text", "")
    else:
        data["messages"] = template["messages"]
    return data


def to_yaml(name: str, template: dict[str, Any]) -> str:
    """A YAML prompt file for a canonical template (for versions that have no file text of their own)."""
    text = yaml.dump(
        to_mapping(name, template),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1_000_000,
    )
    return str(text)


def file_name(name: str, source_format: str | None) -> str:
    """The file name `prompt pull` writes a prompt to: NAME.yaml, NAME.yml or NAME.md."""
    return f"{name}.{source_format if source_format in ('yaml', 'yml', 'md') else 'yaml'}"


def test_file_name(name: str) -> str:
    return f"{name}.tests.yaml"

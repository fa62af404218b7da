"""Markdown: sections under their ATX headers (`#` to `######`), the header path kept with each section.

Front matter (`---` ... `---` at the top) is read as `key: value` metadata; fenced code blocks are kept as text
and a `#` inside them is not a header. The first level-1 header is the title.
"""

from __future__ import annotations

import re

from pilothouse.rag.chunking import Section
from pilothouse.rag.loaders.document import LoadedDocument

_HEADER = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^(```|~~~)")


def _front_matter(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    if not lines or lines[0].strip() != "---":
        return {}, lines
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            meta: dict[str, str] = {}
            for line in lines[1:end]:
                key, sep, value = line.partition(":")
                if sep and key.strip():
                    meta[key.strip()] = value.strip().strip("\"'")
            return meta, lines[end + 1 :]
    return {}, lines


def load_markdown(text: str, *, source: str) -> LoadedDocument:
    meta, lines = _front_matter(text.replace("\r\n", "\n").split("\n"))
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    body: list[str] = []
    title: str | None = meta.pop("title", None) or None
    in_fence = False

    def flush() -> None:
        content = "\n".join(body).strip()
        if content:
            sections.append(Section(content, tuple(h for _, h in path)))
        body.clear()

    for line in lines:
        if _FENCE.match(line.strip()):
            in_fence = not in_fence
        match = None if in_fence else _HEADER.match(line)
        if match is None:
            body.append(line)
            continue
        flush()
        level, heading = len(match.group(1)), match.group(2).strip()
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, heading))
        if level == 1 and title is None:
            title = heading
    flush()
    return LoadedDocument(source=source, sections=tuple(sections), title=title, metadata=dict(meta))

"""HTML: visible text in sections under the page's `h1`-`h6` headings; the `<title>` (or first `h1`) is the
title. Scripts, styles, templates and elements hidden with `hidden`, `aria-hidden` or `display:none` are left
out: text a reader never sees is a classic carrier of indirect prompt injection."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from pilothouse.rag.chunking import Section
from pilothouse.rag.loaders.document import LoadedDocument

_SKIP = frozenset({"script", "style", "template", "noscript", "head", "svg"})
_BLOCK = frozenset(
    {"p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "blockquote", "pre", "hr", "dd", "dt"}
)
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "wbr"})
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self.path: list[tuple[int, str]] = []
        self.body: list[str] = []
        self.heading: list[str] | None = None
        self.heading_level = 0
        self.title: str | None = None
        self.first_h1: str | None = None
        self.in_title = False
        self.skip: list[str] = []  # open elements whose contents are left out

    def flush(self) -> None:
        text = re.sub(r"[ \t]*\n[ \t\n]*\n[ \t\n]*", "\n\n", "".join(self.body))
        text = re.sub(r"[ \t]+", " ", text).strip()
        if text:
            self.sections.append(Section(text, tuple(h for _, h in self.path)))
        self.body.clear()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        attributes = dict(attrs)
        hidden = (
            "hidden" in attributes
            or attributes.get("aria-hidden") == "true"
            or bool(_HIDDEN_STYLE.search(attributes.get("style") or ""))
        )
        if self.skip or tag in _SKIP or hidden:
            if tag not in _VOID:
                self.skip.append(tag)
            return
        if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self.flush()
            self.heading, self.heading_level = [], int(tag[1])
        elif tag in _BLOCK:
            self.body.append("\n\n" if tag in {"p", "div", "section", "article", "table", "blockquote"} else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if self.skip:
            if tag == self.skip[-1]:
                self.skip.pop()
            return
        if self.heading is not None and tag == f"h{self.heading_level}":
            heading = re.sub(r"\s+", " ", "".join(self.heading)).strip()
            self.heading = None
            if heading:
                while self.path and self.path[-1][0] >= self.heading_level:
                    self.path.pop()
                self.path.append((self.heading_level, heading))
                if self.heading_level == 1 and self.first_h1 is None:
                    self.first_h1 = heading
        elif tag in _BLOCK:
            self.body.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title = ((self.title or "") + data).strip() or None
            return
        if self.skip:
            return
        (self.heading if self.heading is not None else self.body).append(data)


def load_html(text: str, *, source: str) -> LoadedDocument:
    reader = _Reader()
    reader.feed(text)
    reader.close()
    reader.flush()
    return LoadedDocument(source=source, sections=tuple(reader.sections), title=reader.title or reader.first_h1)

"""The dashboard's sections: the navigation bar, in order, with the least role that may open each."""

from __future__ import annotations

from dataclasses import dataclass

from pilothouse.store.keys import role_at_least


@dataclass(frozen=True, slots=True)
class Section:
    path: str
    label: str
    min_role: str = "viewer"


SECTIONS: tuple[Section, ...] = (
    Section("/", "Overview"),
    Section("/traces", "Traces"),
    Section("/prompts", "Prompts"),
    Section("/evals", "Evaluations"),
    Section("/rag", "RAG"),
    Section("/monitors", "Monitors"),
    Section("/flows", "Workflows"),
    Section("/governance", "Governance", "admin"),
)


def sections_for(role: str) -> list[Section]:
    return [s for s in SECTIONS if role_at_least(role, s.min_role)]


def current_section(path: str) -> str:
    """The section a path belongs to (for `aria-current`)."""
    best = "/"
    for s in SECTIONS:
        if s.path != "/" and (path == s.path or path.startswith(s.path + "/")):
            best = s.path
    return best

"""Caller identity: who a request runs as, wherever it came from (an API key over HTTP, or an in-process caller
acting for one)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the API key, its project and role."""

    key_id: str
    project_id: str
    role: str

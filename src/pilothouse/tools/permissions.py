"""Allow-lists: which callers may use which registered tool, and with which argument rules.

A grant gives one tool to a subject of its project: the whole `project` (every key), one `key` (by id), or
one `agent` (by name, as a workflow names it). For a caller, the most specific grant of the tool applies:
its key's, else its agent's, else the project's; so a key can be held to narrower rules (or given wider
ones) than the rest of its project. A tool with no grant that applies is not allowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, get_args

from jsonschema.protocols import Validator

from pilothouse.tools.arguments import compile_schema
from pilothouse.tools.constraints import ArgumentRule
from pilothouse.tools.registry import ToolDefinition

SubjectKind = Literal["key", "agent", "project"]
SUBJECT_KINDS: tuple[str, ...] = get_args(SubjectKind)
"""Most specific first: the order in which grants are looked for."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks to use a tool: a project, and the key and/or agent acting in it."""

    project_id: str
    key_id: str | None = None
    agent: str | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """A tool allowed to a subject, with the rules its arguments must also pass."""

    tool: str
    kind: SubjectKind
    subject: str
    """The key id or agent name; "" for the project."""
    rules: tuple[ArgumentRule, ...] = ()

    def applies_to(self, caller: Caller) -> bool:
        if self.kind == "project":
            return True
        if self.kind == "key":
            return caller.key_id is not None and self.subject == caller.key_id
        return caller.agent is not None and self.subject == caller.agent

    def describe(self) -> str:
        return "the project's grant" if self.kind == "project" else f"the grant to {self.kind} {self.subject}"


@dataclass(slots=True)
class ProjectTools:
    """A project's tool registry and grants, indexed for the per-call check."""

    tools: dict[str, ToolDefinition] = field(default_factory=dict)
    grants: dict[str, list[Grant]] = field(default_factory=dict)
    """Tool name -> its grants, most specific kind first."""
    _validators: dict[str, Validator] = field(default_factory=dict)

    @classmethod
    def build(cls, tools: Iterable[ToolDefinition], grants: Iterable[Grant]) -> ProjectTools:
        found = cls({t.name: t for t in tools})
        for grant in sorted(grants, key=lambda g: (SUBJECT_KINDS.index(g.kind), g.subject)):
            found.grants.setdefault(grant.tool, []).append(grant)
        return found

    def grant_for(self, caller: Caller, tool: str) -> Grant | None:
        """The grant of `tool` that applies to `caller` (the most specific), or None."""
        for grant in self.grants.get(tool, ()):
            if grant.applies_to(caller):
                return grant
        return None

    def validator(self, tool: ToolDefinition) -> Validator:
        """The compiled JSON Schema validator of a registered tool (built once per snapshot)."""
        found = self._validators.get(tool.name)
        if found is None:
            found = self._validators[tool.name] = compile_schema(tool.parameters)
        return found

    def allowed_names(self, caller: Caller) -> list[str]:
        return sorted(name for name in self.tools if self.grant_for(caller, name) is not None)

    def is_empty(self) -> bool:
        return not self.tools and not self.grants

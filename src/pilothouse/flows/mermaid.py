"""A flow's graph as a Mermaid flowchart: steps (shaped by kind), edges, branches labelled with the condition's
values, loop bounds, and the steps used as map bodies, fallbacks and compensations (dotted)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pilothouse.flows.graph import Flow

END = "__end__"
_SHAPES = {
    "approval": ("{{", "}}"),
    "map": ("[[", "]]"),
    "subflow": ("[[", "]]"),
    "llm": ("([", "])"),
    "agent": ("([", "])"),
    "tool": ("[/", "/]"),
    "guard": ("{", "}"),
}


def _id(name: str) -> str:
    return "s_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _text(text: str) -> str:
    return text.replace('"', "#quot;")


def render(flow: Flow) -> str:
    lines = ["flowchart TD", "    __start__((start))", "    __end__((end))"]
    for name, node in flow.nodes.items():
        kind = node.step.kind
        opening, closing = _SHAPES.get(kind, ("[", "]"))
        label = f"{name}<br/><i>{kind}</i>"
        bound = flow.bounds.get(name)
        if bound is not None:
            label += f"<br/>max {bound} visits"
        lines.append(f'    {_id(name)}{opening}"{_text(label)}"{closing}')
    assert flow.start_step is not None
    lines.append(f"    __start__ --> {_id(flow.start_step)}")

    def target(name: str) -> str:
        return "__end__" if name == END else _id(name)

    for source, targets in flow.edges.items():
        for t in targets:
            lines.append(f"    {_id(source)} --> {target(t)}")
    for source, branch in flow.branches.items():
        for value, t in branch.targets.items():
            lines.append(f'    {_id(source)} -->|"{_text(f"{branch.label} = {value}")}"| {target(t)}')
    for name, node in flow.nodes.items():
        body = getattr(node.step, "body", None)
        if node.step.kind == "map" and isinstance(body, str):
            lines.append(f'    {_id(name)} -.->|"each item"| {_id(body)}')
        if node.options.fallback:
            lines.append(f'    {_id(name)} -.->|"fallback"| {_id(node.options.fallback)}')
        if node.options.compensate:
            lines.append(f'    {_id(name)} -.->|"compensate"| {_id(node.options.compensate)}')
    return "\n".join(lines) + "\n"

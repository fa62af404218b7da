"""A flow run drawn for people: the flow's graph with the edges the run took, and its decision path.

`run_graph(flow, entries, status)` lays the graph out in layers (breadth-first from the start step) and marks
the steps the run visited and the edges it took, worked out from the checkpoints in order: each step's taken
edge comes from the most recent earlier step that leads to it (a branch's decision, a plain edge, or one of
several edges run one after another). `svg()` draws it as inline SVG; the template also lists it as nested
lists, so the graph does not depend on seeing the picture (taken edges say "taken" in words, not colour).

`path_rows(checkpoints)` is the decision path of `pilothouse flow show` (flows/decision_path.py) with each
entry's cost and duration added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from pilothouse.flows.decision_path import path
from pilothouse.flows.protocol import Checkpoint

if TYPE_CHECKING:
    from pilothouse.flows.graph import Flow

START = "__start__"
END = "__end__"
_W, _H, _GAP_X, _GAP_Y, _PAD, _BEND = 170, 44, 24, 56, 16, 70


@dataclass(slots=True)
class GraphEdge:
    source: str
    target: str
    label: str  # a branch's `condition = value`, or "" for a plain edge
    taken: bool = False
    helper: bool = False  # a map body, fallback or compensation (dotted in the drawing)


@dataclass(slots=True)
class GraphNode:
    name: str
    kind: str
    status: str | None = None  # the last status the run recorded at this step (None: not visited)
    visits: int = 0
    edges: list[GraphEdge] = field(default_factory=list)
    x: int = 0
    y: int = 0


@dataclass(slots=True)
class RunGraph:
    flow_name: str
    nodes: list[GraphNode]
    width: int
    height: int

    def svg(self) -> Markup:
        return _svg(self)


def run_graph(flow: Flow, checkpoints: Sequence[Checkpoint], run_status: str) -> RunGraph:
    """The flow's graph with the run's visited steps and taken edges marked."""
    nodes: dict[str, GraphNode] = {START: GraphNode(START, "start"), END: GraphNode(END, "end")}
    for name, node in flow.nodes.items():
        nodes[name] = GraphNode(name, node.step.kind)
    if flow.start_step is not None:
        nodes[START].edges.append(GraphEdge(START, flow.start_step, ""))
    for source, targets in flow.edges.items():
        for t in targets:
            nodes[source].edges.append(GraphEdge(source, t, ""))
    for source, branch in flow.branches.items():
        for value, t in branch.targets.items():
            nodes[source].edges.append(GraphEdge(source, t, f"{branch.label} = {value}"))
    for name, node in flow.nodes.items():  # steps run on another's behalf, as flows/mermaid.py draws them
        body = getattr(node.step, "body", None)
        helpers = [
            (body if node.step.kind == "map" and isinstance(body, str) else None, "each item"),
            (node.options.fallback, "fallback"),
            (node.options.compensate, "compensate"),
        ]
        for target, label in helpers:
            if target is not None and target in nodes:
                nodes[name].edges.append(GraphEdge(name, target, label, helper=True))
    _mark(nodes, checkpoints, run_status)
    width, height = _layout(nodes)
    order = sorted(nodes.values(), key=lambda n: (n.y, n.x))
    return RunGraph(flow.name, order, width, height)


def _mark(nodes: dict[str, GraphNode], checkpoints: Sequence[Checkpoint], run_status: str) -> None:
    visited: list[str] = [START]
    for cp in checkpoints:
        node = nodes.get(cp.step)
        if node is None:
            continue
        node.status = cp.status
        if visited[-1] == cp.step:  # the same step again: a map item, a retry, an approval's decision
            continue
        node.visits += 1
        for earlier in reversed(visited):
            edge = next((e for e in nodes[earlier].edges if e.target == cp.step), None)
            if edge is not None:
                edge.taken = True
                break
        visited.append(cp.step)
    if run_status == "succeeded":
        for earlier in reversed(visited):
            edge = next((e for e in nodes[earlier].edges if e.target == END), None)
            if edge is not None:
                edge.taken = True
                nodes[END].status = "succeeded"
                break
    nodes[START].status = "succeeded" if len(visited) > 1 else None


def _layout(nodes: dict[str, GraphNode]) -> tuple[int, int]:
    """Layers by the longest path from the start over the graph's forward edges (a loop's edge back is left
    out, helper edges too), so every edge but those points down; unreachable steps go last, the end below
    all. Returns the drawing's size."""
    forward = _forward_edges(nodes)
    depth: dict[str, int] = {START: 0}
    for name in _topological(nodes, forward):
        for target in forward.get(name, ()):
            if name in depth:
                depth[target] = max(depth.get(target, 0), depth[name] + 1)
    last = max(depth.values(), default=0) + 1
    for name in nodes:
        if name not in depth and name != END:
            depth[name] = last
    depth[END] = max(d for n, d in depth.items() if n != END) + 1
    layers: dict[int, list[str]] = {}
    for name, d in depth.items():
        layers.setdefault(d, []).append(name)
    widest = max(len(names) for names in layers.values())
    width = _PAD * 2 + widest * _W + (widest - 1) * _GAP_X + _BEND + 60  # room for edges around the side
    for d, names in layers.items():
        row = len(names) * _W + (len(names) - 1) * _GAP_X
        left = (width - _BEND - 60 - row) // 2
        for i, name in enumerate(names):
            nodes[name].x = left + i * (_W + _GAP_X)
            nodes[name].y = _PAD + d * (_H + _GAP_Y)
    height = _PAD * 2 + (max(layers) + 1) * _H + max(layers) * _GAP_Y
    return width, height


def _forward_edges(nodes: dict[str, GraphNode]) -> dict[str, list[str]]:
    """Each step's targets without the edges that close a loop (found by depth-first search from the start)."""
    forward: dict[str, list[str]] = {name: [] for name in nodes}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[tuple[str, int]] = [(START, 0)]
    state[START] = 1
    while stack:
        name, i = stack.pop()
        edges = [e for e in nodes[name].edges if not e.helper and e.target in nodes]
        if i < len(edges):
            stack.append((name, i + 1))
            target = edges[i].target
            if state.get(target) == 1:  # back to a step on the current path: a loop
                continue
            forward[name].append(target)
            if target not in state:
                state[target] = 1
                stack.append((target, 0))
        else:
            state[name] = 2
    return forward


def _topological(nodes: dict[str, GraphNode], forward: dict[str, list[str]]) -> list[str]:
    incoming = {name: 0 for name in nodes}
    for targets in forward.values():
        for t in targets:
            incoming[t] += 1
    ready = [n for n in nodes if incoming[n] == 0]
    order = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for t in forward[name]:
            incoming[t] -= 1
            if incoming[t] == 0:
                ready.append(t)
    return order


def _svg(graph: RunGraph) -> Markup:
    by_name = {n.name: n for n in graph.nodes}
    taken = sum(1 for n in graph.nodes for e in n.edges if e.taken)
    label = f"Graph of flow {graph.flow_name}: {len(graph.nodes) - 2} steps, {taken} edges taken by this run"
    parts = [
        f'<svg class="flow-graph" role="img" aria-label="{escape(label)}" viewBox="0 0 {graph.width} {graph.height}"'
        f' width="{graph.width}" height="{graph.height}" xmlns="http://www.w3.org/2000/svg">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" markerHeight="9"'
        ' markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
    ]
    for node in graph.nodes:
        for e in node.edges:
            target = by_name.get(e.target)
            if target is None:
                continue
            dash = ' stroke-dasharray="4 3"' if e.helper else ""
            stroke = f'stroke="{"#0b6e4f" if e.taken else "#888"}" stroke-width="{3 if e.taken else 1}"{dash}'
            if target.y <= node.y or target.y - node.y > _H + _GAP_Y:
                # a loop back, or an edge past the layers between: around the right side, clear of the steps
                x1, y1, x2, y2 = node.x + _W, node.y + _H // 2, target.x + _W, target.y + _H // 2
                bend = max(x1, x2) + _BEND
                parts.append(
                    f'<path d="M {x1} {y1} C {bend} {y1}, {bend} {y2}, {x2} {y2}" fill="none" {stroke}'
                    ' marker-end="url(#arrow)"/>'
                )
                lx, ly = bend - _BEND // 4 + 4, (y1 + y2) // 2
            else:
                x1, y1, x2, y2 = node.x + _W // 2, node.y + _H, target.x + _W // 2, target.y
                parts.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" {stroke} marker-end="url(#arrow)"/>')
                lx, ly = (x1 + x2) // 2 + 4, (y1 + y2) // 2
            if e.label:
                parts.append(f'<text x="{lx}" y="{ly}" font-size="11" fill="#333">{escape(e.label)}</text>')
    for node in graph.nodes:
        visited = node.status is not None
        rx = 20 if node.kind in ("start", "end") else 4
        stroke = "#0b6e4f" if visited else "#888"
        fill = "#e3f4ec" if visited else "#fff"
        name = {"__start__": "start", "__end__": "end"}.get(node.name, node.name)
        sub = node.kind if node.kind not in ("start", "end") else ""
        if node.status and node.kind not in ("start", "end"):
            sub = f"{node.kind} · {node.status}"
        parts.append(
            f'<g><rect x="{node.x}" y="{node.y}" width="{_W}" height="{_H}" rx="{rx}" fill="{fill}"'
            f' stroke="{stroke}" stroke-width="{3 if visited else 1}"/>'
            f'<text x="{node.x + _W // 2}" y="{node.y + 18}" text-anchor="middle" font-size="13"'
            f' font-weight="{"bold" if visited else "normal"}" fill="#111">{escape(_short(name))}</text>'
            f'<text x="{node.x + _W // 2}" y="{node.y + 34}" text-anchor="middle" font-size="11" fill="#333">'
            f"{escape(_short(sub, 26))}</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _short(text: str, n: int = 22) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@dataclass(frozen=True, slots=True)
class PathRow:
    seq: int
    step: str
    status: str
    attempt: int
    items: int | None
    duration_ms: float
    cost_usd: float
    why: str
    started_at: float


def path_rows(checkpoints: Sequence[Checkpoint]) -> list[PathRow]:
    """The decision path (map items folded), each entry with the cost of its checkpoints and its duration."""
    entries = path(checkpoints)
    rows = []
    for i, entry in enumerate(entries):
        end_seq = entries[i + 1].seq if i + 1 < len(entries) else None
        cost = sum(cp.cost_usd for cp in checkpoints if cp.seq >= entry.seq and (end_seq is None or cp.seq < end_seq))
        rows.append(
            PathRow(
                seq=entry.seq,
                step=entry.step,
                status=entry.status,
                attempt=entry.attempt,
                items=entry.items,
                duration_ms=round(max(entry.ended_at - entry.started_at, 0.0) * 1000, 1),
                cost_usd=cost,
                why=entry.why,
                started_at=entry.started_at,
            )
        )
    return rows


def checkpoints_from(views: Sequence[dict[str, Any]]) -> list[Checkpoint]:
    """Checkpoints back from the API's views of them (`FlowService.show`'s `checkpoints`)."""
    return [Checkpoint(**v) for v in views]

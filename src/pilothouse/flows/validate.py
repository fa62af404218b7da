"""Build-time checks of a flow's graph; each failure is a FlowDefinitionError naming the step at fault.

Checked: a start step; no edge or branch naming an unknown step; no step with both plain edges and a branch;
fallback, compensation and map-body steps exist; every step reachable from the start (steps only used as
helpers excepted); every reachable step has a way out and can reach the end; every cycle passes through a step
with a `loop_bound`; sub-flows are valid themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pilothouse.flows.errors import FlowDefinitionError

if TYPE_CHECKING:
    from pilothouse.flows.graph import Flow

END = "__end__"


def validate(flow: Flow) -> set[str]:
    """Check `flow`; returns the steps that lie on a cycle."""
    name = flow.name
    steps = flow.nodes

    def fail(message: str, step: str | None) -> FlowDefinitionError:
        return FlowDefinitionError(f"flow {name!r}: {message}", step=step)

    if not steps:
        raise fail("has no steps", None)
    if flow.start_step is None:
        raise fail("has no start step: call flow.start(<step>)", None)
    if flow.start_step not in steps:
        raise fail(f"start step {flow.start_step!r} is not a step of the flow", flow.start_step)
    for source, targets in flow.edges.items():
        if source not in steps:
            raise fail(f"edge from unknown step {source!r}", source)
        for target in targets:
            if target != END and target not in steps:
                raise fail(f"edge {source} -> {target}: unknown step {target!r}", target)
    for source, branch in flow.branches.items():
        if source not in steps:
            raise fail(f"branch from unknown step {source!r}", source)
        if flow.edges.get(source):
            raise fail(f"step {source!r} has both edges and a branch: use one", source)
        for value, target in branch.targets.items():
            if target != END and target not in steps:
                raise fail(f"branch after {source!r}: value {value!r} leads to unknown step {target!r}", target)
    for bounded in flow.bounds:
        if bounded not in steps:
            raise fail(f"loop_bound on unknown step {bounded!r}", bounded)
    helpers = flow.helpers()
    for helper, user in helpers.items():
        if helper not in steps:
            raise fail(f"{user} names unknown step {helper!r}", helper)
    for node in steps.values():
        child = getattr(node.step, "flow", None)
        if node.step.kind == "subflow" and child is not None:
            try:
                child.build()
            except FlowDefinitionError as exc:
                raise fail(f"sub-flow of step {node.name!r}: {exc}", node.name) from exc

    reachable = _reach(flow, flow.start_step)
    for step in steps:
        if step not in reachable and step not in helpers:
            raise fail(f"step {step!r} is unreachable from the start step {flow.start_step!r}", step)
    for step in sorted(reachable - {END}):
        if not flow.targets(step):
            raise fail(f"step {step!r} has no way out: add an edge (to Flow.END to finish)", step)
    for step in sorted(reachable - {END}):
        if END not in _reach(flow, step):
            raise fail(f"step {step!r} can never reach the end (a cycle with no exit)", step)
    cyclic: set[str] = set()
    for component in _cycles(flow, reachable - {END}):
        cyclic |= component
        if not any(s in flow.bounds for s in component):
            first = sorted(component)[0]
            cycle = " -> ".join(sorted(component))
            raise fail(f"cycle through {cycle} has no bound: call flow.loop_bound({first!r}, max_visits=N)", first)
    return cyclic


def _reach(flow: Flow, start: str) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        step = todo.pop()
        if step == END:
            continue
        for target in flow.targets(step):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _cycles(flow: Flow, nodes: set[str]) -> list[set[str]]:
    """Strongly connected components that are cycles (more than one step, or a step leading to itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    counter = 0

    def successors(step: str) -> list[str]:
        return [t for t in flow.targets(step) if t in nodes]

    for root in sorted(nodes):
        if root in index:
            continue
        # iterative Tarjan: (node, iterator position)
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            step, pos = work.pop()
            if pos == 0:
                index[step] = low[step] = counter
                counter += 1
                stack.append(step)
                on_stack.add(step)
            succ = successors(step)
            if pos < len(succ):
                work.append((step, pos + 1))
                nxt = succ[pos]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[step] = min(low[step], index[nxt])
                continue
            if low[step] == index[step]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == step:
                        break
                if len(component) > 1 or step in successors(step):
                    out.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[step])
    return out

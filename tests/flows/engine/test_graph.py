"""Building a flow: validation names the step at fault; the Mermaid graph and the structure hash."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from pilothouse.flows import Flow, FlowDefinitionError, StepContext


class S(BaseModel):
    n: int = 0
    items: list[int] = []
    out: list[int] = []


def noop(state: S, ctx: StepContext) -> dict[str, Any]:
    return {}


def flow_with(*names: str) -> Flow:
    flow = Flow("f", state=S)
    for name in names:
        flow.step(name)(noop)
    return flow


def test_a_valid_flow_builds_and_renders() -> None:
    flow = flow_with("a", "b", "c")
    flow.step("each_one")(noop)
    flow.map("each", over=lambda s: s.items, step="each_one", into="out")
    flow.approval("approve", message="ok?")
    flow.start("a")
    flow.edge("a", "each")
    flow.branch("each", lambda s: s.n > 1, {True: "approve", False: "b"})
    flow.edge("approve", "b")
    flow.edge("b", "c")
    flow.branch("c", lambda s: "again" if s.n < 3 else "done", {"again": "b", "done": Flow.END})
    flow.loop_bound("b", max_visits=3)
    assert flow.build() is flow
    assert flow.cyclic == {"b", "c"}
    chart = flow.mermaid()
    assert chart.startswith("flowchart TD\n")
    assert "__start__ --> s_a" in chart and 's_c -->|"condition = done"| __end__' in chart
    assert 's_each -.->|"each item"| s_each_one' in chart and "max 3 visits" in chart
    assert "s_approve{{" in chart  # approvals drawn as hexagons


@pytest.mark.parametrize(
    ("build", "step", "message"),
    [
        (lambda f: None, None, "no start step"),
        (lambda f: f.start("zz"), "zz", "start step 'zz' is not a step"),
        (lambda f: (f.start("a"), f.edge("a", "zz")), "zz", "unknown step 'zz'"),
        (lambda f: (f.start("a"), f.edge("a", Flow.END)), "b", "step 'b' is unreachable"),
        (lambda f: (f.start("a"), f.edge("a", "b")), "b", "step 'b' has no way out"),
        (
            lambda f: (f.start("a"), f.edge("a", "b"), f.edge("b", "a")),
            "a",
            "can never reach the end",
        ),
        (
            lambda f: (f.start("a"), f.edge("a", "b"), f.branch("b", lambda s: s.n, {0: "a", 1: Flow.END})),
            "a",
            "cycle through a -> b has no bound: call flow.loop_bound('a', max_visits=N)",
        ),
        (
            lambda f: (f.start("a"), f.edge("a", "b"), f.edge("b", Flow.END), f.branch("a", lambda s: 1, {1: "b"})),
            "a",
            "both edges and a branch",
        ),
        (
            lambda f: (f.start("a"), f.edge("a", "b"), f.edge("b", Flow.END), f.loop_bound("q", max_visits=2)),
            "q",
            "loop_bound on unknown step 'q'",
        ),
    ],
)
def test_invalid_graphs_name_the_step(build: Any, step: str | None, message: str) -> None:
    flow = flow_with("a", "b")
    build(flow)
    with pytest.raises(FlowDefinitionError, match="flow 'f': ") as info:
        flow.build()
    assert message in str(info.value)
    assert info.value.step == step


def test_builder_refuses_bad_definitions_at_once() -> None:
    flow = flow_with("a")
    with pytest.raises(FlowDefinitionError, match="duplicate step name 'a'"):
        flow.step("a")(noop)
    with pytest.raises(FlowDefinitionError, match="invalid step name"):
        flow.step("__end__")(noop)
    with pytest.raises(FlowDefinitionError, match="not a Step"):
        flow.add("x", object())  # type: ignore[arg-type]
    with pytest.raises(FlowDefinitionError, match="max_visits >= 1"):
        flow.loop_bound("a", max_visits=0)
    with pytest.raises(FlowDefinitionError, match="unknown budget limit 'dollars'"):
        Flow("g", state=S, budget={"dollars": 1})
    with pytest.raises(FlowDefinitionError, match="pydantic model"):
        Flow("g", state=dict)  # type: ignore[arg-type]
    flow.start("a")
    flow.edge("a", Flow.END)
    with pytest.raises(FlowDefinitionError, match="duplicate edge"):
        flow.edge("a", Flow.END)


def test_helpers_must_exist_and_are_exempt_from_reachability() -> None:
    flow = flow_with("a", "undo", "backup")
    flow.step("pay", compensate="undo", fallback="backup")(noop)
    flow.start("a")
    flow.edge("a", "pay")
    flow.edge("pay", Flow.END)
    flow.build()
    bad = flow_with("a")
    bad.step("pay", compensate="nope")(noop)
    bad.start("a")
    bad.edge("a", "pay")
    bad.edge("pay", Flow.END)
    with pytest.raises(FlowDefinitionError, match="compensation of 'pay' names unknown step 'nope'"):
        bad.build()


def test_the_hash_follows_the_structure_only() -> None:
    def make(target: str) -> Flow:
        flow = flow_with("a", "b", "c")
        flow.start("a")
        flow.edge("a", target)
        flow.edge("b", "c")
        flow.edge("c", Flow.END)
        if target == "c":
            flow.edge("a", "b")
        return flow

    assert make("b").hash == make("b").hash
    assert make("b").hash != make("c").hash


def test_the_kind_builders_make_their_steps_and_name_the_step_on_error() -> None:
    flow = Flow("kinds", state=S)
    flow.llm("summarise", model="local", messages=lambda s: [{"role": "user", "content": "hi"}], output=None)
    flow.tool("pay", tool="refund_payment", args=lambda s: {"amount": s.n})
    flow.guard("screen", text=lambda s: str(s.n), scanners=["injection"])
    flow.agent("helper", model="local", tools=["lookup"], max_steps=5, max_cost_usd=0.01)
    assert [n.step.kind for n in flow.nodes.values()] == ["llm", "tool", "guard", "agent"]
    with pytest.raises(FlowDefinitionError, match="step 'bad'") as info:
        flow.llm("bad", model="local")  # neither messages nor a prompt
    assert info.value.step == "bad" and "bad" not in flow.nodes
    with pytest.raises(FlowDefinitionError, match="step 'odd'"):
        flow.tool("odd", tool="x", no_such_option=1)

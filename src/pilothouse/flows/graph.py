"""The flow builder: a graph of typed steps over a typed (pydantic) state.

    flow = Flow("refund", state=Refund, budget={"cost_usd": 0.05, "steps": 50})

    @flow.step()
    def check(state: Refund, ctx: StepContext) -> dict: ...

    flow.start("check")
    flow.branch("check", lambda s: "big" if s.amount > 100 else "small", {"big": "approve", "small": "pay"})

Every builder method takes the common options `retry`, `timeout_s`, `fallback` and `compensate` (see
policy.StepOptions) and returns the step's name. The kind-specific methods (`llm`, `tool`, `retrieve`, `guard`, `agent`)
build their step class (steps/<kind>.py) from the method's other keyword arguments, passing any further ones
through as they are; a step class's FlowDefinitionError comes back naming the step.
`build()` validates the graph (validate.py); the engine calls it before running.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel

from pilothouse.flows.budget import check_limits
from pilothouse.flows.errors import FlowDefinitionError
from pilothouse.flows.policy import NO_RETRY, Retry, StepOptions
from pilothouse.flows.steps.base import Step

if TYPE_CHECKING:
    from pilothouse.flows.agents.loop import Agent
    from pilothouse.flows.context import StepContext

END = "__end__"
F = TypeVar("F", bound=Callable[..., Any])
StateFn = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    step: Step
    options: StepOptions


@dataclass(frozen=True, slots=True)
class Branch:
    """A conditional edge: `condition(state)`'s value picks the target; the value is recorded as the decision."""

    condition: StateFn
    targets: Mapping[Hashable, str]
    label: str

    def target(self, value: Any) -> str | None:
        if isinstance(value, Hashable) and value in self.targets:
            return self.targets[value]
        return self.targets.get(str(value))


class Flow:
    """A workflow definition (see the module docstring)."""

    END: ClassVar[str] = END

    def __init__(
        self,
        name: str,
        *,
        state: type[BaseModel],
        budget: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> None:
        if not name or not isinstance(name, str):
            raise FlowDefinitionError("a flow needs a name")
        if not (isinstance(state, type) and issubclass(state, BaseModel)):
            raise FlowDefinitionError(f"flow {name!r}: state must be a pydantic model class")
        try:
            self.budget = check_limits(budget or {})
        except ValueError as exc:
            raise FlowDefinitionError(f"flow {name!r}: {exc}") from exc
        self.name = name
        self.state = state
        self.description = description
        self.nodes: dict[str, Node] = {}
        self.edges: dict[str, list[str]] = {}
        self.branches: dict[str, Branch] = {}
        self.bounds: dict[str, int] = {}
        self.start_step: str | None = None
        self._built: str | None = None  # the structure hash once validated
        self.cyclic: frozenset[str] = frozenset()  # steps on a cycle (their visits are counted), set by build()

    # -- steps ---------------------------------------------------------------------------------------------

    def add(
        self,
        name: str,
        step: Step,
        *,
        retry: Retry | None = None,
        timeout_s: float | None = None,
        fallback: str | None = None,
        compensate: str | None = None,
    ) -> str:
        """Add a step object (any `Step`) under `name`."""
        if not name or not isinstance(name, str) or name == END:
            raise FlowDefinitionError(f"flow {self.name!r}: invalid step name {name!r}", step=str(name))
        if name in self.nodes:
            raise FlowDefinitionError(f"flow {self.name!r}: duplicate step name {name!r}", step=name)
        if not isinstance(step, Step):
            raise FlowDefinitionError(
                f"flow {self.name!r}: step {name!r} is not a Step (needs `kind` and `async run(state, ctx)`)",
                step=name,
            )
        try:
            options = StepOptions(
                retry=retry or NO_RETRY, timeout_s=timeout_s, fallback=fallback, compensate=compensate
            )
        except ValueError as exc:
            raise FlowDefinitionError(f"flow {self.name!r}: step {name!r}: {exc}", step=name) from exc
        self.nodes[name] = Node(name, step, options)
        self._built = None
        return name

    def step(
        self,
        name: str | None = None,
        *,
        retry: Retry | None = None,
        timeout_s: float | None = None,
        fallback: str | None = None,
        compensate: str | None = None,
    ) -> Callable[[F], F]:
        """Decorator: a plain Python step `(state, ctx) -> dict of updates`, sync or async."""
        from pilothouse.flows.steps.python import PythonStep

        def register(fn: F) -> F:
            self.add(
                name or fn.__name__,
                PythonStep(fn),
                retry=retry,
                timeout_s=timeout_s,
                fallback=fallback,
                compensate=compensate,
            )
            return fn

        return register

    def approval(
        self,
        name: str,
        *,
        message: StateFn | str | None = None,
        retry: Retry | None = None,
        timeout_s: float | None = None,
        fallback: str | None = None,
        compensate: str | None = None,
    ) -> str:
        """A human approval: the run pauses (`waiting_for_approval`) until someone approves or rejects it."""
        from pilothouse.flows.steps.approval import ApprovalStep

        return self._kind(name, ApprovalStep, {"message": message}, retry, timeout_s, fallback, compensate)

    def map(
        self,
        name: str,
        *,
        over: StateFn,
        step: str,
        into: str,
        concurrency: int = 4,
        retry: Retry | None = None,
        timeout_s: float | None = None,
        fallback: str | None = None,
        compensate: str | None = None,
    ) -> str:
        """Fan out: run step `step` once per item of `over(state)`, at most `concurrency` at a time, each item
        checkpointed; fan in: the items' outputs, in order, go to state field `into`."""
        from pilothouse.flows.steps.map import MapStep

        if concurrency < 1:
            raise FlowDefinitionError(f"flow {self.name!r}: map {name!r} needs concurrency >= 1", step=name)
        config = {"over": over, "step": step, "into": into, "concurrency": concurrency}
        return self._kind(name, MapStep, config, retry, timeout_s, fallback, compensate)

    def subflow(
        self,
        name: str,
        flow: Flow,
        *,
        input: StateFn,
        output: str | None = None,
        retry: Retry | None = None,
        timeout_s: float | None = None,
        fallback: str | None = None,
        compensate: str | None = None,
    ) -> str:
        """Run another flow as one step (a child run with its own checkpoints); its final state (as a dict) goes
        to state field `output`."""
        from pilothouse.flows.steps.subflow import SubflowStep

        config = {"flow": flow, "input": input, "output": output}
        return self._kind(name, SubflowStep, config, retry, timeout_s, fallback, compensate)

    def llm(
        self,
        name: str,
        *,
        model: str | None = None,
        messages: StateFn | None = None,
        prompt: str | None = None,
        variables: StateFn | None = None,
        output: str | None = None,
        retry: Retry | None = None,
        timeout_s: float | None = None,
        fallback: str | None = None,
        compensate: str | None = None,
        **config: Any,
    ) -> str:
        """A model call: `messages(state)` to `model`, or a prompt reference `name@label` with
        `variables(state)`; the answer's text goes to state field `output` (more options: steps/llm.py)."""
        from pilothouse.flows.steps.llm import LlmStep

        config |= {"model": model, "messages": messages, "prompt": prompt, "variables": variables, "output": output}
        return self._kind(name, LlmStep, config, retry, timeout_s, fallback, compensate)

    def tool(
        self,
        name: str,
        *,
        tool: str,
        args: StateFn | None = None,
        output: str | None = None,
        retry: Retry | None = None,
        timeout_s: float | None = None,
        fallback: str | None = None,
        compensate: str | None = None,
        **config: Any,
    ) -> str:
        """A registered tool called with `args(state)`; its result goes to state field `output`."""
        from pilothouse.flows.steps.tool import ToolStep

        config |= {"tool": tool, "args": args, "output": output}
        return self._kind(name, ToolStep, config, retry, timeout_s, fallback, compensate)

    def retrieve(
        self,
        name: str,
        *,
        collection: str,
        query: StateFn | str,
        k: int = 5,
        mode: str = "hybrid",
        filters: StateFn | Mapping[str, Any] | None = None,
        identity: StateFn | Mapping[str, Any] | None = None,
        pack: int | Mapping[str, Any] | None = None,
        output: str | None = "chunks",
        retry: Retry | None = None,
        timeout_s: float | None = None,
        fallback: str | None = None,
        compensate: str | None = None,
        **config: Any,
    ) -> str:
        """Retrieve from a RAG collection of the run's project for `query(state)`, as the end user
        `identity(state)` names (or the run's key); the hits, with their flags and citations, go to state field
        `output` (more options: steps/retrieve.py)."""
        from pilothouse.flows.steps.retrieve import RetrieveStep

        config |= {"collection": collection, "query": query, "k": k, "mode": mode, "filters": filters}
        config |= {"identity": identity, "pack": pack, "output": output}
        return self._kind(name, RetrieveStep, config, retry, timeout_s, fallback, compensate)

    def guard(
        self,
        name: str,
        *,
        text: StateFn,
        scanners: list[str] | None = None,
        output: str | None = None,
        retry: Retry | None = None,
        timeout_s: float | None = None,
        fallback: str | None = None,
        compensate: str | None = None,
        **config: Any,
    ) -> str:
        """Scan `text(state)` with the guard scanners; a blocked text fails the step (steps/guard.py)."""
        from pilothouse.flows.steps.guard import GuardStep

        config |= {"text": text, "scanners": scanners, "output": output}
        return self._kind(name, GuardStep, config, retry, timeout_s, fallback, compensate)

    def agent(
        self,
        name: str,
        *,
        model: str,
        tools: list[str],
        max_steps: int = 10,
        max_cost_usd: float | None = None,
        output: str | None = None,
        retry: Retry | None = None,
        timeout_s: float | None = None,
        fallback: str | None = None,
        compensate: str | None = None,
        **config: Any,
    ) -> str:
        """A tool-calling agent: the model picks tools from `tools`, their results go back into the
        conversation, until it answers or hits a cap (more caps and options: steps/agent.py)."""
        from pilothouse.flows.steps.agent import AgentStep

        config |= {"model": model, "tools": tools, "max_steps": max_steps, "max_cost_usd": max_cost_usd}
        config["output"] = output
        return self._kind(name, AgentStep, config, retry, timeout_s, fallback, compensate)

    def supervisor(
        self,
        name: str,
        *,
        model: str,
        workers: Sequence[Agent],
        output: str | None = None,
        retry: Retry | None = None,
        timeout_s: float | None = None,
        fallback: str | None = None,
        compensate: str | None = None,
        **config: Any,
    ) -> str:
        """A supervisor agent that routes the task to worker agents (`Agent`s, each with its own tools and
        permissions), round by round, until it answers; its answer goes to state field `output` (more caps and
        options: agents/supervisor.py)."""
        from pilothouse.flows.agents.supervisor import SupervisorStep

        config |= {"model": model, "workers": workers, "output": output}
        return self._kind(name, SupervisorStep, config, retry, timeout_s, fallback, compensate)

    def handoff(
        self,
        name: str,
        *,
        agents: Sequence[Agent],
        start: str,
        handoffs: Mapping[str, Sequence[str]] | None = None,
        output: str | None = None,
        retry: Retry | None = None,
        timeout_s: float | None = None,
        fallback: str | None = None,
        compensate: str | None = None,
        **config: Any,
    ) -> str:
        """Agents that hand one conversation to each other: `start` answers first and may hand off to the
        agents `handoffs` allows it (any other agent by default); the final answer goes to state field `output`
        (more caps and options: agents/handoff.py)."""
        from pilothouse.flows.agents.handoff import HandoffStep

        config |= {"agents": agents, "start": start, "handoffs": handoffs, "output": output}
        return self._kind(name, HandoffStep, config, retry, timeout_s, fallback, compensate)

    def _kind(
        self,
        name: str,
        kind: Callable[..., Any],
        config: dict[str, Any],
        retry: Retry | None,
        timeout_s: float | None,
        fallback: str | None,
        compensate: str | None,
    ) -> str:
        """Build a step of `kind` from `config` (its errors name the step) and add it."""
        try:
            step = kind(**config)
        except FlowDefinitionError as exc:
            raise FlowDefinitionError(f"flow {self.name!r}: step {name!r}: {exc}", step=name) from exc
        except TypeError as exc:
            raise FlowDefinitionError(f"flow {self.name!r}: step {name!r}: {exc}", step=name) from exc
        return self.add(name, step, retry=retry, timeout_s=timeout_s, fallback=fallback, compensate=compensate)

    # -- edges ---------------------------------------------------------------------------------------------

    def start(self, name: str) -> None:
        self.start_step = name
        self._built = None

    def edge(self, source: str, target: str) -> None:
        """After `source`, run `target` (Flow.END: the run ends). Several edges from one step run their
        targets one after another (a step reached by several of them runs once they all ran)."""
        targets = self.edges.setdefault(source, [])
        if target in targets:
            raise FlowDefinitionError(f"flow {self.name!r}: duplicate edge {source} -> {target}", step=source)
        targets.append(target)
        self._built = None

    def branch(self, source: str, condition: StateFn, targets: Mapping[Hashable, str]) -> None:
        """A conditional edge: after `source`, `targets[condition(state)]` runs next; the value is recorded."""
        if source in self.branches:
            raise FlowDefinitionError(f"flow {self.name!r}: step {source!r} already has a branch", step=source)
        if not targets:
            raise FlowDefinitionError(f"flow {self.name!r}: branch after {source!r} has no targets", step=source)
        label = getattr(condition, "__name__", "condition")
        self.branches[source] = Branch(condition, dict(targets), "condition" if label == "<lambda>" else label)
        self._built = None

    def loop_bound(self, step: str, *, max_visits: int) -> None:
        """Allow a cycle through `step`, entered at most `max_visits` times per run."""
        if max_visits < 1:
            raise FlowDefinitionError(f"flow {self.name!r}: loop_bound {step!r} needs max_visits >= 1", step=step)
        self.bounds[step] = max_visits
        self._built = None

    # -- use -----------------------------------------------------------------------------------------------

    def build(self) -> Flow:
        """Validate the graph (raises FlowDefinitionError naming the step at fault); returns the flow."""
        if self._built is None:
            from pilothouse.flows.validate import validate

            self.cyclic = frozenset(validate(self))
            self._built = self._structure_hash()
        return self

    @property
    def hash(self) -> str:
        """Digest of the graph's structure (steps, kinds, edges, branch targets, bounds, options)."""
        self.build()
        assert self._built is not None
        return self._built

    def targets(self, name: str) -> list[str]:
        """Every step `name` may lead to (edges and branch targets), END included."""
        out = list(self.edges.get(name, ()))
        branch = self.branches.get(name)
        if branch is not None:
            out += [t for t in branch.targets.values() if t not in out]
        return out

    def helpers(self) -> dict[str, str]:
        """Steps run on behalf of another (map bodies, fallbacks, compensations): name -> what uses them."""
        used: dict[str, str] = {}
        for node in self.nodes.values():
            body = getattr(node.step, "body", None)
            if node.step.kind == "map" and isinstance(body, str):
                used.setdefault(body, f"map {node.name!r}")
            if node.options.fallback:
                used.setdefault(node.options.fallback, f"fallback of {node.name!r}")
            if node.options.compensate:
                used.setdefault(node.options.compensate, f"compensation of {node.name!r}")
        return used

    def next_steps(self, name: str, state: BaseModel) -> tuple[list[str], dict[str, Any] | None]:
        """The steps after `name` given the state it left, and the branch decision taken (None: plain edges)."""
        branch = self.branches.get(name)
        if branch is None:
            return [t for t in self.edges.get(name, ()) if t != END], None
        value = branch.condition(state)
        target = branch.target(value)
        if target is None:
            known = ", ".join(repr(k) for k in branch.targets)
            raise ValueError(f"branch after {name!r}: condition returned {value!r}, which is none of {known}")
        decision = {"condition": branch.label, "value": _jsonable(value), "to": target}
        return ([] if target == END else [target]), decision

    def replace(self, name: str, step: Step | Callable[[Any, StepContext], Any]) -> Flow:
        """A copy of this flow with step `name` done by `step` (a Step or a Python function): for replays."""
        if name not in self.nodes:
            raise FlowDefinitionError(f"flow {self.name!r} has no step {name!r}", step=name)
        if not isinstance(step, Step):
            from pilothouse.flows.steps.python import PythonStep

            step = PythonStep(step)
        copy = Flow(self.name, state=self.state, budget=self.budget, description=self.description)
        copy.nodes = {**self.nodes, name: replace(self.nodes[name], step=step)}
        copy.edges = {k: list(v) for k, v in self.edges.items()}
        copy.branches = dict(self.branches)
        copy.bounds = dict(self.bounds)
        copy.start_step = self.start_step
        return copy.build()

    def mermaid(self) -> str:
        """The graph as a Mermaid flowchart."""
        from pilothouse.flows.mermaid import render

        return render(self.build())

    def _structure_hash(self) -> str:
        def step_info(node: Node) -> dict[str, Any]:
            info: dict[str, Any] = {"kind": node.step.kind}
            body = getattr(node.step, "body", None)
            if isinstance(body, str):
                info["body"] = body
            child = getattr(node.step, "flow", None)
            if isinstance(child, Flow):
                info["flow"] = child.hash
            options = node.options
            info["options"] = [options.retry.attempts, options.timeout_s, options.fallback, options.compensate]
            return info

        structure = {
            "name": self.name,
            "state": sorted(self.state.model_fields),
            "start": self.start_step,
            "steps": {n: step_info(node) for n, node in sorted(self.nodes.items())},
            "edges": {k: v for k, v in sorted(self.edges.items())},
            "branches": {k: {str(v): t for v, t in b.targets.items()} for k, b in sorted(self.branches.items())},
            "bounds": dict(sorted(self.bounds.items())),
        }
        blob = json.dumps(structure, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Flow({self.name!r}, steps={len(self.nodes)})"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)

"""What a step sees of the run it is part of: `StepContext`.

The context carries the run's identity (run, step, attempt, project, trace), its budget, the step's span for
attributes, and the ways out of the process a step has: `chat` (a model call through the gateway pipeline,
in process, source `flow`), `call_tool` (a registered tool, validated, permitted, idempotent) and `retrieve`
(a RAG collection of the run's project, through the same query service as `POST /api/rag/{collection}/query`).
They delegate to services the engine is given (`ModelCalls`, `ToolCalls`, `RetrievalCalls`, implemented in
flows/calls.py, flows/tools_runtime.py and flows/steps/retrieve.py); an engine built without one answers with a
clear error instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from pilothouse.flows.budget import RunBudget
from pilothouse.flows.errors import FlowError
from pilothouse.flows.protocol import CheckpointStore
from pilothouse.tracing.model import SpanRecord

if TYPE_CHECKING:
    from pilothouse.flows.steps.retrieve import PackSpec, Retrieved
    from pilothouse.rag.retrieve import Query


class ModelCalls(Protocol):
    """Model calls for steps (flows/calls.py): through the gateway in process, spend charged to `ctx`."""

    async def chat(self, ctx: StepContext, body: dict[str, Any]) -> dict[str, Any]: ...


class ToolCalls(Protocol):
    """Tool calls for steps (flows/tools_runtime.py): lookup, validation, permission, timeout, idempotency."""

    async def call_tool(self, ctx: StepContext, name: str, args: dict[str, Any]) -> Any: ...


class RetrievalCalls(Protocol):
    """Retrieval for steps (flows/steps/retrieve.py): the run's project, the identity the step asserts, a
    `retrieval` span under the step's span."""

    async def retrieve(
        self,
        ctx: StepContext,
        collection: str,
        query: Query,
        *,
        identity: Mapping[str, Any] | None = None,
        pack: PackSpec | None = None,
    ) -> Retrieved: ...


class NoModelCalls:
    """The null service: this engine was built without a gateway."""

    async def chat(self, ctx: StepContext, body: dict[str, Any]) -> dict[str, Any]:
        raise FlowError(
            f"step {ctx.step!r} made a model call, but this engine has no model gateway: "
            "build the Engine with models=... (pilothouse.flows.calls)"
        )


class NoToolCalls:
    """The null service: this engine was built without a tool runtime."""

    async def call_tool(self, ctx: StepContext, name: str, args: dict[str, Any]) -> Any:
        raise FlowError(
            f"step {ctx.step!r} called tool {name!r}, but this engine has no tool runtime: "
            "build the Engine with tools=... (pilothouse.flows.tools_runtime)"
        )


class NoRetrievalCalls:
    """The null service: this engine was built without a RAG query service."""

    async def retrieve(
        self,
        ctx: StepContext,
        collection: str,
        query: Query,
        *,
        identity: Mapping[str, Any] | None = None,
        pack: PackSpec | None = None,
    ) -> Retrieved:
        raise FlowError(
            f"step {ctx.step!r} retrieves from collection {collection!r}, but this engine has no RAG query "
            "service: build the Engine with retrieval=RagRetrieval(...) (pilothouse.flows.steps.retrieve)"
        )


@dataclass(slots=True)
class StepContext:
    """One attempt of one step of one run.

    visit: how many times the run has entered this step before (0 the first time; loops count up).
    item_index / item: the item a step inside a map works on (None outside a map).
    approval: the person's decision when the run resumes at an approval step (`{"decision", "actor",
    "comment"}`), None otherwise.
    span: the step's span; add attributes with `ctx.span.attributes[...] = ...`.
    """

    run_id: str
    step: str
    attempt: int
    project_id: str
    flow_name: str
    trace_id: str | None
    span: SpanRecord
    budget: RunBudget
    store: CheckpointStore
    models: ModelCalls
    tools: ToolCalls
    retrieval: RetrievalCalls = field(default_factory=NoRetrievalCalls)
    visit: int = 0
    item_index: int | None = None
    item: Any = None
    created_by: str | None = None
    approval: dict[str, Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def span_id(self) -> str:
        return self.span.id

    @property
    def remaining_budget(self) -> dict[str, Any]:
        """What is left under each limit the run has (cost as a Decimal)."""
        return self.budget.remaining()

    def idempotency_key(self, name: str) -> str:
        """A key for one logical side effect of this step: the same on every retry and every resume of this
        visit (and item), different for another `name`, visit, item, step or run."""
        item = "" if self.item_index is None else f"[{self.item_index}]"
        return f"{self.run_id}/{self.step}#{self.visit}{item}/{name}"

    def check_budget(self) -> None:
        """Raise BudgetExceeded when the run's budget is already spent (call before a model call)."""
        self.budget.check()

    def charge(self, *, cost_usd: Decimal | float | str = 0, tokens: int = 0, model_calls: int = 0) -> None:
        """Add spend to the run; raises BudgetExceeded when it takes the run over a limit."""
        self.budget.charge(cost_usd=cost_usd, tokens=tokens, model_calls=model_calls)

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """A chat completion through the gateway (in process, source `flow`); charged to the run's budget."""
        return await self.models.chat(self, body)

    async def call_tool(self, name: str, args: dict[str, Any]) -> Any:
        """A registered tool, with its arguments validated, its permission checked and its effect idempotent."""
        return await self.tools.call_tool(self, name, args)

    async def retrieve(
        self,
        collection: str,
        query: Query,
        *,
        identity: Mapping[str, Any] | None = None,
        pack: PackSpec | None = None,
    ) -> Retrieved:
        """Retrieve from a collection of the run's project (as the run's key, or the end user `identity` names);
        the retrieval is a span under this step's."""
        return await self.retrieval.retrieve(self, collection, query, identity=identity, pack=pack)

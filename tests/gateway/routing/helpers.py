"""Deterministic pieces for router tests: a clock and sleep that only move when told, scripted providers
(each call takes the next outcome from a list), and a gateway wired to them."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any, ClassVar

from pilothouse.config import Deployment, ModelEntry, RoutingSettings, Settings
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.prepared import Prepared
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.base import (
    ChatRequest,
    ChatResult,
    Chunk,
    EmbeddingResult,
    Provider,
    ProviderError,
    Usage,
)
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.gateway.routing import Router
from pilothouse.tracing.model import TraceRecord

PRICE_IN = Decimal("2")
PRICE_OUT = Decimal("8")


class FakeClock:
    """Monotonic time that advances only through `sleep` (recorded) or `advance`."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


Outcome = ProviderError | str | None  # an error to raise, "ok" / None to answer, "break" (stream: fail mid-way)


class Scripted(Provider):
    """A provider whose calls follow a script; after the script, it answers. Each call may take `latency_s`
    of the fake clock."""

    name: ClassVar[str] = "scripted"
    supports_streaming: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = True
    supports_embeddings: ClassVar[bool] = False

    def __init__(self, label: str, script: list[Outcome], clock: FakeClock, latency_s: float = 0.0) -> None:
        self.label = label
        self.script = list(script)
        self.clock = clock
        self.latency_s = latency_s
        self.calls: list[ChatRequest] = []

    def _next(self, request: ChatRequest) -> Outcome:
        self.calls.append(request)
        self.clock.advance(self.latency_s)
        outcome = self.script.pop(0) if self.script else None
        if isinstance(outcome, ProviderError):
            raise outcome
        return outcome

    def _reply(self) -> str:
        return f"from {self.label}"

    async def chat(self, request: ChatRequest) -> ChatResult:
        self._next(request)
        body = {
            "id": f"chatcmpl-{self.label}",
            "object": "chat.completion",
            "created": 0,
            "model": request.model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": self._reply()}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
        }
        return ChatResult(body=body, usage=Usage(10, 2))

    async def chat_stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        outcome = self._next(request)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> Chunk:
            return {
                "id": f"chatcmpl-{self.label}",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": request.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        yield chunk({"role": "assistant", "content": ""})
        yield chunk({"content": "from"})
        if outcome == "break":
            raise ProviderError("unavailable", f"{self.label} stream broke mid-way")
        yield chunk({"content": f" {self.label}"})
        yield chunk({}, "stop")
        yield {
            "id": "x",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": request.model,
            "choices": [],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
        }

    async def embed(self, model: str, inputs: list[str]) -> EmbeddingResult:
        raise ProviderError("bad_request", "no embeddings")

    async def aclose(self) -> None:
        return None


class ScriptedPool(ProviderPool):
    """Deployments named in `providers` get that scripted provider; others the usual ones."""

    def __init__(self, settings: Settings, providers: dict[str, Scripted]) -> None:
        super().__init__(settings)
        self.providers = providers

    def get(self, deployment: Deployment) -> Any:
        if deployment.name in self.providers:
            return self.providers[deployment.name]
        return super().get(deployment)


def deployment(name: str, *, window: int | None = None, weight: float = 1.0) -> Deployment:
    return Deployment(
        provider="fake",
        model=f"up-{name}",
        name=name,
        weight=weight,
        context_window=window,
        input_price_per_mtok=PRICE_IN,
        output_price_per_mtok=PRICE_OUT,
    )


def err(kind: str, status: int = 500, retry_after: float | None = None) -> ProviderError:
    return ProviderError(kind, f"upstream said {kind}", status=status, retry_after=retry_after)  # type: ignore[arg-type]


class Rig:
    """A gateway over scripted deployments, with the router on the fake clock and a seeded random."""

    def __init__(
        self,
        models: list[ModelEntry],
        scripts: dict[str, list[Outcome]],
        *,
        latency_s: dict[str, float] | None = None,
        seed: int = 7,
        **routing: Any,
    ) -> None:
        self.clock = FakeClock()
        self.settings = Settings(include_default_models=False, models=models, routing=RoutingSettings(**routing))
        self.providers = {
            name: Scripted(name, script, self.clock, (latency_s or {}).get(name, 0.0))
            for name, script in scripts.items()
        }
        self.pool = ScriptedPool(self.settings, self.providers)
        self.gateway = Gateway(self.settings, self.pool, default_price_book())
        self.router = Router(
            self.settings,
            self.pool,
            self.gateway.prices,
            self.gateway.catalog,
            clock=self.clock,
            sleep=self.clock.sleep,
            rng=random.Random(seed),
        )
        self.gateway.router = self.router

    def calls(self, name: str) -> int:
        return len(self.providers[name].calls)

    def prepare(self, model: str, trace: TraceRecord | None = None, **extra: Any) -> Prepared:
        body = {"model": model, "messages": [{"role": "user", "content": "hello there"}], **extra}
        return self.gateway.prepare_chat(body, trace or TraceRecord(project_id="p", name="chat"))

    async def chat(self, model: str, **extra: Any) -> tuple[dict[str, Any], Prepared, TraceRecord]:
        """One non-streamed call as the server makes it (the caller ends the final span)."""
        trace = TraceRecord(project_id="p", name="chat")
        prep = self.prepare(model, trace, **extra)
        answer = await self.gateway.chat(prep)
        prep.span.finish()
        trace.finish()
        return answer, prep, trace

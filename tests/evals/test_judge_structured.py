"""The rubric judge asks for its verdict under a JSON schema (`response_format` json_schema) unless told not to,
falls back to free text for a model that refuses `response_format`, and on the bundled model (a llama.cpp
grammar) gets a readable verdict on the first try where free text used to fail."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from pilothouse.config import Deployment, LocalModelSettings, Settings
from pilothouse.evals.judges.parse import parse_verdict
from pilothouse.evals.judges.rubric import verdict_format
from pilothouse.evals.judges.transport import JudgeCallFailed, current_transport
from pilothouse.evals.metrics import Example, MetricSpecError, build_metric
from pilothouse.gateway.providers.base import ChatRequest
from pilothouse.gateway.providers.local import LocalProvider

EXAMPLE = Example(output="Hamlet was written by Charles Dickens in 1850.", input="Who wrote Hamlet?")


class Recording:
    """Replies in turn (an exception is raised), keeping the params of every call."""

    def __init__(self, *replies: str | Exception) -> None:
        self.replies = list(replies)
        self.params: list[dict[str, Any]] = []

    def complete(self, messages: Sequence[Mapping[str, str]], *, model: str, params: Mapping[str, Any]) -> str:
        self.params.append(dict(params))
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


@pytest.fixture
def use() -> Iterator[Any]:
    tokens = []

    def install(found: Any) -> Any:
        tokens.append(current_transport.set(found))
        return found

    yield install
    for token in reversed(tokens):
        current_transport.reset(token)


def _judge(**options: Any) -> Any:
    return build_metric("llm_judge", {"criteria": "The answer is factually accurate.", **options})


def test_the_verdict_schema_follows_the_scale() -> None:
    fmt = verdict_format(0, 3)
    schema = fmt["json_schema"]["schema"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "verdict"
    assert schema["properties"]["score"]["enum"] == [0, 1, 2, 3]
    assert schema["required"] == ["score", "reason"] and schema["additionalProperties"] is False


def test_the_judge_asks_for_structured_output_by_default(use: Any) -> None:
    judge = _judge(scale=[1, 5])
    seen = use(Recording('{"score": 2, "reason": "wrong author"}'))
    score = judge.score(EXAMPLE)
    assert score.value == pytest.approx(0.25) and score.passed is False
    assert seen.params[0]["response_format"] == verdict_format(1, 5)
    # the cost estimate prices the same request the judge sends
    assert judge.planned_requests(EXAMPLE)[0]["response_format"] == verdict_format(1, 5)


def test_structured_false_sends_free_text_requests(use: Any) -> None:
    seen = use(Recording('{"score": 5, "reason": "fine"}'))
    _judge(structured=False).score(EXAMPLE)
    assert "response_format" not in seen.params[0]


def test_a_model_refusing_response_format_is_asked_again_without_it(use: Any) -> None:
    judge = _judge()
    refused = JudgeCallFailed("400: 'response_format' is not supported by this model")
    seen = use(Recording(refused, '{"score": 4, "reason": "ok"}', "Score: 5"))
    assert judge.score(EXAMPLE).value == pytest.approx(0.75)
    assert "response_format" in seen.params[0] and "response_format" not in seen.params[1]
    judge.score(EXAMPLE)  # and the judge does not ask for it again
    assert len(seen.params) == 3 and "response_format" not in seen.params[2]


def test_other_call_failures_are_not_retried(use: Any) -> None:
    seen = use(Recording(JudgeCallFailed("503: upstream unavailable")))
    score = _judge().score(EXAMPLE)
    assert score.value is None and score.passed is None and "503" in score.explanation
    assert len(seen.params) == 1


def test_bad_structured_option_is_refused() -> None:
    with pytest.raises(MetricSpecError, match="structured"):
        _judge(structured="yes")


def test_a_verdict_cut_off_inside_the_object_is_read() -> None:
    assert parse_verdict('{"score": 4, "reason": "the answer names the right', low=1, high=5).score == 4


class LocalTransport:
    """The bundled model called directly (no server), counting calls."""

    def __init__(self, provider: LocalProvider) -> None:
        self.provider, self.calls = provider, 0

    def complete(self, messages: Sequence[Mapping[str, str]], *, model: str, params: Mapping[str, Any]) -> str:
        self.calls += 1
        request = ChatRequest(model=model, messages=[dict(m) for m in messages], params=dict(params))
        result = asyncio.run(self.provider.chat(request))
        return str(result.body["choices"][0]["message"]["content"])


@pytest.mark.model
def test_the_bundled_model_returns_a_readable_verdict_first_time(use: Any) -> None:
    deployment = Deployment(provider="local", model="SmolLM2-135M-Instruct", context_window=8192)
    provider = LocalProvider(deployment, Settings(local=LocalModelSettings(n_ctx=1024)))
    try:
        local = use(LocalTransport(provider))
        for scale in ([1, 5], [0, 1]):
            score = _judge(scale=scale, retries=0).score(EXAMPLE)
            assert score.value is not None, score.explanation  # judged, not "judge failed"
            assert score.details["scores"][0] in range(scale[0], scale[1] + 1)
        assert local.calls == 2  # one call per judgement: no retry was needed
    finally:
        asyncio.run(provider.aclose())


def test_coherence_asks_for_the_same_verdict_schema(use: Any) -> None:
    seen = use(Recording('{"score": 4, "reason": "ordered"}', '{"score": 4, "reason": "ordered"}'))
    assert build_metric("coherence", {}).score(EXAMPLE).value == pytest.approx(0.75)
    build_metric("coherence", {"structured": False}).score(EXAMPLE)
    assert seen.params[0]["response_format"] == verdict_format(1, 5) and "response_format" not in seen.params[1]

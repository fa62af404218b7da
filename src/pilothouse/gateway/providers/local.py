"""The `local` provider: chat through llama.cpp on a bundled GGUF, embeddings through NumPy MiniLM.

A deployment is either the chat model (default: the bundled SmolLM2-135M-Instruct) or the embedding model
(`all-MiniLM-L6-v2`). The runtime (loading, the worker thread, cancellation) is `local_runtime`; the chat
formatting (template, parameters, answer shapes) is `local_chat`. Streaming moves text from the worker
thread to the async generator through an `asyncio.Queue`; a consumer that stops iterating sets the
generation's cancel flag.

Structured output: a request's OpenAI `response_format` (`json_schema` with its `schema`, or `json_object`, with
llama-cpp-python's optional `schema`) becomes a llama.cpp grammar (`local_chat.grammar_for`), so the answer can
only be JSON that follows the schema (plain JSON without one); a schema llama.cpp cannot follow is a bad request.
The rubric judges ask for their verdicts this way (docs/evaluation-metrics.md).

Deployment `options`: `path` (the GGUF file, or for the embedding deployment the model folder),
`chat_format` (a llama-cpp-python format name such as `chatml`, used instead of the chat template in the
GGUF), and the sampling defaults `temperature`, `top_p`, `top_k`, `min_p`, `repeat_penalty`.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, ClassVar

from pilothouse.config import Deployment, Settings
from pilothouse.gateway.providers import local_chat
from pilothouse.gateway.providers.base import (
    ChatRequest,
    ChatResult,
    Chunk,
    EmbeddingResult,
    Message,
    Provider,
    ProviderError,
)
from pilothouse.gateway.providers.local_chat import Formatter
from pilothouse.gateway.providers.local_runtime import (
    ChatModel,
    Generation,
    Prompt,
    Sampling,
    acquire_chat_model,
    default_chat_model_path,
    embed_texts,
    load_embedder,
    release_chat_model,
)

EMBEDDING_MODEL_IDS = frozenset({"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"})


class LocalProvider(Provider):
    """Chat on a llama.cpp GGUF or embed with MiniLM.

    One instance per deployment; asking a chat deployment to embed, or the embedding deployment to chat
    or count tokens, raises ProviderError(kind="bad_request").
    """

    name: ClassVar[str] = "local"
    supports_streaming: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = False
    supports_embeddings: ClassVar[bool] = True
    counts_tokens: ClassVar[bool] = True

    def __init__(self, deployment: Deployment, settings: Settings | None = None) -> None:
        super().__init__(deployment, settings)
        self.settings = settings if settings is not None else Settings()
        self.options = dict(deployment.options)
        self.is_embedding = deployment.model.lower() in EMBEDDING_MODEL_IDS
        self._chat: ChatModel | None = None
        self._formatter: Formatter | None = None
        self._embedder: Any = None
        self._load_lock = threading.Lock()
        self._closed = False

    # -- loading -----------------------------------------------------------------------------------

    def _chat_path(self) -> Path:
        path = self.options.get("path")
        return Path(str(path)).expanduser() if path else default_chat_model_path()

    def _chat_model(self) -> ChatModel:
        """The loaded chat model (loads it on first call; blocking)."""
        if self.is_embedding:
            raise ProviderError(
                "bad_request",
                f"'{self.deployment.model}' is an embedding model; it cannot chat (use /v1/embeddings)",
            )
        if self._closed:
            raise ProviderError("unavailable", "the local provider is closed")
        model = self._chat
        if model is not None:
            return model
        with self._load_lock:
            if self._chat is None:
                local = self.settings.local
                n_threads = local.n_threads or os.cpu_count() or 1
                self._chat = acquire_chat_model(self._chat_path(), local.n_ctx, n_threads)
            return self._chat

    def _embedding_model(self) -> Any:
        if not self.is_embedding:
            raise ProviderError(
                "bad_request",
                f"'{self.deployment.model}' is a chat model; it cannot embed (use the all-MiniLM-L6-v2 deployment)",
            )
        if self._embedder is None:
            path = self.options.get("path")
            self._embedder = load_embedder(Path(str(path)).expanduser() if path else None)
        return self._embedder

    async def warm(self) -> None:
        """Load this deployment's model now (the server calls this at start so /readyz is honest)."""
        if self.is_embedding:
            await asyncio.to_thread(self._embedding_model)
        else:
            await asyncio.to_thread(self._chat_model)

    @property
    def loaded(self) -> bool:
        return (self._embedder if self.is_embedding else self._chat) is not None

    # -- chat --------------------------------------------------------------------------------------

    def _prompt(self, model: ChatModel, messages: list[Message]) -> Prompt:
        formatter = self._formatter
        if formatter is None:
            formatter = self._formatter = local_chat.formatter_for(model, self.options.get("chat_format"))
        return local_chat.build_prompt(model, formatter, messages)

    def count_input_tokens(self, messages: list[Message]) -> int:
        """The exact number of prompt tokens `messages` become under the model's chat template.

        Synchronous and cheap once the model is loaded (it loads the model otherwise); safe to call
        while a generation runs. Raises ProviderError(kind="bad_request") for messages the template
        rejects.
        """
        return len(self._prompt(self._chat_model(), messages).tokens)

    async def _prepare(self, request: ChatRequest) -> tuple[ChatModel, Prompt, Sampling]:
        sampling = local_chat.sampling_for(request.params, self.options, self.deployment.max_output_tokens)
        model = self._chat if self._chat is not None else await asyncio.to_thread(self._chat_model)
        prompt = self._prompt(model, request.messages)
        if len(prompt.tokens) >= model.n_ctx:
            raise ProviderError(
                "context_window",
                f"the messages take {len(prompt.tokens)} tokens but the local model's context holds "
                f"{model.n_ctx} (prompt and answer together); shorten the messages",
            )
        return model, prompt, sampling

    async def chat(self, request: ChatRequest) -> ChatResult:
        model, prompt, sampling = await self._prepare(request)
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(model.executor, model.generate, prompt, sampling, cancel)
        except RuntimeError as exc:  # executor shut down
            raise ProviderError("unavailable", "the local model was unloaded") from exc
        try:
            gen = await future
        except asyncio.CancelledError:
            cancel.set()
            raise
        if gen.finish_reason == "cancelled":
            raise ProviderError("unavailable", "the local model was unloaded during the request")
        body = local_chat.completion_body(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), request.model, gen)
        return ChatResult(body=body, usage=local_chat.usage_of(gen))

    async def chat_stream(self, request: ChatRequest) -> AsyncGenerator[Chunk, None]:
        model, prompt, sampling = await self._prepare(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancel = threading.Event()

        def post(kind: str, payload: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, payload))
            except RuntimeError:  # the loop is closed: nobody is listening any more
                cancel.set()

        def job() -> None:
            try:
                gen = model.generate(prompt, sampling, cancel, lambda text: post("text", text))
            except BaseException as exc:
                post("error", exc)
            else:
                post("done", gen)

        try:
            model.executor.submit(job)
        except RuntimeError as exc:
            raise ProviderError("unavailable", "the local model was unloaded") from exc

        cid = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        try:
            yield local_chat.chunk(cid, created, request.model, {"role": "assistant", "content": ""}, None)
            while True:
                kind, payload = await queue.get()
                if kind == "text":
                    yield local_chat.chunk(cid, created, request.model, {"content": payload}, None)
                elif kind == "error":
                    if isinstance(payload, ProviderError):
                        raise payload
                    raise ProviderError("upstream", f"local generation failed: {payload}") from payload
                else:
                    gen: Generation = payload
                    if gen.finish_reason == "cancelled":
                        raise ProviderError("unavailable", "the local model was unloaded during the request")
                    yield local_chat.chunk(cid, created, request.model, {}, gen.finish_reason)
                    yield local_chat.usage_chunk(cid, created, request.model, gen)
                    return
        finally:
            cancel.set()

    # -- embeddings --------------------------------------------------------------------------------

    async def embed(self, model: str, inputs: list[str]) -> EmbeddingResult:
        embedder = self._embedding_model()
        if not all(isinstance(text, str) for text in inputs):
            raise ProviderError("bad_request", "embedding inputs must be strings")
        vectors, n_tokens = await asyncio.to_thread(embed_texts, embedder, inputs)
        return EmbeddingResult(vectors=vectors, input_tokens=n_tokens)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Release this deployment's hold on the shared model; the last holder frees it."""
        self._closed = True
        self._embedder = None
        with self._load_lock:
            model, self._chat = self._chat, None
        if model is not None and release_chat_model(model):
            await asyncio.to_thread(model.shutdown)

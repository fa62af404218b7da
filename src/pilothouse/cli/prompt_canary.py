"""`pilothouse prompt canary`, `prompt canary-check` and `prompt stats`: canary rollouts with automatic
rollback, and each version's performance over time. Registered on the `prompt` command group."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, table, when
from pilothouse.cli.prompt import prompt_app

RULE_METRICS = "score:NAME, error_rate, cost_per_request or latency_ms"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _interval(decision: dict[str, Any]) -> str:
    interval = decision.get("interval")
    if not interval:
        return "-"
    return f"[{_fmt(interval['lower'])}, {_fmt(interval['upper'])}] ({100 * interval['level']:g}% each side)"


def render_decision(outcome: dict[str, Any]) -> None:
    """Both arms side by side, the difference with its always-valid interval, and the test's numbers."""
    decision = outcome.get("decision")
    if not decision:
        return
    rows = []
    for arm in ("baseline", "candidate"):
        summary = decision.get(arm)
        caller = decision["caller_errors"].get(arm, 0)
        if summary is None:
            rows.append([arm, outcome[arm], decision["samples"][arm], "-", "-", "-", caller])
        else:
            row = [arm, outcome[arm], summary["n"], summary["clusters"], _fmt(summary["mean"]), _fmt(summary["sd"])]
            rows.append([*row, caller])
    table(decision["metric"], ["arm", "version", "n", "users", "mean", "sd", "caller 4xx (left out)"], rows)
    if decision.get("difference") is not None:
        test, effect = decision["test"], decision["min_effect"]
        console.print(
            f"candidate - baseline: {_fmt(decision['difference'])}, always-valid interval {_interval(decision)}; "
            f"{decision['worse_when']} is worse; minimum effect {_fmt(effect['threshold'])} "
            f"(absolute {_fmt(effect['absolute'])}, relative {_fmt(effect['relative'])})"
        )
        console.print(
            f"mSPRT: p = {_fmt(test['p_value'])} (alpha {test['alpha']}), {decision['strata']} time strata of "
            f"{_fmt(decision['window'].get('bucket_s'))} s; min {decision['min_samples']} samples per arm"
        )


def render_canary(outcome: dict[str, Any]) -> None:
    """The split, the rule, the two arms side by side and what the check concluded."""
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
    render_decision(outcome)
    style = {"rolled_back": "bold red", "worse": "bold yellow", "promote": "green", "continue": "cyan"}.get(
        outcome["status"], ""
    )
    head = "ROLLED BACK" if outcome["rolled_back"] else outcome["status"].replace("_", " ")
    console.print(f"[{style}]{head}[/{style}]: {outcome['message']}" if style else f"{head}: {outcome['message']}")


class _CanaryGroup(TyperGroup):
    """`prompt canary NAME LABEL --baseline ...` (no subcommand) means `prompt canary start NAME LABEL ...`."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:  # typer's vendored click types
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "start", self.commands["start"], args
        return super().resolve_command(ctx, args)


canary_app = typer.Typer(
    cls=_CanaryGroup,
    no_args_is_help=True,
    help="Canary rollouts: start one (`canary NAME LABEL ...` or `canary start`), its state (`canary status`), "
    "run its rule now (`canary check`).",
)
prompt_app.add_typer(canary_app, name="canary")


@canary_app.command("start")
def canary(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    label: Annotated[str, typer.Argument(help="The label to split, e.g. production.")],
    baseline: Annotated[int, typer.Option("--baseline", min=1, help="The version that keeps most traffic.")],
    candidate: Annotated[int, typer.Option("--candidate", min=1, help="The version under test.")],
    weight: Annotated[float, typer.Option("--weight", help="The candidate's share of traffic, in percent.")] = 10.0,
    rollback_on: Annotated[
        str | None, typer.Option("--rollback-on", help=f"Roll back when the candidate is worse on {RULE_METRICS}.")
    ] = None,
    min_samples: Annotated[int, typer.Option(min=2, help="Samples needed in each arm before judging.")] = 10,
    alpha: Annotated[
        float, typer.Option(help="Chance of a false rollback, however often the monitor looks (always-valid test).")
    ] = 0.05,
    min_effect_abs: Annotated[
        float | None,
        typer.Option(help="Smallest difference worth a rollback, in the metric's unit (default: per metric)."),
    ] = None,
    min_effect_rel: Annotated[
        float | None,
        typer.Option(help="Smallest difference worth a rollback, as a fraction of the baseline's mean (0.05 = 5%)."),
    ] = None,
    bucket_s: Annotated[
        float | None, typer.Option(help="Width of the time buckets the arms are compared within (default 60).")
    ] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send WEIGHT percent of LABEL's traffic to CANDIDATE (sticky per end user), the rest to BASELINE."""
    rule: dict[str, Any] | None = None
    if rollback_on is not None:
        rule = {"metric": rollback_on, "min_samples": min_samples, "alpha": alpha}
        extra = {"min_effect_abs": min_effect_abs, "min_effect_rel": min_effect_rel, "bucket_s": bucket_s}
        rule.update({k: v for k, v in extra.items() if v is not None})
    with client(url, api_key) as ph:
        outcome = ph.set_canary(name, label, baseline=baseline, candidate=candidate, weight=weight, rollback_rule=rule)
    emit(as_json, outcome, lambda: render_canary(outcome))


def render_status(status: dict[str, Any]) -> None:
    render_canary(status)
    events = status.get("events") or []
    if events:
        rows = []
        for event in events:
            details = event.get("details") or {}
            decision = details.get("decision") or {}
            what = decision.get("why") or details.get("reason") or ""
            rows.append([when(event["ts"]), event["action"], event["actor"], decision.get("state", ""), what])
        table("this canary's audit events", ["when (UTC)", "action", "actor", "state", "why"], rows)


@canary_app.command("status")
def canary_status(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    label: Annotated[str, typer.Argument(help="The label with a canary split.")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The canary's state now: both arms' samples and means, the difference with its always-valid interval,
    the decision (continue, roll back, promote) and why, and the canary's audit events."""
    with client(url, api_key) as ph:
        status = ph.canary_status(name, label)
    emit(as_json, status, lambda: render_status(status))


@canary_app.command("check")
def canary_check_sub(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    label: Annotated[str, typer.Argument(help="The label with a canary split.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the decision; never roll back.")] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decide on the canary now and roll back if the candidate is worse by more than the minimum effect (the
    server also does this every canary_check_interval_s seconds). Same as `prompt canary-check`."""
    canary_check(name, label, dry_run, url, api_key, as_json)


@prompt_app.command("canary-check")
def canary_check(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    label: Annotated[str, typer.Argument(help="The label with a canary split.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the decision; never roll back.")] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decide on the canary now and roll back if the candidate is worse by more than the minimum effect (the
    server also does this every canary_check_interval_s seconds)."""
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
        ("-" if entry["error_rate"] is None else f"{100 * entry['error_rate']:.1f}%")
        + (f" (+{entry['caller_errors']} caller 4xx)" if entry.get("caller_errors") else ""),
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
    until: Annotated[
        str | None, typer.Option(help="Window end (exclusive; default: now): 1d, 12h, epoch seconds or ISO 8601.")
    ] = None,
    label: Annotated[str | None, typer.Option(help="Only the versions this label points at.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Each version's calls, error rate, latency p50/p95, mean tokens, cost per call and scores, by day."""
    with client(url, api_key) as ph:
        result = ph.prompt_stats(name, since=since, until=until, label=label)

    def render() -> None:
        rows: list[list[Any]] = []
        for entry in result["versions"]:
            rows.append(_row(f"v{entry['version']}", "all", entry["total"]))
            rows.extend(_row("", day["day"], day) for day in entry["days"])
        table(
            f"{name} since {when(result['since'])} UTC"
            + (f" until {when(result['until'])} UTC" if result.get("until") is not None else ""),
            ["version", "day", "calls", "errors", "p50 ms", "p95 ms", "in tok", "out tok", "USD/call", "scores"],
            rows,
        )
        if not rows:
            console.print("no calls in this window")

    emit(as_json, result, render)

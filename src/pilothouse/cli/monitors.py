"""`pilothouse monitors`: metric series, alert rules, alert history and online evaluation rules."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, table, when

monitors_app = typer.Typer(help="Monitor metrics of traces, alert rules and online evaluation.", no_args_is_help=True)
rules_app = typer.Typer(help="Alert rules: a metric, a scope, a detector and a webhook.", no_args_is_help=True)
sampling_app = typer.Typer(help="Online evaluation: score a share of new traces.", no_args_is_help=True)
monitors_app.add_typer(rules_app, name="rules")
monitors_app.add_typer(sampling_app, name="online-eval")

ScopeOpts = dict[str, Any]


def _scope(prompt: str | None, version: int | None, model: str | None, tag: str | None) -> ScopeOpts:
    values = {"prompt": prompt, "prompt_version": version, "model": model, "tag": tag}
    return {k: v for k, v in values.items() if v is not None}


PromptOpt = Annotated[str | None, typer.Option("--prompt", help="Only traces of this prompt.")]
VersionOpt = Annotated[int | None, typer.Option("--prompt-version", min=1, help="Only this prompt version.")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Only traces of this model.")]
TagOpt = Annotated[str | None, typer.Option("--tag", help="Only traces with this tag.")]


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "usd":
        return f"${value:.6f}"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value:.4g}"


@monitors_app.command("series")
def series(
    metric: Annotated[str, typer.Argument(help="hallucination_rate, error_rate, latency_p95, cost_per_request, ...")],
    by: Annotated[str | None, typer.Option(help="One series per prompt, prompt_version, model or tag.")] = None,
    window: Annotated[str, typer.Option(help="How far back: 90m, 24h, 7d.")] = "24h",
    bucket: Annotated[str, typer.Option(help="Bucket width: 5m, 1h, 1d.")] = "1h",
    prompt: PromptOpt = None,
    prompt_version: VersionOpt = None,
    model: ModelOpt = None,
    tag: TagOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A metric per time bucket, oldest first."""
    params = {"metric": metric, "window": window, "bucket": bucket, "by": by}
    params.update(_scope(prompt, prompt_version, model, tag))
    with client(url, api_key) as ph:
        found = ph.request("GET", "/api/monitors/series", params={k: v for k, v in params.items() if v is not None})

    def render() -> None:
        rows = [
            [s["group"] or "all", when(b["start"]), b["n"], _value(b["value"], found["unit"])]
            for s in found["data"]
            for b in s["buckets"]
        ]
        table(f"{metric}: {found['description']}", ["group", "bucket (UTC)", "n", "value"], rows)

    emit(as_json, found, render)


@rules_app.command("add")
def add_rule(
    name: Annotated[str, typer.Argument(help="The rule's name in the project.")],
    metric: Annotated[str, typer.Argument(help="The metric to watch, e.g. hallucination_rate.")],
    webhook: Annotated[str | None, typer.Option(help="POST alerts (JSON) to this URL.")] = None,
    detector: Annotated[
        str | None,
        typer.Option(
            help='Detector settings as JSON, e.g. \'{"bucket_s": 3600, "min_abs": 0.02}\' (docs/monitors.md).'
        ),
    ] = None,
    prompt: PromptOpt = None,
    prompt_version: VersionOpt = None,
    model: ModelOpt = None,
    tag: TagOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an alert rule (admin keys)."""
    try:
        settings = json.loads(detector) if detector else {}
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--detector") from None
    if not isinstance(settings, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--detector")
    body = {
        "name": name,
        "metric": metric,
        "scope": _scope(prompt, prompt_version, model, tag),
        "detector": settings,
        "webhook_url": webhook,
    }
    with client(url, api_key) as ph:
        rule = ph.request("POST", "/api/monitors/rules", json=body)
    emit(as_json, rule, lambda: console.print(f"added monitor rule {rule['name']} on {rule['metric']}"))


@rules_app.command("list")
def list_rules(url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """The project's alert rules."""
    with client(url, api_key) as ph:
        found = ph.request("GET", "/api/monitors/rules")
    rows = [
        [r["name"], r["metric"], json.dumps(r["scope"]), r["detector"]["window_s"], r["webhook_url"]]
        for r in found["data"]
    ]
    emit(as_json, found, lambda: table("Monitor rules", ["name", "metric", "scope", "window (s)", "webhook"], rows))


@rules_app.command("remove")
def remove_rule(
    name: Annotated[str, typer.Argument(help="The rule to remove (its alert history stays).")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove an alert rule (admin keys)."""
    with client(url, api_key) as ph:
        done = ph.request("DELETE", f"/api/monitors/rules/{name}")
    emit(as_json, done, lambda: console.print(f"removed monitor rule {name}"))


@monitors_app.command("alerts")
def alerts(
    rule: Annotated[str | None, typer.Option(help="Only this rule's alerts.")] = None,
    status: Annotated[str | None, typer.Option(help="firing or resolved.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many alerts, newest first.")] = 50,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Alert episodes, newest first, with their evidence."""
    params = {"rule": rule, "status": status, "limit": limit}
    with client(url, api_key) as ph:
        found = ph.request("GET", "/api/monitors/alerts", params={k: v for k, v in params.items() if v is not None})

    def render() -> None:
        rows = []
        for a in found["data"]:
            ev = a["evidence"]
            base = (ev.get("baseline") or {}).get("mean")
            rows.append(
                [
                    a["rule"],
                    a["metric"],
                    a["status"],
                    when(a["opened_at"]),
                    when(a["resolved_at"]),
                    _value(base, ""),
                    _value(ev.get("level"), ""),
                    f"p={ev.get('p_value')} auc={ev.get('auc')}"
                    if a["metric"] == "input_drift"
                    else f"{ev.get('statistic')} >= {ev.get('threshold')}",
                    ", ".join(ev.get("example_trace_ids", [])[:3]),
                ]
            )
        table(
            "Alerts",
            ["rule", "metric", "status", "opened", "resolved", "baseline", "level", "test", "example traces"],
            rows,
        )

    emit(as_json, found, render)


@sampling_app.command("add")
def add_sampling(
    name: Annotated[str, typer.Argument(help="The rule's name in the project.")],
    rate: Annotated[float, typer.Option(min=0.0001, max=1.0, help="Share of matching traces to score.")],
    scorer: Annotated[list[str], typer.Option(help="A metric (repeatable): groundedness, refusal, toxicity, ...")],
    budget: Annotated[int, typer.Option(min=1, max=10_000, help="Traces scored per pass at most.")] = 100,
    prompt: PromptOpt = None,
    prompt_version: VersionOpt = None,
    model: ModelOpt = None,
    tag: TagOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an online evaluation rule (admin keys)."""
    body = {
        "name": name,
        "rate": rate,
        "scorers": scorer,
        "budget": budget,
        "scope": _scope(prompt, prompt_version, model, tag),
    }
    with client(url, api_key) as ph:
        rule = ph.request("POST", "/api/monitors/online-eval", json=body)
    emit(as_json, rule, lambda: console.print(f"added online evaluation rule {rule['name']}"))


@sampling_app.command("list")
def list_sampling(url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """The project's online evaluation rules."""
    with client(url, api_key) as ph:
        found = ph.request("GET", "/api/monitors/online-eval")
    rows = [[r["name"], r["rate"], ", ".join(r["scorers"]), r["budget"], when(r["cursor_at"])] for r in found["data"]]
    emit(as_json, found, lambda: table("Online evaluation", ["name", "rate", "scorers", "budget", "cursor"], rows))


@sampling_app.command("remove")
def remove_sampling(
    name: Annotated[str, typer.Argument(help="The sampling rule to remove.")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove an online evaluation rule (admin keys); its scores stay."""
    with client(url, api_key) as ph:
        done = ph.request("DELETE", f"/api/monitors/online-eval/{name}")
    emit(as_json, done, lambda: console.print(f"removed online evaluation rule {name}"))


@rules_app.command("pin-reference")
def pin_reference(
    name: Annotated[str, typer.Argument(help="An input_drift rule.")],
    start: Annotated[
        str | None, typer.Option(help="Reference start: ISO time, epoch s or a duration ago (14d).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Reference end: ISO time, epoch s or a duration ago (7d).")] = None,
    trailing: Annotated[bool, typer.Option("--trailing", help="Unpin: compare with the window before.")] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pin an input_drift rule's reference window, or go back to the trailing one (admin keys)."""
    body: dict[str, Any] = {"trailing": True} if trailing else {"start": start, "end": end}
    with client(url, api_key) as ph:
        rule = ph.request("PUT", f"/api/monitors/rules/{name}/reference", json=body)
    d = rule["detector"]
    said = "trailing" if d["reference_start"] is None else f"{when(d['reference_start'])} to {when(d['reference_end'])}"
    emit(as_json, rule, lambda: console.print(f"{name}: reference {said}"))


@monitors_app.command("drift")
def drift(
    name: Annotated[str, typer.Argument(help="An input_drift rule.")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """An input_drift rule's comparison now: windows, sample sizes, p-value, effect, farthest inputs."""
    with client(url, api_key) as ph:
        found = ph.request("GET", f"/api/monitors/rules/{name}/drift")

    def render() -> None:
        w, r = found["window"], found["baseline_window"]
        rows = [
            ["recent window", f"{when(w['start'])} to {when(w['end'])}", found.get("n_recent", "-")],
            ["reference" + (" (pinned)" if r["pinned"] else ""), f"{when(r['start'])} to {when(r['end'])}",
             found.get("n_reference", "-")],
        ]  # fmt: skip
        table(f"input drift: {name}", ["", "window (UTC)", "inputs"], rows)
        console.print(f"{found['reason']}: p = {found.get('p_value', '-')} (alpha {found['alpha']}), "
                      f"AUC = {found.get('auc', '-')} (min {found['min_effect']})")  # fmt: skip
        if found["example_trace_ids"]:
            console.print("farthest recent inputs: " + ", ".join(found["example_trace_ids"]))

    emit(as_json, found, render)

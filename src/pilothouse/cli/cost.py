"""`pilothouse cost`: cost reports over the traces, and cost forecasts before running a batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, err_console, table, when
from pilothouse.cli.prompt import coerce
from pilothouse.costs.grouping import GROUP_BY

cost_app = typer.Typer(help="Cost reports and cost forecasts.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(1)


# -- report -----------------------------------------------------------------------------------------------------
def _group_label(row: dict[str, Any]) -> str:
    if row["group"] is None:
        return "(none)"
    return f"{row['name']} ({row['group']})" if row.get("name") else str(row["group"])


def _percent(rate: float | None) -> str | None:
    return None if rate is None else f"{rate * 100:.1f}%"


def _report_row(label: str, stats: dict[str, Any]) -> list[Any]:
    latency = stats["latency_ms"]
    return [
        label,
        stats["requests"],
        _percent(stats["error_rate"]),
        stats["input_tokens"],
        stats["output_tokens"],
        stats["cost_usd"],
        stats["cache_saved_usd"],
        latency["p50"],
        latency["p95"],
        latency["p99"],
        stats["ttft_ms"]["p50"],
        stats["output_tokens_per_s"],
    ]


def _render_report(report: dict[str, Any]) -> None:
    span = f"since {when(report['since'])} UTC" + (f" until {when(report['until'])} UTC" if report["until"] else "")
    columns = ["group", "requests", "errors", "in tok", "out tok", "cost USD", "cache saved USD"]
    columns += ["p50 ms", "p95 ms", "p99 ms", "ttft p50 ms", "out tok/s"]
    rows = [_report_row(_group_label(r), r) for r in report["groups"]]
    rows.append(_report_row("total", report["total"]))
    table(f"Cost by {report['by']} {span}", columns, rows)
    if report["by"] != "model" and report["models"]:
        table(
            "Speed per model",
            ["model", "llm calls", "ttft p50 ms", "streams", "out tok/s"],
            [
                [m["model"], m["llm_calls"], m["ttft_ms"]["p50"], m["ttft_ms"]["samples"], m["output_tokens_per_s"]]
                for m in report["models"]
            ],
        )
    unpriced = report["total"]["unpriced_calls"]
    if unpriced:
        console.print(f"{unpriced} call(s) used a model whose price is unknown; their cost is not in the totals.")


@cost_app.command("report")
def report(
    by: Annotated[str, typer.Option(help=f"Group by: {', '.join(GROUP_BY)}.")] = "model",
    since: Annotated[str, typer.Option(help="Start: a duration before now (7d, 24h, 30m), epoch or ISO 8601.")] = "7d",
    until: Annotated[str | None, typer.Option(help="End (exclusive), same forms as --since.")] = None,
    project: Annotated[str | None, typer.Option(help="Owner keys: another project (id or name), or `all`.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Requests, tokens, cost, cache savings, error rate, latency p50/p95/p99, time to first token and output
    tokens per second, per key, project, model, end user or prompt."""
    if by not in GROUP_BY:
        raise _fail(f"--by must be one of {', '.join(GROUP_BY)}, got {by!r}")
    with client(url, api_key) as ph:
        result = ph.cost_report(by=by, since=since, until=until, project=project)
    emit(as_json, result, lambda: _render_report(result))


# -- estimate ---------------------------------------------------------------------------------------------------
def read_requests(path: Path) -> list[dict[str, Any]]:
    """The chat bodies of a JSONL file, one per non-blank line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise _fail(f"cannot read {path}: {exc.strerror}") from None
    bodies = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
        except ValueError as exc:
            raise _fail(f"{path}:{number}: not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise _fail(f"{path}:{number}: expected a chat-completions body (a JSON object)")
        bodies.append(body)
    if not bodies:
        raise _fail(f"{path} has no requests (one JSON chat body per line)")
    return bodies


def _variables_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise _fail(f"{path} is not JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise _fail(f"{path} must hold a JSON object of variables")
    return loaded


def _price(estimate: dict[str, Any]) -> str:
    price = estimate["price"]
    if price["source"] == "unknown":
        return "unknown"
    return f"{price['input_per_mtok']} / {price['output_per_mtok']} ({price['source']})"


def _output_cell(outputs: dict[str, Any], history: str) -> str:
    """The output tokens priced per request; the assumed p50/p95 too where max_tokens capped them."""
    low, high = outputs.get("priced_low", outputs["p50"]), outputs.get("priced_high", outputs["p95"])
    if (low, high) == (outputs["p50"], outputs["p95"]):
        return f"{low:g} / {high:g} ({history})"
    return f"{low:g} / {high:g} (max_tokens caps the {history} {outputs['p50']} / {outputs['p95']})"


def _render_estimate(result: dict[str, Any], subject: str) -> None:
    rows = []
    for e in result["estimates"]:
        inputs, outputs, costs = e["input_tokens"], e["output_tokens"], e["cost_usd"]
        history = f"history, {outputs['samples']} calls" if outputs["source"] == "history" else "default"
        rows.append(
            [
                e["model"],
                _price(e),
                f"{inputs['per_request']} ({inputs['counting']})",
                _output_cell(outputs, history),
                "unknown" if costs is None else f"{costs['low']} to {costs['high']}",
                "unknown" if costs is None else f"{costs['per_request_low']} to {costs['per_request_high']}",
                None if costs is None else costs["worst_case"],
            ]
        )
    columns = ["model", "USD per 1M in / out", "input tok per request", "output tok priced low / high"]
    columns += ["total USD low to high", "per request USD", "worst case USD"]
    table(f"Estimate for {subject}", columns, rows)
    for e in result["estimates"]:
        for note in e["notes"]:
            console.print(f"• {e['model']}: {note}", highlight=False)
    console.print(f"prices: catalog {result['price_catalog_version']} unless marked config or local", highlight=False)


@cost_app.command("estimate")
def estimate(
    prompt: Annotated[str | None, typer.Option(help="A registered prompt: NAME, NAME@VERSION, NAME@LABEL.")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="A JSONL file of chat bodies (one OpenAI request per line).")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="A model to price on (repeatable); by default the prompt's, or each line's own."),
    ] = None,
    n: Annotated[int | None, typer.Option("-n", min=1, help="How many calls of the prompt (default 1).")] = None,
    variables: Annotated[
        Path | None, typer.Option("--variables", help="A JSON file with the prompt's variables (an object).")
    ] = None,
    var: Annotated[list[str] | None, typer.Option("--var", help="A variable, NAME=VALUE (repeatable).")] = None,
    output_tokens: Annotated[
        int | None, typer.Option(min=0, help="Output tokens per request where there is no history (default 256).")
    ] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Forecast what N calls of a prompt, or a file of requests, would cost on each model: a low (p50 of past
    answer lengths) to high (p95) range, with exact input tokens where the model's tokenizer is here."""
    if (prompt is None) == (file is None):
        raise _fail("give either --prompt NAME[@REF] or --file requests.jsonl")
    if file is not None and (n is not None or variables is not None or var):
        raise _fail("-n, --variables and --var apply to --prompt; in --file each line is one request")
    models = model or []
    with client(url, api_key) as ph:
        if file is not None:
            bodies = read_requests(file)
            result = ph.estimate_cost(models=models, requests=bodies, output_tokens=output_tokens)
            count = result["requests"]
            subject = f"{count} request{'' if count == 1 else 's'} from {file}"
        else:
            assert prompt is not None
            values = _variables_file(variables)
            if var:
                from pilothouse.prompts.registry.refs import parse_ref

                try:
                    ref = parse_ref(prompt)
                except ValueError as exc:
                    raise _fail(str(exc)) from None
                schema = ph.get_prompt_version(ref.name, ref.selector)["variables"]
                for item in var:
                    key, sep, value = item.partition("=")
                    if not sep:
                        raise _fail(f"--var {item!r}: expected NAME=VALUE")
                    values[key] = coerce(schema.get(key), key, value)
            result = ph.estimate_cost(
                models=models, prompt=prompt, variables=values, n=n or 1, output_tokens=output_tokens
            )
            found = result["prompt"]
            subject = f"{result['requests']} calls of prompt {found['name']}@{found['version']}"
    emit(as_json, result, lambda: _render_estimate(result, subject))

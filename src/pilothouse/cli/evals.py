"""`pilothouse eval`: run a dataset against prompt versions or models on the server, follow it with a progress
bar, and read the results: summary with intervals, per-item results, paired comparison of two variants.

Runs go through the gateway inside the server (budgets, limits, cache, guards and traces apply, source `eval`);
this command only starts, follows and reads them, so stopping it (Ctrl-C) does not stop a run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, err_console, table

eval_app = typer.Typer(
    help="Evaluations: run datasets against variants, with metrics and statistics.", no_args_is_help=True
)

IdArg = Annotated[str, typer.Argument(help="The experiment's id (from `eval run` or `eval list`).")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def metric_option(text: str) -> dict[str, Any]:
    """`NAME` or `NAME={json options}`."""
    name, sep, options = text.partition("=")
    if not sep:
        return {"name": name.strip()}
    try:
        parsed = json.loads(options)
    except json.JSONDecodeError:
        raise _fail(
            f"--metric {text!r}: the options after '=' must be a JSON object, e.g. 'regex={{\"pattern\": \"^Hi\"}}'"
        ) from None
    if not isinstance(parsed, dict):
        raise _fail(f"--metric {text!r}: the options after '=' must be a JSON object")
    return {"name": name.strip(), "options": parsed}


def _params(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        raise _fail(f"--params {text!r} is not a JSON object, e.g. '{{\"temperature\": 0}}'") from None
    if not isinstance(parsed, dict):
        raise _fail("--params must be a JSON object")
    return parsed


def _interval(found: dict[str, Any] | None) -> str:
    if not found:
        return ""
    if found["method"] == "degenerate":
        return f"{found['estimate']:.3f}"
    return f"{found['estimate']:.3f} [{found['low']:.3f}, {found['high']:.3f}]"


def render_summary(run: dict[str, Any]) -> None:
    progress = run["progress"]
    console.print(
        f"{run['name']} ({run['id']}): {run['status']}; {progress['done']}/{progress['total']} scored, "
        f"{progress['errors']} errors; spent ${run['spent_usd']}"
        + (f" of ${run['max_cost_usd']}" if run["max_cost_usd"] else ""),
        highlight=False,
        markup=False,
    )
    if run["error"]:
        console.print(run["error"], highlight=False, markup=False)
    rows = []
    for variant, found in run["summary"].items():
        for metric, stats in found["metrics"].items():
            rows.append(
                [
                    variant,
                    metric,
                    _interval(stats["mean"]),
                    _interval(stats["pass_rate"]),
                    str(stats["judged"]),
                    str(stats["unjudged"]),
                ]
            )
    table(
        "Results (mean and pass rate with 95% intervals)",
        ["variant", "metric", "mean", "pass rate", "judged", "not judged"],
        rows,
    )


@eval_app.command("run")
def run(
    dataset: Annotated[str, typer.Option(help="The dataset: NAME or NAME@VERSION (default: the latest).")],
    prompt: Annotated[list[str], typer.Option(help="A variant: a prompt version NAME@REF (repeat for several).")] = [],  # noqa: B006
    model: Annotated[list[str], typer.Option(help="A variant: a model called with the item's messages (repeat).")] = [],  # noqa: B006
    metric: Annotated[list[str], typer.Option(help="A metric: NAME or NAME={json options} (repeat).")] = [],  # noqa: B006
    params: Annotated[
        str | None, typer.Option(help="Chat parameters for every variant, JSON: '{\"temperature\": 0}'.")
    ] = None,
    split: Annotated[str | None, typer.Option(help="Only this split's items.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N items.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=32, help="Calls in flight at once.")] = 4,
    max_cost: Annotated[
        str | None, typer.Option(help="Hard cap in USD: refused before starting if the estimate is above it.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="The run's name (default: from the dataset and variants).")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the run with a progress bar until it ends.")] = True,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a run of a dataset against prompt versions and/or models, scored by metrics. Exits 1 if the run
    fails or stops at its cost cap."""
    if not prompt and not model:
        raise _fail("give at least one variant: --prompt NAME@REF or --model MODEL")
    if not metric:
        raise _fail("give at least one --metric (e.g. --metric exact_match)")
    shared = _params(params)
    variants: list[dict[str, Any]] = [{"name": ref, "prompt": ref, "params": shared} for ref in prompt]
    variants += [{"name": m, "model": m, "params": shared} for m in model]
    names = [str(v["name"]) for v in variants]
    dataset_name, _, version = dataset.partition("@")
    if version and not version.isdigit():
        raise _fail(f"--dataset {dataset!r}: the version after '@' is a number")
    with client(url, api_key) as ph:
        started = ph.start_experiment(
            name or f"{dataset_name}: {' vs '.join(names)}",
            dataset=dataset_name,
            dataset_version=int(version) if version else None,
            split=split,
            variants=variants,
            metrics=[metric_option(m) for m in metric],
            concurrency=concurrency,
            max_cost_usd=max_cost,
            limit=limit,
        )
        if not as_json:
            estimate = started["estimate_usd"]
            console.print(
                f"started {started['id']}: {started['progress']['total']} calls, estimated up to ${estimate}"
                if estimate
                else f"started {started['id']}: {started['progress']['total']} calls",
                highlight=False,
                markup=False,
            )
        final = _follow(ph, started["id"], started["progress"]["total"], quiet=as_json) if wait else started
    emit(as_json, final, lambda: render_summary(final))
    if final["status"] in ("failed", "capped", "interrupted"):
        raise typer.Exit(1)


@eval_app.command("status")
def status(experiment_id: IdArg, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """A run's status, progress, spend, and each variant's metrics with 95% intervals."""
    with client(url, api_key) as ph:
        found = ph.get_experiment(experiment_id)
    emit(as_json, found, lambda: render_summary(found))


@eval_app.command("list")
def list_runs(url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """The project's runs, newest first."""
    with client(url, api_key) as ph:
        found = ph.list_experiments()
    rows = [[e["id"], e["name"], e["status"], str(e["items"])] for e in found]
    emit(as_json, found, lambda: table("Experiments", ["id", "name", "status", "items"], rows))


@eval_app.command("results")
def results(
    experiment_id: IdArg,
    variant: Annotated[str | None, typer.Option(help="Only this variant.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Each item's output and scores (with the explanations in --json)."""
    with client(url, api_key) as ph:
        found = ph.experiment_results(experiment_id, variant=variant)

    def render() -> None:
        rows = []
        for r in found:
            scores = ", ".join(f"{k}={v['value']}" for k, v in r["scores"].items())
            rows.append([r["variant"], r["item_id"], r["status"], (r["output"] or r["error"] or "")[:60], scores])
        table("Results", ["variant", "item", "status", "output", "scores"], rows)

    emit(as_json, found, render)


@eval_app.command("compare")
def compare(
    experiment_id: IdArg,
    baseline: Annotated[str, typer.Option(help="The variant to compare against.")],
    candidate: Annotated[str, typer.Option(help="The variant being judged.")],
    correction: Annotated[str, typer.Option(help="holm, bh (Benjamini-Hochberg) or none.")] = "holm",
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Candidate against baseline, paired by item: per metric the difference with its 95% interval, the
    p-value adjusted for the number of metrics, and a verdict."""
    with client(url, api_key) as ph:
        found = ph.compare_experiment(experiment_id, baseline=baseline, candidate=candidate, correction=correction)

    def render() -> None:
        rows = []
        for m in found["metrics"]:
            if "p_value" not in m:
                rows.append([m["metric"], "", "", "", m.get("note", "")])
                continue
            rows.append([m["metric"], str(m["n"]), _interval(m["difference"]), f"{m['p_adjusted']:.4f}", m["verdict"]])
        table(
            f"{candidate} vs {baseline} ({found['correction']})",
            ["metric", "items", "difference", "p (adjusted)", "verdict"],
            rows,
        )

    emit(as_json, found, render)


def _follow(ph: Any, run_id: str, total: int, quiet: bool) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, disable=quiet) as bar:
        task = bar.add_task("scoring", total=total)

        def show(found: dict[str, Any]) -> None:
            p = found["progress"]
            bar.update(task, completed=p["done"] + p["errors"], description=f"scoring (${found['spent_usd']})")

        try:
            final: dict[str, Any] = ph.wait_experiment(run_id, on_progress=show)
        except KeyboardInterrupt:
            err_console.print(f"stopped following; the run goes on: pilothouse eval status {run_id}")
            raise typer.Exit(130) from None
    return final


@eval_app.command("gate")
def gate(
    dataset: Annotated[str, typer.Option(help="The dataset: NAME or NAME@VERSION (default: the latest).")],
    baseline: Annotated[str, typer.Option(help="What runs today: PROMPT@LABEL or PROMPT@VERSION.")],
    candidate: Annotated[str, typer.Option(help="What would replace it: PROMPT@VERSION.")],
    metric: Annotated[list[str], typer.Option(help="A gated metric: NAME or NAME={json options} (repeat).")],
    alpha: Annotated[
        float, typer.Option(min=0.0001, max=0.5, help="Significance level across all gated metrics.")
    ] = 0.05,
    min_effect: Annotated[
        float, typer.Option(min=0.0, help="Ignore regressions smaller than this (metric units).")
    ] = 0.0,
    split: Annotated[str | None, typer.Option(help="Only this split's items.")] = None,
    max_cost: Annotated[str | None, typer.Option(help="Hard cap in USD for the run.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=32, help="Calls in flight at once.")] = 4,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML here (one test case per gated metric).")] = None,
    report: Annotated[Path | None, typer.Option(help="Also write the Markdown report to this file.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run baseline and candidate on the dataset and exit 1 when the candidate is significantly worse on a
    gated metric (paired test, Holm-corrected across the metrics); prints a Markdown report. Exit 2: the run
    itself failed or stopped at its cap, so nothing was decided."""
    from pilothouse.evals.experiments.gate import decide, junit_xml, markdown_report

    if not metric:
        raise _fail("give at least one gated --metric")
    dataset_name, _, version = dataset.partition("@")
    if version and not version.isdigit():
        raise _fail(f"--dataset {dataset!r}: the version after '@' is a number")
    metrics = [metric_option(m) for m in metric]
    with client(url, api_key) as ph:
        started = ph.start_experiment(
            f"gate {candidate} vs {baseline}",
            dataset=dataset_name,
            dataset_version=int(version) if version else None,
            split=split,
            variants=[{"name": "baseline", "prompt": baseline}, {"name": "candidate", "prompt": candidate}],
            metrics=metrics,
            concurrency=concurrency,
            max_cost_usd=max_cost,
        )
        final = _follow(ph, started["id"], started["progress"]["total"], quiet=as_json)
        if final["status"] != "done":
            raise _fail(f"the run {final['id']} ended {final['status']}: {final['error'] or 'see eval status'}", 2)
        comparison = ph.request(
            "GET",
            f"/api/evals/experiments/{final['id']}/compare",
            params={"baseline": "baseline", "candidate": "candidate", "alpha": alpha},
        )
    comparison["baseline"], comparison["candidate"] = baseline, candidate
    result = decide(comparison, final["metrics"], min_effect=min_effect)
    text = markdown_report(result, comparison, run_id=final["id"], dataset=dataset)
    verdict = {"passed": result.passed, "failures": result.failures, "run": final["id"], "comparison": comparison}
    emit(as_json, verdict, lambda: typer.echo(text, nl=False))
    if report is not None:
        report.write_text(text, encoding="utf-8")
    if junit is not None:
        junit.write_text(junit_xml(result, comparison), encoding="utf-8")
    if not result.passed:
        raise typer.Exit(1)


def _markdown(run: dict[str, Any], comparison: dict[str, Any] | None) -> str:
    p = run["progress"]
    data = run["dataset"]
    lines = [
        f"# {run['name']}",
        "",
        f"Run `{run['id']}` ({run['status']}) on dataset `{data['name']}` version {data['version']}"
        + (f", split `{data['split']}`" if data["split"] else "")
        + f": {p['done']} of {p['total']} scored, {p['errors']} errors, ${run['spent_usd']} spent.",
        "",
        "| variant | metric | mean [95% CI] | pass rate [95% CI] | judged | not judged |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for variant, found in run["summary"].items():
        for metric, stats in found["metrics"].items():
            lines.append(
                f"| {variant} | {metric} | {_interval(stats['mean'])} | {_interval(stats['pass_rate'])} | "
                f"{stats['judged']} | {stats['unjudged']} |"
            )
    if comparison is not None:
        lines += [
            "",
            f"## {comparison['candidate']} vs {comparison['baseline']}",
            "",
            f"Paired by item; p-values {comparison['correction']}-adjusted across metrics.",
            "",
            "| metric | items | difference [95% CI] | p (adjusted) | verdict |",
            "| --- | --- | --- | --- | --- |",
        ]
        for m in comparison["metrics"]:
            if "p_value" in m:
                shown = f"{_interval(m['difference'])} | {m['p_adjusted']:.4f}"
                lines.append(f"| {m['metric']} | {m['n']} | {shown} | {m['verdict']} |")
            else:
                lines.append(f"| {m['metric']} | 0 | | | {m.get('note', 'not compared')} |")
    return "\n".join(lines) + "\n"


@eval_app.command("report")
def report(
    experiment_id: IdArg,
    baseline: Annotated[str | None, typer.Option(help="Add a comparison: the variant to compare against.")] = None,
    candidate: Annotated[str | None, typer.Option(help="Add a comparison: the variant being judged.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the Markdown here instead of stdout.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """A run as a Markdown report: each variant's metrics with intervals, and a paired comparison of two
    variants when --baseline and --candidate are given."""
    if (baseline is None) != (candidate is None):
        raise _fail("give both --baseline and --candidate, or neither")
    with client(url, api_key) as ph:
        run = ph.get_experiment(experiment_id)
        comparison = None
        if baseline is not None and candidate is not None:
            comparison = ph.compare_experiment(experiment_id, baseline=baseline, candidate=candidate)
    text = _markdown(run, comparison)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {out}", highlight=False)


@eval_app.command("calibrate")
def calibrate_judge(
    experiment_id: IdArg,
    metric: Annotated[str, typer.Option(help="The judge's metric key in the run (e.g. llm_judge).")],
    label: Annotated[
        str,
        typer.Option(help="People's labels: an item metadata key (e.g. human), or queue:NAME (an annotation queue)."),
    ],
    variant: Annotated[str | None, typer.Option(help="Only this variant's answers.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """How far to trust a judge: its agreement with people's labels on the run's items (Cohen's kappa and the
    confusion matrix, or Spearman's rho for numeric labels)."""
    with client(url, api_key) as ph:
        found = ph.judge_calibration(experiment_id, metric=metric, label=label, variant=variant)

    def render() -> None:
        head = f"{found['metric']} against {found['label']}: {found['n']} items"
        head += f" ({found['unjudged']} not judged, {found['unlabelled']} not labelled)"
        console.print(head, highlight=False, markup=False)
        if "note" in found:
            console.print(found["note"], highlight=False, markup=False)
        elif found["kind"] == "numeric":
            console.print(f"Spearman's rho {found['spearman']:.3f}", highlight=False, markup=False)
        else:
            console.print(
                f"accuracy {found['accuracy']:.3f}; Cohen's kappa {found['kappa']:.3f} ({found['kappa_reading']})",
                highlight=False,
                markup=False,
            )
            labels = found["confusion"]["labels"]
            counts = found["confusion"]["counts"]
            rows = [[f"people: {lab}", *map(str, row)] for lab, row in zip(labels, counts, strict=True)]
            table("Confusion (rows: people, columns: judge)", ["", *labels], rows)

    emit(as_json, found, render)


@eval_app.command("resume")
def resume(experiment_id: IdArg, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Continue an interrupted, capped or failed run; items already scored are not run (or paid for) again."""
    with client(url, api_key) as ph:
        found = ph.resume_experiment(experiment_id)
    emit(
        as_json,
        found,
        lambda: console.print(
            f"resumed {found['id']}: {found['progress']['done']}/{found['progress']['total']} already scored",
            highlight=False,
            markup=False,
        ),
    )

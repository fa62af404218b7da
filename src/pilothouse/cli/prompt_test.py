"""`pilothouse prompt test` (run a prompt's scenario tests through the gateway) and `pilothouse prompt promote`
(gated promotion on the server). Registered on the `prompt` command group.

Exit codes of `prompt test`: 0 every case passed, 1 a case failed (or the server refused), 2 the reference or
the tests file is invalid.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, err_console, print_json, table
from pilothouse.cli.prompt import prompt_app
from pilothouse.sdk.client import Pilothouse, PilothouseError

# The runner, the scenario files and the OpenAI client are imported inside the commands: `pilothouse --help`
# and every other command stay fast (tests/cli/test_startup.py).
if TYPE_CHECKING:
    from rich.progress import Progress

    from pilothouse.prompts.registry.refs import PromptRef
    from pilothouse.prompts.testing.runner import CaseResult, SuiteResult
    from pilothouse.prompts.testing.scenarios import Case

EXIT_FAILED = 1
EXIT_INVALID = 2


def _invalid(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(EXIT_INVALID)


def _load_cases(ph: Pilothouse, name: str, file: Path | None) -> list[Case]:
    from pilothouse.prompts.testing.scenarios import ScenarioFileError, load_cases_file, parse_cases

    try:
        if file is not None:
            return load_cases_file(file)
        return parse_cases(ph.prompt_tests(name), source=f"the stored tests of '{name}'")
    except ScenarioFileError as exc:
        raise _invalid(str(exc)) from None


def _resolve_version(ph: Pilothouse, ref: PromptRef) -> int:
    """The version number a reference names now (a label with a canary split: its baseline); a version that
    does not exist ends the command here rather than failing every case."""
    version: dict[str, Any] = ph.get_prompt_version(ref.name, ref.selector)
    return int(version["version"])


async def _run(ph: Pilothouse, target: str, version: int, cases: list[Case], show_progress: bool) -> SuiteResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pilothouse.prompts.testing.http_executor import HttpExecutor
    from pilothouse.prompts.testing.runner import run_suite

    executor = HttpExecutor(ph.url, ph.api_key, target)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not show_progress,
    )
    task = progress.add_task(f"testing {target}", total=len(cases))

    def advance(result: CaseResult) -> None:
        if show_progress:
            mark = "[green]✓[/green]" if result.passed else "[red]✗[/red]"
            progress.console.print(f"{mark} {result.name}")
        progress.advance(task)

    try:
        with progress:
            return await run_suite(cases, executor, target=target, version=version, progress=advance)
    finally:
        await executor.aclose()


def show_progress(as_json: bool) -> bool:
    """Progress goes to stderr, and only to a terminal: piped or redirected output gets nothing extra."""
    return not as_json and err_console.is_terminal


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def render_suite(suite: SuiteResult) -> None:
    """One row per assertion: case, verdict, assertion, detail, latency and output tokens."""
    rows: list[list[Any]] = []
    for case in suite.cases:
        execution = case.execution
        latency = _ms(execution.latency_ms if execution else None)
        tokens = execution.output_tokens if execution else None
        verdict = "[green]PASS[/green]" if case.passed else "[red]FAIL[/red]"
        if case.error is not None:
            checks = [("(call)", False, case.error)]
        elif not case.outcomes:
            checks = [("(call succeeded)", True, "no assertions")]
        else:
            checks = [(o.assertion, o.passed, o.detail) for o in case.outcomes]
        for i, (assertion, passed, detail) in enumerate(checks):
            mark = "[green]ok[/green]" if passed else "[red]failed[/red]"
            first = i == 0
            rows.append(
                [
                    case.name if first else "",
                    verdict if first else "",
                    f"{mark} {assertion}",
                    detail,
                    latency if first else "",
                    tokens if first else "",
                ]
            )
    table(f"Scenario tests of {suite.target}", ["case", "result", "assertion", "detail", "latency", "tokens"], rows)
    style = "green" if suite.ok else "red"
    console.print(f"[{style}]{suite.passed}/{suite.total} cases passed[/{style}] ({suite.target})")


@prompt_app.command("test")
def test(
    ref: Annotated[str, typer.Argument(help="NAME (its production label), NAME@VERSION, NAME@LABEL or NAME@sha:HASH.")],
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="A tests file (NAME.tests.yaml) (default: the suite stored on the server)."),
    ] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Also write the results as JUnit XML here.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a prompt version's scenario tests through the gateway; exit code 1 if any case fails. A bar and each
    case's verdict show on a terminal (on stderr); nothing extra when the output is piped."""
    import asyncio

    from pilothouse.prompts.registry.refs import parse_ref
    from pilothouse.prompts.testing.junit import to_junit_xml

    try:
        parsed = parse_ref(ref)
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    with client(url, api_key) as ph:
        cases = _load_cases(ph, parsed.name, file)
        version = _resolve_version(ph, parsed)
        target = f"{parsed.name}@{version}"
        suite = asyncio.run(_run(ph, target, version, cases, show_progress=show_progress(as_json)))
    if junit is not None:
        junit.write_text(to_junit_xml(suite), encoding="utf-8")
    emit(as_json, suite.to_dict(), lambda: render_suite(suite))
    if not suite.ok:
        raise typer.Exit(EXIT_FAILED)


def render_comparison(comparison: dict[str, Any]) -> None:
    """Candidate and current version side by side, case by case, then the totals and the verdict."""
    cand, cur = comparison["candidate"], comparison["current"]
    if not comparison["gated"]:
        console.print(f"[yellow]{comparison['summary']}[/yellow]")
        return

    def verdict(result: dict[str, Any] | None) -> str:
        if result is None:
            return "-"
        if result["passed"]:
            return "[green]pass[/green]"
        return f"[red]FAIL[/red] {result['reason']}"

    columns = ["case", f"candidate v{cand['version']}", f"current v{cur['version']}" if cur else "current (none)"]
    rows: list[list[Any]] = [
        [row["case"], verdict(row["candidate"]), verdict(row["current"])] for row in comparison["cases"]
    ]
    rows.append(["passed", f"{cand['passed']}/{cand['total']}", f"{cur['passed']}/{cur['total']}" if cur else "-"])
    rows.append(["mean latency", _ms(cand["mean_latency_ms"]), _ms(cur["mean_latency_ms"]) if cur else "-"])
    rows.append(["total cost (USD)", cand["total_cost_usd"], cur["total_cost_usd"] if cur else "-"])
    table(f"Promotion of {comparison['prompt']} to '{comparison['label']}'", columns, rows)
    console.print(f"rule: {comparison['rule']}")
    for reason in comparison["reasons"]:
        console.print(f"[red]✗[/red] {reason}")
    if comparison["regressions"]:
        regressed = ", ".join(comparison["regressions"])
        console.print(f"[red]regressions[/red] (pass on the current version, fail on the candidate): {regressed}")


def _promote_activity(ph: Pilothouse, name: str, version: int, to: str) -> str:
    """What the spinner says while the server works: how many cases on which versions, when that is known."""
    try:
        cases = len(ph.prompt_tests(name))
    except PilothouseError:  # the promotion itself reports a missing prompt
        cases = 0
    suite = f"{cases} scenario test{'' if cases == 1 else 's'}" if cases else "the scenario tests"
    return f"running {suite} of {name} v{version} and of its current '{to}' version on the server"


def _waiting(activity: str, shown: bool) -> Progress:
    """A spinner and the elapsed time on stderr while one long request runs; gone when it ends."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not shown,
    )
    progress.add_task(activity, total=None)
    return progress


def _gate(dataset: str | None, metrics: list[str], alpha: float, max_cost: str | None) -> dict[str, Any] | None:
    """The promotion's gate from the --gate-* options (None without a dataset)."""
    from pilothouse.cli.evals import metric_option

    if dataset is None:
        if metrics:
            raise typer.BadParameter("--gate-metric needs --gate-dataset", param_hint="--gate-dataset")
        return None
    if not metrics:
        raise typer.BadParameter("give at least one --gate-metric", param_hint="--gate-metric")
    name, _, version = dataset.partition("@")
    if version and not version.isdigit():
        raise typer.BadParameter(f"{dataset!r}: the version after '@' is a number", param_hint="--gate-dataset")
    gate: dict[str, Any] = {"dataset": name, "metrics": [metric_option(m) for m in metrics], "alpha": alpha}
    if version:
        gate["dataset_version"] = int(version)
    if max_cost is not None:
        gate["max_cost_usd"] = max_cost
    return gate


@prompt_app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    version: Annotated[int, typer.Argument(min=1, help="The candidate version.")],
    to: Annotated[str, typer.Option("--to", help="The label to move.")] = "production",
    force: Annotated[
        bool, typer.Option("--force", help="Move the label even if the tests fail (recorded in the audit log).")
    ] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the audit log.")] = None,
    gate_dataset: Annotated[
        str | None,
        typer.Option("--gate-dataset", help="Also run the regression gate on this dataset (its items: variables)."),
    ] = None,
    gate_metric: Annotated[
        list[str] | None, typer.Option("--gate-metric", help="A gated metric: NAME or NAME={json options} (repeat).")
    ] = None,
    gate_alpha: Annotated[float, typer.Option("--gate-alpha", min=0.0001, max=0.5, help="The gate's alpha.")] = 0.05,
    gate_max_cost: Annotated[
        str | None, typer.Option("--gate-max-cost", help="Hard cap in USD of the gate run.")
    ] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move a label to VERSION if it passes the prompt's scenario tests and is no worse than the current one.
    With --gate-dataset and --gate-metric the server first runs both versions on the dataset and refuses on a
    significant regression (`pilothouse eval gate`'s rule). The server does the work before answering (seconds
    to minutes): a spinner with the elapsed time shows on a terminal (on stderr); nothing extra when piped."""
    gate = _gate(gate_dataset, gate_metric or [], gate_alpha, gate_max_cost)
    with client(url, api_key) as ph:
        try:
            shown = show_progress(as_json)
            activity = _promote_activity(ph, name, version, to) if shown else ""
            with _waiting(activity, shown):
                result = ph.promote_prompt(name, version, to=to, force=force, reason=reason, gate=gate)
        except PilothouseError as exc:
            gated = exc.body.get("gate") if exc.status == 409 else None
            if gated is not None:
                if as_json:
                    print_json(exc.body)
                else:
                    typer.echo(gated.get("report", ""), nl=False)
                    err_console.print(f"[red]refused:[/red] {exc.body['error']['message']}", highlight=False)
                raise typer.Exit(EXIT_FAILED) from None
            refused = exc.body.get("comparison") if exc.status == 409 else None
            if refused is None:
                raise
            if as_json:
                print_json(exc.body)
            else:
                render_comparison(refused)
                err_console.print(f"[red]refused:[/red] {exc.body['error']['message']}")
            raise typer.Exit(EXIT_FAILED) from None
    if as_json:
        print_json(result)
        return
    if result.get("gate") and result["gate"].get("report"):
        typer.echo(result["gate"]["report"], nl=False)
    if result["comparison"] is not None:
        render_comparison(result["comparison"])
    style = "yellow" if result["forced"] else "green"
    console.print(f"[{style}]{result['message']}[/{style}]")

"""`pilothouse flow`: start durable workflow runs, approve or reject them, follow their decision path
(docs/flows.md)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, err_console, print_json, table, when
from pilothouse.cli.credentials import root_options

flow_app = typer.Typer(
    help="Durable workflows: run them, approve or reject their steps, show the path they took.", no_args_is_help=True
)

RunArg = Annotated[str, typer.Argument(help="The run's id (run_...).", show_default=False)]
WaitOpt = Annotated[
    bool,
    typer.Option("--wait/--no-wait", help="Wait until the run waits for approval or finishes (default) or not."),
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=0.0, help="Seconds to wait at most.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _object(text: str | None, option: str) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(f"{option} is not valid JSON: {exc.msg} (at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise _fail(f"{option} must be a JSON object, such as '{{\"amount\": 120}}'")
    return value


def _follow(ph: Any, run: dict[str, Any], wait: bool, timeout: float, quiet: bool) -> dict[str, Any]:
    if not wait or run["status"] not in ("queued", "running"):
        return run
    with err_console.status(f"run {run['id']}: waiting for it to pause or finish", spinner="dots") as status:
        if quiet:
            status.stop()
        try:
            found: dict[str, Any] = ph.wait_flow_run(run["id"], timeout_s=timeout)
        except KeyboardInterrupt:
            err_console.print(f"stopped waiting; the run goes on: pilothouse flow show {run['id']}")
            raise typer.Exit(130) from None
    return found


def describe_decision(decision: Mapping[str, Any] | None) -> str:
    """One line for a decision: `amount_check = 'big' -> approve`, `approved by key_x (ok)`."""
    if not decision:
        return ""
    if "approval" in decision:
        comment = f" ({decision['comment']})" if decision.get("comment") else ""
        return f"{decision['approval']} by {decision.get('actor')}{comment}"
    if "to" in decision:
        return f"{decision.get('condition', 'condition')} = {decision.get('value')!r} -> {decision['to']}"
    return ", ".join(f"{k}={v}" for k, v in decision.items())


def _render_run(run: dict[str, Any]) -> None:
    spent = run.get("spent") or {}
    rows = [
        ["id", run["id"]],
        ["flow", f"{run['flow_name']} ({run['flow']})"],
        ["status", run["status"]],
        ["next", ", ".join(run["next_steps"]) or "-"],
        ["spent", ", ".join(f"{k}={v}" for k, v in spent.items()) or "-"],
        ["created", when(run["created_at"])],
    ]
    if run.get("error"):
        error = run["error"]
        rows.append(["error", f"{error.get('step')}: {error.get('cause')}: {error.get('message')}"])
    table(f"Run {run['id']}", ["field", "value"], rows)
    if run["status"] == "waiting_for_approval" and run["next_steps"]:
        step = run["next_steps"][0]
        err_console.print(
            f"approve with: pilothouse flow approve {run['id']} --step {step}  (or reject)", highlight=False
        )


def _done(run: dict[str, Any], as_json: bool) -> None:
    emit(as_json, run, lambda: _render_run(run))
    if run["status"] == "failed":
        raise typer.Exit(1)


@flow_app.command("run")
def run(
    flow: Annotated[
        str, typer.Argument(help="The flow: path/to/file.py:attr or package.module:attr.", show_default=False)
    ],
    input: Annotated[str | None, typer.Option("--input", "-i", help="The input as a JSON object.")] = None,
    budget: Annotated[
        str | None, typer.Option(help='Budget limits as JSON, e.g. \'{"cost_usd": 0.01, "steps": 20}\'.')
    ] = None,
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 300.0,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a run on the server's workers and print it once it waits for approval or finishes (exit 1 when
    it failed)."""
    from pilothouse.sdk.flows import absolute_ref

    body, limits = _object(input, "--input"), _object(budget, "--budget")
    ref = absolute_ref(flow)
    path = Path(ref.rpartition(":")[0])
    if path.is_absolute() and not path.is_file():  # a file reference (absolute now) naming no file
        raise _fail(f"{flow.rpartition(':')[0]}: no such file ({path})")
    with client(url, api_key) as ph:
        started = ph.start_flow_run(ref, body, budget=limits)
        found = _follow(ph, started, wait, timeout, as_json)
    _done(found, as_json)


@flow_app.command("list")
def list_runs(
    status: Annotated[str | None, typer.Option(help="Only runs in this status.")] = None,
    flow: Annotated[str | None, typer.Option(help="Only runs of this flow (its name).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many runs.")] = 50,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The project's runs, newest first."""
    with client(url, api_key) as ph:
        runs = ph.list_flow_runs(status=status, flow=flow, limit=limit)
    rows = [
        [r["id"], r["flow_name"], r["status"], ", ".join(r["next_steps"]) or "-", r["seq"], when(r["created_at"])]
        for r in runs
    ]
    emit(as_json, runs, lambda: table("Flow runs", ["id", "flow", "status", "next", "steps", "created"], rows))


@flow_app.command("show")
def show(run_id: RunArg, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """The path the run took: each step, the branch taken and why, approvals, errors; then its state."""
    with client(url, api_key) as ph:
        found = ph.show_flow_run(run_id)

    def render() -> None:
        run = found["run"]
        head = f"{run['flow_name']} {run['id']}: {run['status']}"
        rows = [
            [
                p["seq"],
                p["step"] if p.get("item") is None else f"{p['step']}[{p['item']}]",
                p["status"],
                p["attempt"],
                describe_decision(p.get("decision")) or "-",
                p["duration_ms"],
                p.get("error", {}).get("message", "-") if p.get("error") else "-",
            ]
            for p in found["path"]
        ]
        table(head, ["seq", "step", "status", "attempt", "decision", "ms", "error"], rows)
        if run["next_steps"]:
            console.print(f"next: {', '.join(run['next_steps'])}", highlight=False)
        if run.get("error"):
            error = run["error"]
            console.print(f"error at {error.get('step')}: {error.get('cause')}: {error.get('message')}", markup=False)
        console.print("state: " + json.dumps(run["state"], ensure_ascii=False, default=str), markup=False)

    emit(as_json, found, render)


@flow_app.command("approve")
def approve(
    run_id: RunArg,
    step: Annotated[str, typer.Option(help="The approval step the run waits at.", show_default=False)],
    comment: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
    state: Annotated[
        str | None, typer.Option(help="Edits of the run's state as a JSON object, e.g. '{\"amount\": 90}'.")
    ] = None,
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 300.0,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve the run waiting at STEP (optionally editing its state); it goes on (audited)."""
    edits = _object(state, "--state") if state is not None else None
    with client(url, api_key) as ph:
        decided = ph.approve_flow_run(run_id, step=step, comment=comment, state=edits)
        found = _follow(ph, decided, wait, timeout, as_json)
    _done(found, as_json)


@flow_app.command("reject")
def reject(
    run_id: RunArg,
    step: Annotated[str, typer.Option(help="The approval step the run waits at.", show_default=False)],
    comment: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 300.0,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reject the run waiting at STEP: it ends failed, after its compensation steps (audited)."""
    with client(url, api_key) as ph:
        decided = ph.reject_flow_run(run_id, step=step, comment=comment)
        found = _follow(ph, decided, wait, timeout, as_json)
    emit(as_json, found, lambda: _render_run(found))


@flow_app.command("cancel")
def cancel(run_id: RunArg, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Stop a run: at once when it is queued or waiting, before its next step when it is running."""
    with client(url, api_key) as ph:
        found = ph.cancel_flow_run(run_id)
    emit(as_json, found, lambda: _render_run(found))


@flow_app.command("resume")
def resume(
    run_id: RunArg,
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 300.0,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Continue a run from its last checkpoint: one that failed, or one whose worker died (taken over once its
    lease expires)."""
    with client(url, api_key) as ph:
        found = _follow(ph, ph.resume_flow_run(run_id), wait, timeout, as_json)
    _done(found, as_json)


@flow_app.command("prune")
def prune(
    keep_last: Annotated[int | None, typer.Option(min=0, help="Keep each finished run's last N checkpoints.")] = None,
    older_than_days: Annotated[
        float | None, typer.Option(min=0.0, help="Delete finished runs older than this many days.")
    ] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Retention for finished runs, so the checkpoint tables stay bounded."""
    if keep_last is None and older_than_days is None:
        raise _fail("say what to prune: --keep-last N, --older-than-days D or both")
    with client(url, api_key) as ph:
        deleted = ph.prune_flow_runs(keep_last=keep_last, older_than_days=older_than_days)
    emit(as_json, {"deleted": deleted}, lambda: console.print(f"deleted {deleted} rows", highlight=False))


def _switch(
    flow_name: str, enabled: bool, reason: str | None, url: str | None, api_key: str | None, as_json: bool
) -> None:
    with client(url, api_key) as ph:
        found = ph.set_flow_enabled(flow_name, enabled, reason=reason)
    word = "enabled" if enabled else "disabled"
    emit(as_json, found, lambda: console.print(f"flow {flow_name} {word}", highlight=False))


@flow_app.command("disable")
def disable(
    flow_name: Annotated[str, typer.Argument(help="The flow's name.", show_default=False)],
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The kill switch of a workflow: its runs are no longer picked up and new runs are refused."""
    _switch(flow_name, False, reason, url, api_key, as_json)


@flow_app.command("enable")
def enable(
    flow_name: Annotated[str, typer.Argument(help="The flow's name.", show_default=False)],
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn a disabled workflow back on; its waiting runs are picked up again."""
    _switch(flow_name, True, reason, url, api_key, as_json)


@flow_app.command("mermaid")
def mermaid(
    flow: Annotated[
        str, typer.Argument(help="The flow: path/to/file.py:attr or package.module:attr.", show_default=False)
    ],
    as_json: JsonOpt = False,
) -> None:
    """Print the flow's graph as a Mermaid flowchart (loads the flow here; no server needed)."""
    from pilothouse.flows.errors import FlowDefinitionError
    from pilothouse.flows.loading import FlowLoadError, load_flow

    try:
        graph = load_flow(flow).mermaid()
    except FlowLoadError as exc:
        raise _fail(str(exc)) from None
    except FlowDefinitionError as exc:
        raise _fail(f"{flow}: {exc}", 1) from None
    if as_json:
        print_json({"flow": flow, "mermaid": graph})
    else:
        console.file.write(graph + ("" if graph.endswith("\n") else "\n"))


@flow_app.command("worker")
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="Runs executed at once.")] = 4,
    lease: Annotated[
        float,
        typer.Option(
            min=1.0, help="Seconds a claimed run stays this worker's without a renewal (renewed while it runs)."
        ),
    ] = 30.0,
    once: Annotated[bool, typer.Option("--once", help="Execute the runnable runs, then exit (no waiting).")] = False,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="pilothouse.toml to read (default: as `pilothouse up`).")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", envvar="PILOTHOUSE_DATABASE_URL", help="The servers' database.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Execute flow runs from the database configured for `pilothouse up`, next to the servers' own workers
    (model calls through the gateway in this process). Stops on SIGTERM or Ctrl-C, giving the leases of its
    runs in progress back so another worker continues them; --once drains what is runnable and exits."""
    import asyncio
    import signal

    from pilothouse.config import ConfigError, load_settings
    from pilothouse.flows.worker import Worker
    from pilothouse.gateway.limits.store import LimitStoreUnavailable
    from pilothouse.server.api.flows import flow_engine
    from pilothouse.server.state import build_state, close_state, start_ledger
    from pilothouse.store.engine import StoreError

    try:
        options = root_options()
        settings = load_settings(config or options.config, database_url=database_url, data_dir=options.data_dir)
    except ConfigError as exc:
        raise _fail(str(exc)) from None

    async def serve() -> dict[str, Any]:
        state = await asyncio.to_thread(build_state, settings)
        try:
            await state.admission.start()  # limits and budgets apply to the runs' model calls as on a server
            await start_ledger(state)
            engine = flow_engine(state, lease_s=lease)
            runner = Worker(engine.store, engine, concurrency=concurrency)
            if once:
                return {"worker": runner.name, "runs": await runner.drain()}
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            if not as_json:
                err_console.print(
                    f"flow worker {runner.name}: {concurrency} at a time, lease {lease:g}s; stop with Ctrl-C",
                    highlight=False,
                )
            await runner.serve(stop)  # on stop: the runs in progress keep their checkpoints, leases given back
            return {"worker": runner.name, "stopped": True}
        finally:
            await close_state(state)

    try:
        summary = asyncio.run(serve())
    except (StoreError, ConfigError, LimitStoreUnavailable) as exc:
        raise _fail(str(exc), 1) from None
    emit(as_json, summary, lambda: console.print(", ".join(f"{k}: {v}" for k, v in summary.items()), highlight=False))

"""`pilothouse eval queue ...` and `pilothouse eval annotate`: people in the loop.

A queue holds traces or experiment results for people to score with one score configuration; `annotate` walks a
person through the open tasks in the terminal (the question, the answer, the reference and context), one answer
at a time, each stored as soon as it is given.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, err_console, table
from pilothouse.cli.evals import eval_app

queue_app = typer.Typer(help="Annotation queues: traces and results for people to score.", no_args_is_help=True)
eval_app.add_typer(queue_app, name="queue")

NameArg = Annotated[str, typer.Argument(help="The queue's name.")]


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(1)


@queue_app.command("create")
def create(
    name: NameArg,
    score: Annotated[str, typer.Option(help="The score people give (its name on traces), e.g. helpful.")],
    score_type: Annotated[str, typer.Option("--type", help="numeric, boolean or categorical.")] = "boolean",
    categories: Annotated[str | None, typer.Option(help="For categorical: the categories, comma-separated.")] = None,
    low: Annotated[float | None, typer.Option("--min", help="For numeric: the lowest value.")] = None,
    high: Annotated[float | None, typer.Option("--max", help="For numeric: the highest value.")] = None,
    description: Annotated[str | None, typer.Option(help="What annotators should look for.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a queue (developer role)."""
    config: dict[str, Any] = {"name": score, "data_type": score_type}
    if categories:
        config["categories"] = [c.strip() for c in categories.split(",") if c.strip()]
    if low is not None:
        config["min"] = low
    if high is not None:
        config["max"] = high
    with client(url, api_key) as ph:
        found = ph.create_queue(name, score=config, description=description)
    emit(as_json, found, lambda: console.print(f"created queue {name} ({score}: {score_type})", highlight=False))


@queue_app.command("list")
def list_queues(url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """The project's queues with their open, done and skipped tasks."""
    with client(url, api_key) as ph:
        found = ph.list_queues()
    rows = [
        [q["name"], f"{q['score']['name']} ({q['score']['data_type']})", *map(str, q["tasks"].values())] for q in found
    ]
    emit(as_json, found, lambda: table("Annotation queues", ["name", "score", "open", "done", "skipped"], rows))


@queue_app.command("add")
def add(
    name: NameArg,
    trace: Annotated[list[str], typer.Option(help="A trace id (repeat).")] = [],  # noqa: B006
    experiment: Annotated[str | None, typer.Option(help="An experiment whose results to queue.")] = None,
    variant: Annotated[str | None, typer.Option(help="Only this variant's results.")] = None,
    assignee: Annotated[str | None, typer.Option(help="Who should answer them.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many results.")] = 1000,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Queue traces and/or an experiment's results (those already queued are skipped)."""
    if not trace and experiment is None:
        raise _fail("give --trace ID (repeatable) or --experiment ID")
    with client(url, api_key) as ph:
        found = ph.queue_items(
            name, trace_ids=trace, experiment_id=experiment, variant=variant, assignee=assignee, limit=limit
        )
    text = f"queued {found['added']}; {found['already_queued']} were already queued"
    emit(as_json, found, lambda: console.print(text, highlight=False))


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=2)


def _ask(score: dict[str, Any]) -> dict[str, Any] | None:
    """The person's answer as the API takes it; None to stop."""
    kind = score["data_type"]
    hint = {
        "boolean": "y/n",
        "categorical": "/".join(score.get("categories", [])),
        "numeric": f"a number{'' if score.get('min') is None else ' from ' + str(score['min'])}"
        f"{'' if score.get('max') is None else ' to ' + str(score['max'])}",
    }[kind]
    while True:
        raw = str(typer.prompt(f"{score['name']} ({hint}; s to skip, q to quit)")).strip()
        if raw.lower() == "q":
            return None
        if raw.lower() == "s":
            return {"skip": True}
        if kind == "boolean" and raw.lower() in ("y", "yes", "n", "no", "true", "false"):
            return {"value": raw.lower() in ("y", "yes", "true")}
        if kind == "categorical" and raw in score.get("categories", []):
            return {"category": raw}
        if kind == "numeric":
            try:
                return {"value": float(raw)}
            except ValueError:
                pass
        err_console.print(f"not an answer: {raw!r} (expected {hint})", highlight=False)


@eval_app.command("annotate")
def annotate(
    name: NameArg,
    assignee: Annotated[str | None, typer.Option(help="Your name: your tasks come first.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Answer a queue's open tasks one by one in the terminal; each answer is stored at once (q stops)."""
    answered = 0
    with client(url, api_key) as ph:
        while True:
            found = ph.next_task(name, assignee=assignee)
            task = found["task"]
            if task is None:
                console.print(f"queue {name} has no open task; {answered} answered now", highlight=False)
                return
            show = found["show"]
            console.rule(task["target"])
            for label in ("input", "context", "expected", "output"):
                if label in show and show[label] is not None:
                    console.print(f"[bold]{label}[/bold]\n{_show(show[label])}\n", highlight=False)
            answer = _ask(found["score"])
            if answer is None:
                console.print(f"stopped; {answered} answered now", highlight=False)
                return
            comment = str(typer.prompt("comment (enter for none)", default="", show_default=False)).strip() or None
            ph.answer_task(name, task["id"], comment=comment, **answer)
            answered += 1

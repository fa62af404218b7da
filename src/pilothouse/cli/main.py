"""Entry point of the `pilothouse` command."""

from __future__ import annotations

import typer

from pilothouse import __version__
from pilothouse.cli import (
    prompt_canary,  # noqa: F401  (registers `prompt canary`, `canary-check`, `stats`)
    prompt_test,  # noqa: F401  (registers `prompt test` and `prompt promote`)
)
from pilothouse.cli.audit import audit_app
from pilothouse.cli.budgets import budgets_app, limits_app
from pilothouse.cli.budgets_reconcile import reconcile_budgets
from pilothouse.cli.cost import cost_app
from pilothouse.cli.keys import keys_app, projects_app
from pilothouse.cli.models import models_app
from pilothouse.cli.prompt import prompt_app
from pilothouse.cli.scores import scores_app
from pilothouse.cli.traces import traces_app
from pilothouse.cli.up import up

app = typer.Typer(
    name="pilothouse",
    help="Pilothouse: an LLMOps platform. `pilothouse up` runs the server; the other commands manage it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("up")(up)
app.add_typer(keys_app, name="keys")
app.add_typer(projects_app, name="projects")
app.add_typer(traces_app, name="traces")
app.add_typer(audit_app, name="audit")
budgets_app.command("reconcile")(reconcile_budgets)
app.add_typer(budgets_app, name="budgets")
app.add_typer(limits_app, name="limits")
app.add_typer(models_app, name="models")
app.add_typer(prompt_app, name="prompt")
app.add_typer(scores_app, name="scores")
app.add_typer(cost_app, name="cost")


@app.command("version")
def version() -> None:
    """Print the version."""
    print(__version__)


def main() -> None:
    app()

"""Entry point of the `pilothouse` command.

The command groups are loaded lazily (cli/lazy.py): a command imports only its own group's module, and each
module imports only typer, rich and the light client at module level; what a command needs beyond that (the
server, SQLAlchemy, the OpenAI client) it imports when it runs. `pilothouse --help`, `pilothouse version` and the
management commands thus start in a fraction of the time the server's imports take (bench/cli_startup.py;
tests/cli/test_startup.py keeps it so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pilothouse import __version__
from pilothouse.cli.credentials import RootOptions, set_root_options
from pilothouse.cli.lazy import LazyGroup
from pilothouse.cli.up import up

_PROMPT = "pilothouse.cli.prompt:prompt_app+pilothouse.cli.prompt_test+pilothouse.cli.prompt_canary"


class PilothouseGroup(LazyGroup):
    lazy = {
        "keys": "pilothouse.cli.keys:keys_app",
        "projects": "pilothouse.cli.keys:projects_app+pilothouse.cli.projects_capture",
        "traces": "pilothouse.cli.traces:traces_app+pilothouse.cli.traces_explain+pilothouse.cli.traces_tail",
        "audit": "pilothouse.cli.audit:audit_app",
        "budgets": "pilothouse.cli.budgets:budgets_app+pilothouse.cli.budgets_reconcile",
        "limits": "pilothouse.cli.budgets:limits_app",
        "models": "pilothouse.cli.models:models_app",
        "prompt": _PROMPT,  # `test` and `promote`; `canary`, `canary-check`, `stats` and more
        "scores": "pilothouse.cli.scores:scores_app",
        "feedback": "pilothouse.cli.feedback:feedback_app",
        "cost": "pilothouse.cli.cost:cost_app",
        "cache": "pilothouse.cli.cache:cache_app",
        "tools": "pilothouse.cli.tools:tools_app",
        "policy": "pilothouse.cli.policy:policy_app",
        "monitors": "pilothouse.cli.monitors:monitors_app",
        "dataset": "pilothouse.cli.dataset:dataset_app",
        "eval": "pilothouse.cli.evals:eval_app+pilothouse.cli.annotate+pilothouse.cli.evals_history",
        "flow": "pilothouse.cli.flow:flow_app",
        "rag": "pilothouse.cli.rag:rag_app",
    }
    order = ("up", *lazy, "version")


app = typer.Typer(
    name="pilothouse",
    cls=PilothouseGroup,
    help="Pilothouse: an LLMOps platform. `pilothouse up` runs the server; the other commands manage it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="The server's data directory, where `pilothouse up` saved the owner key the commands use when no "
            "--api-key is given (default: PILOTHOUSE_DATA_DIR, else data_dir in pilothouse.toml, else ./.pilothouse).",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="The configuration file to read data_dir from (default: PILOTHOUSE_CONFIG, else ./pilothouse.toml).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Pilothouse: an LLMOps platform. `pilothouse up` runs the server; the other commands manage it."""
    set_root_options(RootOptions(data_dir=data_dir, config=config))


app.command("up")(up)


@app.command("version")
def version() -> None:
    """Print the version."""
    print(__version__)


def main() -> None:
    app()

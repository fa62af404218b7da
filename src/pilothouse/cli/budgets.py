"""`pilothouse budgets` and `pilothouse limits`: spending limits, rate limits and max_tokens caps."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, err_console, table, when
from pilothouse.money import usd

budgets_app = typer.Typer(
    help="Budgets per key, project, end user or prompt: hard (refuse) or soft (alert), per day, month or total.",
    no_args_is_help=True,
)
limits_app = typer.Typer(
    help="Rate limits (requests and tokens per minute) and max_tokens caps per key, project or model.",
    no_args_is_help=True,
)

KeyScope = Annotated[str | None, typer.Option("--key", help="An API key id (key_...).")]
ProjectScope = Annotated[str | None, typer.Option("--project", help="A project id or name.")]
ListedProject = Annotated[
    str | None, typer.Option("--project", help="Owner keys: another project (id or name), or `all`.")
]


def _subject(**choices: str | None) -> tuple[str, str]:
    given = [(scope, value) for scope, value in choices.items() if value is not None]
    if len(given) != 1:
        names = ", ".join(f"--{name}" for name in choices)
        err_console.print(f"[red]error:[/red] give exactly one of {names}")
        raise typer.Exit(2)
    return given[0]


def _money(value: str | None) -> str:
    return "-" if value is None else usd(Decimal(value), exact=True)


@budgets_app.command("set")
def set_budget(
    usd: Annotated[str, typer.Option("--usd", help="The limit in USD per period, e.g. 10 or 0.50.")],
    key: KeyScope = None,
    project: ProjectScope = None,
    user: Annotated[str | None, typer.Option("--user", help="An end user (the request's `user` field).")] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="A prompt name (calls of `prompt:NAME`).")] = None,
    period: Annotated[str, typer.Option(help="day, month or total (UTC calendar).")] = "month",
    hard: Annotated[bool, typer.Option("--hard/--soft", help="Hard: refuse with 429. Soft: alert only.")] = True,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or change a budget (one per subject and period)."""
    scope, subject = _subject(key=key, project=project, user=user, prompt=prompt)
    try:
        Decimal(usd)
    except InvalidOperation:
        err_console.print(f"[red]error:[/red] --usd must be a number, got {usd!r}")
        raise typer.Exit(2) from None
    with client(url, api_key) as ph:
        budget = ph.set_budget(scope, subject, usd=usd, period=period, mode="hard" if hard else "soft")
    verb = "created" if budget["created"] else "updated"
    emit(
        as_json,
        budget,
        lambda: console.print(
            f"{verb} budget {budget['id']}: {budget['mode']} {_money(budget['limit_usd'])} per {budget['period']} "
            f"for {scope} {subject}; spent this period {_money(budget['spent_usd'])}"
        ),
    )


def _resets(row: dict[str, Any]) -> str:
    return "never" if row["resets_at"] is None else when(row["resets_at"])


@budgets_app.command("list")
def list_budgets(
    project: ListedProject = None, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False
) -> None:
    """Budgets of your project with what was spent this period, what remains and when they reset."""
    with client(url, api_key) as ph:
        rows = ph.list_budgets(project=project)
    emit(
        as_json,
        rows,
        lambda: table(
            "Budgets",
            ["id", "scope", "subject", "period", "mode", "limit", "spent", "in flight", "remaining", "resets (UTC)"],
            [
                [
                    r["id"],
                    r["scope"],
                    r["subject"],
                    r["period"],
                    r["mode"],
                    _money(r["limit_usd"]),
                    _money(r["spent_usd"]),
                    _money(r["reserved_usd"]),
                    _money(r["remaining_usd"]),
                    _resets(r),
                ]
                for r in rows
            ],
        ),
    )


@budgets_app.command("delete")
def delete_budget(
    budget_id: Annotated[str, typer.Argument(help="The budget id (bud_...), from `pilothouse budgets list`.")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete a budget."""
    with client(url, api_key) as ph:
        budget = ph.delete_budget(budget_id)
    emit(as_json, budget, lambda: console.print(f"deleted budget {budget['id']}"))


@limits_app.command("set")
def set_limits(
    key: KeyScope = None,
    project: ProjectScope = None,
    model: Annotated[str | None, typer.Option("--model", help="A model name (counts this project's calls).")] = None,
    rpm: Annotated[int | None, typer.Option(min=1, help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(min=1, help="Tokens per minute (input + max_tokens, then actual).")] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", min=1, help="Cap on a request's max_tokens (above: refused).")
    ] = None,
    clear_rpm: Annotated[bool, typer.Option("--clear-rpm", help="Remove the requests-per-minute limit.")] = False,
    clear_tpm: Annotated[bool, typer.Option("--clear-tpm", help="Remove the tokens-per-minute limit.")] = False,
    clear_max_tokens: Annotated[bool, typer.Option("--clear-max-tokens", help="Remove the max_tokens cap.")] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the limits of a key, project or model. Limits not named keep their current value; remove one with
    --clear-rpm, --clear-tpm or --clear-max-tokens (all of them: `limits delete`)."""
    scope, subject = _subject(key=key, project=project, model=model)
    clear = [name for name, on in (("rpm", clear_rpm), ("tpm", clear_tpm), ("max_tokens", clear_max_tokens)) if on]
    given = {"rpm": rpm, "tpm": tpm, "max_tokens": max_tokens}
    both = [name for name in clear if given[name] is not None]
    if both:
        err_console.print(f"[red]error:[/red] --{both[0].replace('_', '-')} is both set and cleared; give one")
        raise typer.Exit(2)
    if all(value is None for value in given.values()) and not clear:
        err_console.print("[red]error:[/red] give at least one of --rpm, --tpm, --max-tokens (or a --clear-* flag)")
        raise typer.Exit(2)
    with client(url, api_key) as ph:
        limit = ph.set_limits(scope, subject, rpm=rpm, tpm=tpm, max_tokens=max_tokens, clear=clear)
    verb = "created" if limit["created"] else "updated"
    now = ", ".join(f"{name} {limit[name]}" for name in ("rpm", "tpm", "max_tokens") if limit[name] is not None)
    emit(as_json, limit, lambda: console.print(f"{verb} limits {limit['id']} for {scope} {subject}: {now}"))


@limits_app.command("list")
def list_limits(
    project: ListedProject = None, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False
) -> None:
    """Rate limits and max_tokens caps of your project."""
    with client(url, api_key) as ph:
        rows = ph.list_limits(project=project)
    emit(
        as_json,
        rows,
        lambda: table(
            "Limits",
            ["id", "scope", "subject", "rpm", "tpm", "max_tokens", "updated (UTC)"],
            [
                [r["id"], r["scope"], r["subject"], r["rpm"], r["tpm"], r["max_tokens"], when(r["updated_at"])]
                for r in rows
            ],
        ),
    )


@limits_app.command("delete")
def delete_limits(
    limit_id: Annotated[str, typer.Argument(help="The limits id (lim_...), from `pilothouse limits list`.")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete the limits of a subject."""
    with client(url, api_key) as ph:
        limit = ph.delete_limits(limit_id)
    emit(as_json, limit, lambda: console.print(f"deleted limits {limit['id']}"))

"""`pilothouse cache`: explain why two questions would or would not share a cached answer, and per-project
similarity thresholds of the semantic cache."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, when

cache_app = typer.Typer(
    help="The response cache: explain a semantic (non-)hit; set a project's own similarity threshold.",
    no_args_is_help=True,
)
threshold_app = typer.Typer(
    help="A project's own similarity threshold for semantic hits (default: cache.semantic.threshold).",
    no_args_is_help=True,
)
cache_app.add_typer(threshold_app, name="threshold")

ProjectOpt = Annotated[
    str | None,
    typer.Option("--project", help="A project id or name (default: the key's project; another: owner keys)."),
]


def _say(label: str, value: str) -> None:
    console.print(f"{label:<11} {value}", highlight=False, markup=False)  # reasons quote words in [brackets]


def _threshold_text(value: float, source: str, default: float) -> str:
    return f"{value:g} (the default)" if source == "default" else f"{value:g} (the project's own; default {default:g})"


def _print_explained(found: dict[str, Any]) -> None:
    similarity = found["similarity"]
    _say("similarity", "-" if similarity is None else f"{similarity:.4f}")
    _say("threshold", _threshold_text(found["threshold"], found["threshold_source"], found["default_threshold"]))
    verdict = found["contrast"]
    if verdict is None:
        _say("contrast", "not checked (contrast_checks = false)")
    elif verdict["ok"]:
        _say("contrast", "passes")
    else:
        _say("contrast", f"refuses ({verdict['kind']}): {verdict['reason']}")
    _say("answer", found["answer"])
    if found["semantic_cache"] != "on":
        mode = "off" if found["semantic_cache"] == "off" else "on only for requests with x-pilothouse-cache: semantic"
        _say("note", f"the semantic cache is {mode} on this server")


@cache_app.command("explain")
def explain(
    question: Annotated[str, typer.Argument(help="The question asked (a request's last user message).")],
    cached: Annotated[str, typer.Argument(help="The question whose answer is cached.")],
    project: ProjectOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Would QUESTION get the answer cached for CACHED? Prints their similarity, the threshold that applies, the
    contrast check's decision and why, and the answer (the rest of the two requests assumed identical)."""
    with client(url, api_key) as ph:
        found = ph.cache.explain(question, cached, project=project)
    emit(as_json, found, lambda: _print_explained(found))


def _print_threshold(view: dict[str, Any]) -> None:
    head = f"{view['threshold']:g} for project {view['project_id']}"
    if view["source"] == "default":
        _say("threshold", f"{head} (the default; no threshold of its own)")
        return
    by = f"set by {view['updated_by'] or '-'} at {when(view['updated_at'])} UTC"
    _say("threshold", f"{head} (its own, {by}; the default is {view['default']:g})")


@threshold_app.command("show")
def show(project: ProjectOpt = None, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """The threshold that applies to the project's semantic lookups, and where it comes from."""
    with client(url, api_key) as ph:
        view = ph.cache.threshold(project=project)
    emit(as_json, view, lambda: _print_threshold(view))


@threshold_app.command("set")
def set_threshold(
    threshold: Annotated[float, typer.Argument(help="Least cosine similarity of a hit, 0.5 to 1.0.")],
    project: ProjectOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give the project its own threshold (admin role). The contrast check still applies to every candidate."""
    with client(url, api_key) as ph:
        view = ph.cache.set_threshold(threshold, project=project)
    was = "the default" if view["previous"] is None else f"{view['previous']:g}"
    emit(
        as_json, view, lambda: _say("threshold", f"{view['threshold']:g} for project {view['project_id']} (was {was})")
    )


@threshold_app.command("clear")
def clear(project: ProjectOpt = None, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Remove the project's own threshold (admin role): the configured one applies again."""
    with client(url, api_key) as ph:
        view = ph.cache.clear_threshold(project=project)
    if view["changed"]:
        text = f"cleared {view['previous']:g}: project {view['project_id']} uses the default {view['default']:g}"
    else:
        text = f"project {view['project_id']} had no threshold of its own (it uses the default {view['default']:g})"
    emit(as_json, view, lambda: _say("threshold", text))

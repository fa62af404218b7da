"""`pilothouse eval history`: one metric of a dataset's finished runs over time, per variant, each run with its
mean and 95% interval and the change since the run before (paired by item on the same dataset version, p-values
corrected across the series), flagged when significant. `--fail-on-change` exits 1 on a flagged worsening, for
a scheduled CI job that watches production."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from pilothouse.cli.common import JsonOpt, KeyOpt, UrlOpt, client, console, emit, table
from pilothouse.cli.evals import eval_app


def _mean(found: dict[str, Any] | None) -> str:
    if not found:
        return "-"
    if found["method"] == "degenerate":
        return f"{found['estimate']:.3f}"
    return f"{found['estimate']:.3f} [{found['low']:.3f}, {found['high']:.3f}]"


def _change(change: dict[str, Any] | None) -> tuple[str, str, str]:
    """(difference, adjusted p, verdict) cells."""
    if change is None:
        return "", "", "first run"
    if "p_value" not in change:
        return "", "", change.get("note", "")
    verdict = change["verdict"] + (" (!)" if change.get("flagged") else "")
    return f"{change['difference']['estimate']:+.3f}", f"{change['p_adjusted']:.4f}", verdict


@eval_app.command("history")
def history(
    dataset: Annotated[str, typer.Option(help="The dataset's name.")],
    metric: Annotated[str, typer.Option(help="The metric key, as runs name it (`contains`, `llm_judge:2`).")],
    variant: Annotated[str | None, typer.Option(help="Only this variant name (default: every variant).")] = None,
    limit: Annotated[int, typer.Option(min=2, max=200, help="The newest N finished runs of the dataset.")] = 20,
    correction: Annotated[str, typer.Option(help="holm, bh (Benjamini-Hochberg) or none.")] = "holm",
    fail_on_change: Annotated[
        bool, typer.Option("--fail-on-change", help="Exit 1 when the newest run is significantly worse.")
    ] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A metric over time: per variant, each finished run's mean with its interval and whether it changed
    significantly since the run before."""
    if correction not in ("holm", "bh", "none"):
        raise typer.BadParameter("use holm, bh or none", param_hint="--correction")
    with client(url, api_key) as ph:
        found = ph.eval_history(dataset, metric, variant=variant, limit=limit, correction=correction)

    def render() -> None:
        if not found["series"]:
            console.print(f"no finished run of {dataset!r} measured {metric!r}", highlight=False, markup=False)
        for series in found["series"]:
            rows = []
            for point in series["points"]:
                when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(point["created_at"]))
                rows.append(
                    [
                        when,
                        point["experiment_id"],
                        str(point["dataset_version"]),
                        point["target"],
                        _mean(point["mean"]),
                        *_change(point["change"]),
                    ]
                )
            table(
                f"{metric} of {dataset}, variant {series['variant']} ({found['correction']})",
                ["when (UTC)", "run", "version", "ran", "mean", "change", "p (adjusted)", "verdict"],
                rows,
            )

    emit(as_json, found, render)
    if fail_on_change:
        newest = [s["points"][-1]["change"] for s in found["series"] if s["points"]]
        if any(c and c.get("flagged") and c.get("verdict") == "worse" for c in newest):
            raise typer.Exit(1)

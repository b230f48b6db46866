"""``tracelet compare RUN... --metric KEY [--group A=r1,r2 --group B=r3,r4] [--plot out.png]``."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tracelet_core.cli._app import (
    JournalDirOption,
    JsonOption,
    app,
    emit_json,
    escape,
    fail,
    format_value,
    journal_dir,
    out,
    print_table,
    user_errors,
)
from tracelet_core.compare import (
    Comparison,
    Goal,
    GroupStats,
    Summary,
    compare_groups,
    group_stats,
    guess_goal,
    plot_curves,
    summarize,
)
from tracelet_core.events import MetricPoint
from tracelet_core.trackers.store import SourceRun, StoreReader, find_run, open_reader

__all__ = ["compare"]


def _groups(reader: StoreReader, runs: list[str], group: list[str]) -> list[tuple[str, list[SourceRun]]]:
    listing = reader.list_runs()
    if group:
        if runs:
            fail("give runs either as arguments or in --group options, not both", 2)
        named = []
        for spec in group:
            name, sep, refs = spec.partition("=")
            if not sep or not name or not refs.strip(","):
                fail(f"--group takes NAME=run1,run2,...; got {spec!r}", 2)
            named.append((name, [find_run(listing, ref.strip()) for ref in refs.split(",") if ref.strip()]))
        return named
    if not runs:
        fail("name the runs to compare (ids, prefixes or names), or groups with --group NAME=run1,run2", 2)
    chosen = [find_run(listing, ref) for ref in runs]
    return [(run.name or run.native_id[:8], [run]) for run in chosen]


@app.command(
    short_help="Compare runs or groups of runs on a metric, with statistics and a plot.",
    epilog="Examples: [bold]tracelet compare 3f2a 9c1e -m val/acc[/]  ·  "
    "[bold]tracelet compare -m val/acc --group base=3f2a,9c1e,77d0 --group wide=a1b2,c3d4,e5f6 --plot acc.png[/]  ·  "
    "[bold]tracelet compare -m val/loss --source mlflow:http://127.0.0.1:5000 --group A=r1,r2 --group B=r3,r4[/]",
)
def compare(
    metric: Annotated[str, typer.Option("--metric", "-m", help="The metric to compare.", show_default=False)],
    runs: Annotated[list[str] | None, typer.Argument(help="Runs (id, unique prefix or name).")] = None,
    group: Annotated[
        list[str] | None, typer.Option("--group", "-g", help="A group of runs, NAME=run1,run2 (repeatable).")
    ] = None,
    stat: Annotated[str, typer.Option(help="Per-run value the groups are compared on: final or best.")] = "final",
    goal: Annotated[
        str | None, typer.Option(help="max or min: which way is better (default: guessed from the name).")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Read runs from this store (mlflow:URI, aim:REPO...) instead of the journals.")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Draw the metric curves (mean and band per group) to this PNG.")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level of the verdict.", min=0.0, max=1.0)] = 0.05,
    confidence: Annotated[float, typer.Option(help="Level of the bootstrap interval.", min=0.5, max=0.999)] = 0.95,
    journal_dir_option: JournalDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare runs on one metric: final and best values; with groups (e.g. seeds of two configurations), the
    mean, std and bootstrap confidence interval per group, Welch's t-test and Mann–Whitney U p-values and the
    effect size against the first group, with a plain-words verdict.
    """
    if stat not in ("final", "best") or goal not in (None, "max", "min"):
        fail("--stat takes final or best; --goal takes max or min", 2)
    direction: Goal = "min" if (goal or guess_goal(metric)) == "min" else "max"
    with user_errors():
        reader = open_reader(source) if source else open_reader(f"journal:{journal_dir(journal_dir_option)}")
        with reader:
            groups = _groups(reader, list(runs or []), list(group or []))
            histories = {run.key: reader.metric_history(run, metric) for _, members in groups for run in members}
            summaries = _summaries(metric, direction, groups, histories, reader)
    try:
        stats = [
            group_stats(name, [_value(summaries[r.key], stat) for r in members], confidence)
            for name, members in (groups if group else [])
        ]
        comparisons = [compare_groups(stats[0], other, direction, metric, alpha) for other in stats[1:]]
        if plot is not None:
            plot_curves(plot, metric, [(name, [summaries[r.key].points for r in members]) for name, members in groups])
    except ValueError as exc:
        fail(str(exc), 2)
    except ImportError as exc:
        fail(
            f"tracelet compare needs {exc.name or 'scipy and matplotlib'} for its statistics and plots: "
            "pip install scipy matplotlib"
        )
    result = _Result(metric, direction, goal is None, stat, groups, summaries, stats, comparisons, plot)
    if as_json:
        emit_json(_payload(result))
    else:
        _print(result)


def _summaries(
    metric: str,
    direction: Goal,
    groups: list[tuple[str, list[SourceRun]]],
    histories: dict[str, list[MetricPoint]],
    reader: StoreReader,
) -> dict[str, Summary]:
    """Each run's summary of ``metric``, by run key; exits 1 naming the runs without a point of it, and the
    run's metrics whose names are close (a typo, ``val_acc`` for ``val/acc``)."""
    summaries: dict[str, Summary] = {}
    for key, points in histories.items():
        summary = summarize(points, direction)
        if summary is not None:
            summaries[key] = summary
    missing = [run for _, members in groups for run in members if run.key not in summaries]
    if missing:
        keys = reader.metric_keys(missing[0])
        close = difflib.get_close_matches(metric, keys, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        known = f" (its metrics: {', '.join(keys[:20])}{', ...' if len(keys) > 20 else ''})" if keys else ""
        fail(f"no {metric!r} points in run(s) {', '.join(r.native_id for r in missing)}{hint}{known}", 1)
    return summaries


def _value(summary: Summary, stat: str) -> float:
    return summary.final if stat == "final" else summary.best


@dataclass(frozen=True)
class _Result:
    """Everything ``compare`` found, for the table and the JSON."""

    metric: str
    goal: Goal
    guessed_goal: bool
    stat: str
    groups: list[tuple[str, list[SourceRun]]]
    summaries: dict[str, Summary]
    stats: list[GroupStats]
    comparisons: list[Comparison]
    plot: Path | None


def _payload(result: _Result) -> dict[str, Any]:
    summaries = result.summaries
    return {
        "metric": result.metric,
        "goal": result.goal,
        "stat": result.stat,
        "runs": [
            {
                "group": name,
                "run_id": r.native_id,
                "name": r.name,
                "final": summaries[r.key].final,
                "best": summaries[r.key].best,
                "best_step": summaries[r.key].best_step,
                "points": len(summaries[r.key].points),
            }
            for name, members in result.groups
            for r in members
        ],
        "groups": [
            {
                "name": g.name,
                "n": g.n,
                "values": list(g.values),
                "mean": g.mean,
                "std": g.std,
                "ci": list(g.ci) if g.ci else None,
                "confidence": g.confidence,
            }
            for g in result.stats
        ],
        "comparisons": [
            {
                "reference": c.a.name,
                "group": c.b.name,
                "difference": c.difference,
                "welch_t": c.welch_t,
                "welch_p": c.welch_p,
                "mannwhitney_u": c.mannwhitney_u,
                "mannwhitney_p": c.mannwhitney_p,
                "hedges_g": c.hedges_g,
                "cohens_d": c.cohens_d,
                "verdict": c.verdict,
            }
            for c in result.comparisons
        ],
        "plot": str(result.plot) if result.plot else None,
    }


def _print(result: _Result) -> None:
    how = " (guessed from the name; set --goal)" if result.guessed_goal else ""
    better = "higher" if result.goal == "max" else "lower"
    out.print(f"[bold]{escape(result.metric)}[/]: {better} is better{how}")
    table = Table(show_edge=False, header_style="bold")
    for column in ("group", "run", "name", "final", "best", "at step", "points"):
        table.add_column(column, justify="right" if column in ("final", "best", "at step", "points") else "left")
    for name, members in result.groups:
        for r in members:
            s = result.summaries[r.key]
            table.add_row(
                escape(name),
                r.native_id[:8],
                escape(r.name or ""),
                format_value(s.final),
                format_value(s.best),
                str(s.best_step),
                str(len(s.points)),
            )
    print_table(table)
    stats = result.stats
    if stats:
        _print_statistics(result)
    if result.plot is not None:
        out.print(f"Plot written to {escape(str(result.plot))}")


def _print_statistics(result: _Result) -> None:
    stats = result.stats
    table = Table(
        title=f"Groups ({result.stat} value per run)", title_justify="left", show_edge=False, header_style="bold"
    )
    for column in ("group", "n", "mean", "std", f"{stats[0].confidence:.0%} bootstrap CI"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for g in stats:
        ci = escape(f"[{format_value(g.ci[0])}, {format_value(g.ci[1])}]") if g.ci else "-"
        table.add_row(escape(g.name), str(g.n), format_value(g.mean), format_value(g.std), ci)
    print_table(table)
    table = Table(title="Tests", title_justify="left", show_edge=False, header_style="bold")
    for column in ("comparison", "difference", "Welch t", "Welch p", "Mann–Whitney U", "M–W p", "Hedges' g"):
        table.add_column(column, justify="left" if column == "comparison" else "right")
    for c in result.comparisons:
        table.add_row(
            escape(f"{c.b.name} vs {c.a.name}"),
            f"{c.difference:+.4g}",
            f"{c.welch_t:.3g}",
            f"{c.welch_p:.3g}",
            f"{c.mannwhitney_u:g}",
            f"{c.mannwhitney_p:.3g}",
            f"{c.hedges_g:+.2f}",
        )
    print_table(table)
    for c in result.comparisons:
        out.print(f"\n{escape(c.verdict)}")

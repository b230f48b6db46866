"""``tracelet runs``: the runs in the local journals, filtered (see :mod:`tracelet_core.filters`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

import typer
from rich.table import Table

from tracelet_core.cli._app import (
    JournalDirOption,
    JsonOption,
    app,
    emit_json,
    escape,
    format_duration,
    format_time,
    journal_dir,
    out,
    print_table,
    redact,
    user_errors,
)
from tracelet_core.filters import Filter, RunFacts, parse_filter
from tracelet_core.pipeline.report import BackendReport
from tracelet_core.trackers.journal.reader import (
    UNREADABLE,
    JournalRun,
    journal_runs,
    read_contents,
)

__all__ = ["STATUS_STYLE", "run_facts", "run_json", "runs"]

STATUS_STYLE = {
    "FINISHED": "green",
    "RUNNING": "cyan",
    "FAILED": "red",
    "KILLED": "yellow",
    "INTERRUPTED": "yellow",
    UNREADABLE: "bold red",
}


def _backend_cell(backend: BackendReport, total: int) -> str:
    rejected = f" ({backend.rejected} rejected)" if backend.rejected else ""
    if backend.complete:
        return f"[green]{backend.name} ✓[/]{rejected}"
    return f"[yellow]{backend.name} {backend.delivered}/{total} {backend.state}[/]{rejected}"


def _backend_json(backend: BackendReport) -> dict[str, Any]:
    return {
        "name": backend.name,
        "state": backend.state,
        "delivered": backend.delivered,
        "pending": backend.pending,
        "rejected": backend.rejected,
        "native_id": backend.native_id,
        "location": redact(backend.location),
        "error": redact(backend.error),
    }


def run_json(run: JournalRun) -> dict[str, Any]:
    """The JSON form of one run's summary (shared by ``runs``, ``show`` and ``sync``); credentials removed."""
    report = run.report
    return {
        "run_id": run.run_id,
        "experiment": run.experiment,
        "name": run.name,
        "status": run.status,
        "error": redact(run.error),
        "created": run.created,
        "ended": run.ended,
        "duration": run.duration,
        "events": report.total if run.readable else None,
        "dropped": report.dropped,
        "lost": report.lost,
        "problems": [redact(problem) for problem in report.problems],
        "journal": str(run.path),
        "backends": [_backend_json(b) for b in report.backends],
    }


def run_facts(run: JournalRun, contents: bool) -> RunFacts:
    """What a filter sees of a run; its params, tags and last metric values only when ``contents``."""
    facts = RunFacts(run.status, run.name, run.experiment, run.run_id, run.created)
    if not contents:
        return facts
    read = read_contents(run.path)
    last = {key: points[-1].value for key, points in read.metrics.items() if points}
    return replace(facts, tags=read.tags, params=read.params, metrics=last)


@app.command(
    short_help="List the runs in the local journals.",
    epilog="Example: [bold]tracelet runs --pending[/]  ·  [bold]tracelet runs -e digits --json[/]",
)
def runs(
    experiment: Annotated[
        list[str] | None, typer.Option("--experiment", "-e", help="Only this experiment (repeatable).")
    ] = None,
    pending: Annotated[bool, typer.Option("--pending", help="Only runs some backend has not received whole.")] = False,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="Only the N most recent runs.", min=1)] = None,
    conditions: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="FILTER", help="Conditions, e.g. status=FINISHED param.lr>0.01 since=2d.", show_default=False
        ),
    ] = None,
    filter_option: Annotated[
        list[str] | None,
        typer.Option(
            "--filter", "-f", metavar="FILTER", help="Conditions as one string (repeatable); see docs/cli.md."
        ),
    ] = None,
    journal_dir_option: JournalDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the runs in the local journals: name, status, start, duration, and each backend's delivery state.

    Filter with conditions that must all hold: [bold]status=FINISHED[/], [bold]name~base[/],
    [bold]tag.team=vision[/], [bold]param.lr>0.01[/], [bold]metric.val/acc>=0.9[/] (last value),
    [bold]since=2d[/], [bold]until=2026-01-31[/]; operators = != > >= < <= ~ (contains).
    """
    with user_errors():
        parts = [parse_filter(conditions or []), *(parse_filter(text) for text in filter_option or [])]
        wanted = Filter(tuple(c for part in parts for c in part.conditions))
        directory = journal_dir(journal_dir_option)
        found = journal_runs(directory, experiment or None)
        if wanted:
            found = [run for run in found if run.readable and wanted.matches(run_facts(run, wanted.needs_contents))]
    if pending:
        found = [run for run in found if run.pending]
    if limit is not None:
        found = found[-limit:]
    if as_json:
        emit_json([run_json(run) for run in found])
        return
    if not found:
        out.print(f"No runs in {escape(str(directory))}" + (" with undelivered events." if pending else "."))
        return
    _print_runs(found)


def _print_runs(found: list[JournalRun]) -> None:
    """The runs' table, then what waits for `tracelet sync` and what cannot be read."""
    table = Table(show_edge=False, header_style="bold")
    for column in ("run", "experiment", "name", "status", "started", "duration", "events", "backends"):
        table.add_column(column, no_wrap=column in ("run", "started"))
    for run in found:
        style = STATUS_STYLE.get(run.status, "")
        if run.error is not None:
            backends = f"[red]{escape(redact(run.error) or '')}[/]"
        else:
            cells = [_backend_cell(b, run.report.total) for b in run.report.backends]
            backends = " ".join(cells) or "[dim]journal only[/]"
        table.add_row(
            escape(run.run_id[:8]),
            escape(run.experiment),
            escape(run.name or ""),
            f"[{style}]{run.status}[/]" if style else run.status,
            format_time(run.created),
            format_duration(run.duration),
            str(run.report.total) if run.readable else "-",
            backends,
        )
    print_table(table)
    waiting = sum(1 for run in found if run.pending)
    if waiting:
        out.print(f"[yellow]{waiting} run(s) with undelivered events:[/] `tracelet sync` delivers them.")
    unreadable = sum(1 for run in found if not run.readable)
    if unreadable:
        out.print(
            f"[red]{unreadable} journal(s) cannot be read[/] (the reason is in the table): they are left alone; "
            "move a damaged run's directory aside to keep it out of this list."
        )

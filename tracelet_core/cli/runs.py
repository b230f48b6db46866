"""``tracelet runs`` and ``tracelet show RUN``: the runs in the local journals, and one run in detail."""

from __future__ import annotations

import math
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
    fail,
    format_duration,
    format_time,
    format_value,
    journal_dir,
    out,
    print_table,
    redact,
    user_errors,
)
from tracelet_core.filters import Filter, RunFacts, parse_filter
from tracelet_core.pipeline.contract import RejectedEvent
from tracelet_core.pipeline.report import BackendReport, DeliveryReport
from tracelet_core.trackers.journal.artifacts import artifact_statuses
from tracelet_core.trackers.journal.reader import (
    UNREADABLE,
    JournalRun,
    journal_runs,
    read_contents,
    read_rejected,
    resolve_run,
)

__all__ = ["run_facts", "runs", "show"]

_STATUS_STYLE = {
    "FINISHED": "green",
    "RUNNING": "cyan",
    "FAILED": "red",
    "KILLED": "yellow",
    "INTERRUPTED": "yellow",
    UNREADABLE: "bold red",
}
REJECTED_ROWS = 20  # the table's share; --json lists up to REJECTED_JSON
REJECTED_JSON = 1000


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


def _rejected_json(event: RejectedEvent) -> dict[str, Any]:
    return {
        "backend": event.backend,
        "seq": event.seq,
        "kind": event.kind,
        "key": event.key,
        "reason": redact(event.reason),
        "ts": event.ts,
    }


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
    table = Table(show_edge=False, header_style="bold")
    for column in ("run", "experiment", "name", "status", "started", "duration", "events", "backends"):
        table.add_column(column, no_wrap=column in ("run", "started"))
    for run in found:
        style = _STATUS_STYLE.get(run.status, "")
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


@app.command(
    short_help="Show one run in detail.",
    epilog="Example: [bold]tracelet show 3f2a[/]  ·  [bold]tracelet show my-run-name --json[/]",
)
def show(
    run: Annotated[str, typer.Argument(help="Run id, unique id prefix, or unique run name.")],
    journal_dir_option: JournalDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one run: delivery per backend (with the events a tracker rejected, and why), params, tags, the last
    value of each metric, and artifacts. Exits 1 when the run's journal cannot be read (the message says why).
    """
    with user_errors():
        found = resolve_run(journal_dir(journal_dir_option), run)
        if found.error is not None:
            fail(f"run {found.run_id} is unreadable: {found.error}")
        contents = read_contents(found.path)
        rejected = read_rejected(found.path, REJECTED_JSON if as_json else REJECTED_ROWS)
        files = artifact_statuses(found.path)
    metrics = {key: _metric_summary(points) for key, points in sorted(contents.metrics.items())}
    artifacts: list[dict[str, Any]] = [
        {
            "name": f.name,
            "path": f.path,
            "bytes": f.size,
            "state": f.state,
            "in": list(f.holders),
            "replaced_by": f.replaced_by,
            "metadata": f.metadata,
        }
        for f in files
    ]
    media = [{"kind": kind, "key": key, "count": n} for (kind, key), n in sorted(contents.media.items())]
    if as_json:
        emit_json(
            run_json(found)
            | {
                "params": contents.params,
                "tags": contents.tags,
                "metrics": metrics,
                "artifacts": artifacts,
                "media": media,
                "sessions": contents.sessions,
                "damaged": contents.damaged,
                "rejected": [_rejected_json(event) for event in rejected],
            }
        )
        return
    _print_header(found, contents.sessions)
    _print_losses(found.report, contents.damaged)
    _print_rejected(found.run_id, rejected, sum(b.rejected for b in found.report.backends))
    _print_pairs("Params", contents.params)
    _print_pairs("Tags", contents.tags)
    _print_metrics(metrics)
    _print_files(artifacts, media)


def _print_metrics(metrics: dict[str, dict[str, Any]]) -> None:
    """The last value, its step, the point count, min and max of each metric."""
    if not metrics:
        return
    table = Table(title="Metrics", title_justify="left", show_edge=False, header_style="bold")
    for column in ("key", "last", "at step", "points", "min", "max"):
        table.add_column(column, justify="left" if column == "key" else "right")
    for key, m in metrics.items():
        table.add_row(
            escape(key),
            format_value(m["last"]),
            str(m["step"] if m["step"] is not None else "-"),
            str(m["points"]),
            format_value(m["min"]),
            format_value(m["max"]),
        )
    print_table(table)


def _print_files(artifacts: list[dict[str, Any]], media: list[dict[str, Any]]) -> None:
    """Each artifact's name, size and local copy, and how many of each media key were logged."""
    if not artifacts and not media:
        return
    table = Table(title="Artifacts and media", title_justify="left", show_edge=False, header_style="bold")
    for column in ("name", "state", "size", "local copy"):
        table.add_column(column, overflow="fold")
    for item in artifacts:
        size = "-" if item["bytes"] is None else f"{item['bytes']:,} B"
        local = item["path"] if item["bytes"] is not None else "-"
        table.add_row(escape(item["name"]), _file_state(item), size, escape(local))
    for item in media:
        table.add_row(escape(f"{item['key']} ({item['kind']})"), f"{item['count']} logged", "", "")
    print_table(table)


def _metric_summary(points: list) -> dict[str, Any]:
    finite = [p.value for p in points if not math.isnan(p.value)]
    last = points[-1]
    return {
        "last": last.value,
        "step": last.step,
        "points": len(points),
        "min": min(finite) if finite else None,
        "max": max(finite) if finite else None,
    }


def _file_state(item: dict[str, Any]) -> str:
    """``kept``, ``uploaded (mlflow)``, ``replaced by best.ckpt`` or, in red, ``missing``."""
    state = item["state"]
    if state == "uploaded":
        return f"[green]uploaded[/] ({escape(', '.join(item['in']))})"
    if state == "replaced":
        return f"[dim]replaced by {escape(item['replaced_by'])}[/]"
    if state == "missing":
        return "[red]missing[/]"
    return "kept"


def _print_header(run: JournalRun, sessions: int) -> None:
    style = _STATUS_STYLE.get(run.status, "")
    out.print(
        f"[bold]{escape(run.run_id)}[/]  {escape(run.experiment)} / {escape(run.name or '(unnamed)')}  "
        f"[{style or 'default'}]{run.status}[/]"
    )
    out.print(
        f"started {format_time(run.created)} · ended {format_time(run.ended) if run.status != 'RUNNING' else '-'} · "
        f"{format_duration(run.duration)} · {run.report.total} events · {sessions} session(s)"
    )
    out.print(f"journal {escape(str(run.path))}")
    if not run.report.backends:
        out.print("[dim]journal only: no tracker received it (send it with `tracelet sync RUN --to BACKEND`)[/]")
        return
    table = Table(title="Backends", title_justify="left", show_edge=False, header_style="bold")
    for column in ("backend", "state", "delivered", "rejected", "native id", "where", "error"):
        table.add_column(column, overflow="fold")
    for b in run.report.backends:
        delivered = f"{b.delivered}/{run.report.total}"
        table.add_row(
            b.name,
            b.state,
            delivered if b.complete else f"[yellow]{delivered}[/]",
            f"[yellow]{b.rejected}[/]" if b.rejected else "0",
            escape(b.native_id or "-"),
            escape(redact(b.location) or "-"),
            escape(redact(b.error) or ""),
        )
    print_table(table)


def _print_losses(report: DeliveryReport, damaged: int) -> None:
    """What never reached the journal, or cannot be read back from it."""
    if report.dropped:
        out.print(f"[yellow]{report.dropped} invalid value(s) dropped[/] (not journaled, never delivered)")
    if report.lost:
        out.print(f"[red]{report.lost} logged event(s) could not be kept[/] in the journal")
    if damaged:
        out.print(f"[red]{damaged} damaged event(s)[/] in the journal cannot be read and are left out below")
    for problem in report.problems:
        out.print(f"[yellow]{escape(redact(problem) or '')}[/]")


def _print_rejected(run_id: str, rejected: list[RejectedEvent], total: int) -> None:
    """The events trackers refused for good, with why: the first REJECTED_ROWS of them."""
    if not rejected:
        return
    table = Table(title="Rejected", title_justify="left", show_edge=False, header_style="bold")
    for column in ("backend", "seq", "kind", "key", "reason"):
        table.add_column(column, overflow="fold", justify="right" if column == "seq" else "left")
    for event in rejected:
        table.add_row(
            event.backend,
            str(event.seq),
            escape(event.kind),
            escape(event.key or ""),
            escape(redact(event.reason) or ""),
        )
    print_table(table)
    more = total - len(rejected)
    if more > 0:
        out.print(f"[dim]{more} more (`tracelet show {escape(run_id[:8])} --json` lists up to {REJECTED_JSON})[/]")


def _print_pairs(title: str, values: dict[str, str]) -> None:
    if not values:
        return
    table = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    table.add_column("key")
    table.add_column("value", overflow="fold")
    for key, value in sorted(values.items()):
        table.add_row(escape(key), escape(value))
    print_table(table)

"""``tracelet show RUN``: one run in detail: delivery per backend, rejected events, params, tags, metrics, files."""

from __future__ import annotations

import math
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
from tracelet_core.cli.runs import STATUS_STYLE, run_json
from tracelet_core.pipeline.contract import RejectedEvent
from tracelet_core.pipeline.report import DeliveryReport
from tracelet_core.trackers.journal.artifacts import artifact_statuses
from tracelet_core.trackers.journal.reader import JournalRun, read_contents, read_rejected, resolve_run

__all__ = ["show"]

REJECTED_ROWS = 20  # the table's share; --json lists up to REJECTED_JSON
REJECTED_JSON = 1000


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
    style = STATUS_STYLE.get(run.status, "")
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

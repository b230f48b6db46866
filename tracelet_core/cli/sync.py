"""``tracelet sync [RUN] [--to BACKEND]``: deliver what the trackers have not acknowledged."""

from __future__ import annotations

import sqlite3
import warnings
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.progress import Progress, TaskID, TextColumn

from tracelet_core.cli._app import (
    JournalDirOption,
    JsonOption,
    app,
    console_output,
    emit_json,
    escape,
    journal_dir,
    out,
    progress_bars,
    redact,
    user_errors,
)
from tracelet_core.cli.runs import run_json
from tracelet_core.errors import JournalError, TraceletWarning
from tracelet_core.pipeline.contract import BackendDelivery, DeliveryState
from tracelet_core.sync import Announce, sync_run
from tracelet_core.sync_plan import Destination
from tracelet_core.trackers.journal.reader import JournalRun, journal_runs, load_run, resolve_run

__all__ = ["sync"]

# Delivery states a progress bar names: the backend is not simply making progress.
_NOTED = (DeliveryState.RETRYING, DeliveryState.GAVE_UP, DeliveryState.UNAVAILABLE)
_OUTCOME_STYLE = {
    "delivered": "[green]✓[/]",
    "nothing": "[green]✓[/]",
    "incomplete": "[red]✗[/]",
    "locked": "[yellow]…[/]",
    "running": "[yellow]…[/]",
    "unreadable": "[red]✗[/]",
}


@dataclass(frozen=True)
class _Outcome:
    """What sync did for one run: a :class:`~tracelet_core.sync.SyncResult`'s outcome, or ``unreadable``."""

    run: JournalRun
    outcome: str
    message: str
    ok: bool


class _Bars:
    """One progress bar per (run, backend): acknowledged events out of the journal's events."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[tuple[str, str], TaskID] = {}

    def __call__(self, run_id: str, states: dict[str, BackendDelivery], last_seq: int) -> None:
        for name, state in states.items():
            task = self._tasks.get((run_id, name))
            if task is None:
                task = self._tasks[run_id, name] = self._progress.add_task(
                    f"{run_id[:8]} → {name}", total=last_seq, note=""
                )
            note = f"[yellow]{state.state}[/]" if state.state in _NOTED else ""
            self._progress.update(task, completed=min(state.acked_seq, last_seq), note=note)


def _selected(runs: list[JournalRun], to: list[str]) -> list[JournalRun]:
    """Runs with something to deliver: to ``to`` (those not all there yet), else to their own backends.

    An unreadable run is kept, to be reported as skipped: nobody can tell what it holds.
    """
    chosen = []
    for run in runs:
        reports = {b.name: b for b in run.report.backends}
        if not run.readable:
            chosen.append(run)
        elif to:
            if any(name not in reports or not reports[name].complete for name in to):
                chosen.append(run)
        elif run.pending:
            chosen.append(run)
    return chosen


@dataclass(frozen=True)
class _Request:
    to: list[str]
    wait: bool
    stall_timeout: float
    retarget: bool


def _announcer(progress: Progress, as_json: bool) -> Announce:
    """Say where a run's events go before they are sent (on stderr with --json, which keeps stdout JSON)."""

    def announce(run_id: str, destination: Destination) -> None:
        note = f" [yellow]({escape(destination.note)})[/]" if destination.note else ""
        line = f"{escape(run_id[:8])} → {destination.backend} at {escape(redact(destination.where) or '')}{note}"
        (progress.console if as_json else out).print(line)

    return announce


def _sync_one(run: JournalRun, request: _Request, bars: _Bars, announce: Announce) -> _Outcome:
    """Sync one run; a journal that cannot be read (now, or when its damaged page is reached) is skipped."""
    if run.error is not None:
        return _Outcome(run, "unreadable", f"skipped: {run.error}", ok=False)
    try:
        with warnings.catch_warnings():
            # A file that is gone is fetched back or named in the outcome: no warning per file as well.
            warnings.filterwarnings("ignore", message="The file for artifact .* is gone", category=TraceletWarning)
            result = sync_run(
                run.path,
                to=request.to,
                wait=request.wait,
                stall_timeout=request.stall_timeout,
                progress=bars,
                retarget=request.retarget,
                announce=announce,
            )
    except (JournalError, sqlite3.DatabaseError) as exc:
        why = str(exc) if isinstance(exc, JournalError) else f"Cannot read the Tracelet journal {run.path}: {exc}"
        return _Outcome(run, "unreadable", f"skipped: {why}", ok=False)
    return _Outcome(run, result.outcome, result.message, result.ok)


def _print_outcomes(outcomes: list[_Outcome], as_json: bool) -> None:
    """One line per run (or JSON): the outcome and why."""
    if as_json:
        emit_json(
            [
                run_json(load_run(o.run.path) if o.run.readable else o.run)
                | {"outcome": o.outcome, "message": redact(o.message)}
                for o in outcomes
            ]
        )
    else:
        for o in outcomes:
            out.print(f"{_OUTCOME_STYLE[o.outcome]} {escape(o.run.run_id[:8])}: {escape(redact(o.message) or '')}")


@app.command(
    short_help="Deliver what the trackers have not acknowledged (exactly once).",
    epilog="Examples: [bold]tracelet sync[/] (every run with undelivered events)  ·  "
    "[bold]tracelet sync 3f2a --to mlflow[/] (send a run to a tracker it never went to)  ·  "
    "[bold]tracelet sync 3f2a --retarget[/] (send it where this shell's settings point)  ·  "
    "[bold]tracelet sync --wait --json[/]",
)
def sync(
    run: Annotated[str | None, typer.Argument(help="Run id, unique prefix or name; default: every run.")] = None,
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to", "-t", help="Send to this backend (repeatable); a new one takes its options from the settings."
        ),
    ] = None,
    retarget: Annotated[
        bool,
        typer.Option(
            "--retarget",
            help="Send the run's backends where this shell's settings point instead of where the run recorded "
            "(a new run there).",
        ),
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for a delivery process that holds a run.")] = False,
    stall_timeout: Annotated[
        float, typer.Option("--timeout", help="Give up on a run when no backend progresses for this many seconds.")
    ] = 60.0,
    journal_dir_option: JournalDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deliver what each backend has not acknowledged, exactly once: after an outage, a crash, or for a run
    made with no tracker installed. With --to, send whole runs to a backend they were never sent to.

    Each backend goes where the run recorded (the MLflow server or Aim repository it was made for),
    whatever this shell's MLFLOW_TRACKING_URI says; sync names the place before sending. --retarget
    sends the run where the current settings point instead. Credentials come from this shell's
    environment. Files whose local copies were released after upload are fetched from a tracker that
    has them (MLflow); a file nobody has makes the run incomplete.

    A run whose journal cannot be read is skipped with the reason; the others are delivered.
    Exits 1 when something is left undelivered or a journal cannot be read (the message says why).
    """
    targets = list(to or [])
    with user_errors():
        directory = journal_dir(journal_dir_option)
        chosen = [resolve_run(directory, run)] if run is not None else _selected(journal_runs(directory), targets)
    if not chosen:
        if as_json:
            emit_json([])
        else:
            out.print("Nothing to sync: every backend holds every journaled event.")
        return
    outcomes: list[_Outcome] = []
    progress = progress_bars(as_json, TextColumn("{task.fields[note]}"))
    with user_errors(), progress, console_output(progress.console):
        bars = _Bars(progress)
        request = _Request(targets, wait, stall_timeout, retarget)
        for journal_run in chosen:
            outcomes.append(_sync_one(journal_run, request, bars, _announcer(progress, as_json)))
    _print_outcomes(outcomes, as_json)
    if not all(o.ok for o in outcomes):
        raise typer.Exit(1)

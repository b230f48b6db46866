"""``tracelet migrate --from SOURCE --to DESTINATION`` and ``tracelet import-tensorboard LOGDIR``."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, TaskID
from rich.table import Table

from tracelet_core.cli._app import (
    JsonOption,
    app,
    console_output,
    emit_json,
    escape,
    fail,
    out,
    print_table,
    progress_bars,
    redact,
    user_errors,
)
from tracelet_core.migrate import MigrationObserver, RunOutcome, migrate, parse_destination
from tracelet_core.trackers.store import SourceRun, open_reader, reader_kinds

__all__ = ["import_tensorboard", "migrate_command"]

_SOURCES = ", ".join(f"{kind}:..." for kind in reader_kinds())


class _ProgressObserver(MigrationObserver):
    """Two bars: runs looked at, and the points of the run being copied."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._runs: TaskID | None = None
        self._points: TaskID | None = None

    def planned(self, runs: list[SourceRun]) -> None:
        self._runs = self._progress.add_task("runs", total=len(runs))

    def run_started(self, run: SourceRun, points: int) -> None:
        if self._points is not None:
            self._progress.remove_task(self._points)
        self._points = self._progress.add_task(f"  {run.name or run.native_id}: points", total=points)

    def advanced(self, points: int) -> None:
        if self._points is not None:
            self._progress.advance(self._points, points)

    def run_finished(self, outcome: RunOutcome) -> None:
        if self._runs is not None:
            self._progress.advance(self._runs)


def _outcome_json(outcome: RunOutcome) -> dict[str, Any]:
    run = outcome.run
    return {
        "source": run.key,
        "experiment": run.experiment,
        "name": run.name,
        "action": outcome.action,
        "destination_id": outcome.destination_id,
        "points": outcome.points,
        "artifacts": outcome.artifacts,
        "reason": redact(outcome.reason),
        "notes": [redact(note) for note in outcome.notes],
    }


@app.command(
    "migrate",
    short_help="Copy runs between trackers (idempotent).",
    epilog="Examples: [bold]tracelet migrate --from mlflow:sqlite:///mlflow.db --to aim:./aim-repo[/]  ·  "
    "[bold]tracelet migrate --from aim:./aim-repo --to mlflow:http://127.0.0.1:5000 -e digits --dry-run[/]",
)
def migrate_command(
    source: Annotated[str, typer.Option("--from", help=f"Where the runs are: {_SOURCES}", show_default=False)],
    destination: Annotated[
        str,
        typer.Option(
            "--to",
            help="Where to copy them: mlflow[:URI], aim[:REPO], wandb, wandb-offline:DIR, clearml, "
            "clearml-offline:DIR, or another backend's name (options from the settings).",
            show_default=False,
        ),
    ],
    experiment: Annotated[
        list[str] | None, typer.Option("--experiment", "-e", help="Only this source experiment (repeatable).")
    ] = None,
    into: Annotated[str | None, typer.Option(help="Put every run into this experiment instead of its own.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be copied.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Copy experiments and runs between trackers: params, tags, full metric histories (steps and
    timestamps) and artifacts. Idempotent: every copy carries the tag tracelet.migrated_from=<source>:<id>,
    and runs already in the destination are skipped, so a rerun adds nothing.

    Ends with what could not be carried, and why. Exits 1 when a run could not be copied.
    """
    from tracelet_core.settings import load_settings

    progress = progress_bars(as_json)
    with user_errors(), console_output(progress.console):
        target = parse_destination(destination, load_settings())
        with open_reader(source) as reader, progress:
            outcomes = migrate(
                reader,
                target,
                experiments=experiment or None,
                into=into,
                dry_run=dry_run,
                observer=_ProgressObserver(progress),
            )
            described = reader.describe()
    if as_json:
        runs = [_outcome_json(o) for o in outcomes]
        emit_json({"source": redact(described), "destination": redact(destination), "runs": runs})
    else:
        _print_summary(redact(described) or "", redact(destination) or "", outcomes, target.reader_spec is None)
    if any(o.action == "failed" for o in outcomes):
        raise typer.Exit(1)


def _print_summary(source: str, destination: str, outcomes: list[RunOutcome], unreadable: bool) -> None:
    if not outcomes:
        out.print(f"No runs in {escape(source)}.")
        return
    table = Table(show_edge=False, header_style="bold")
    for column in ("source run", "experiment", "name", "result", "points", "files", "destination id / reason"):
        table.add_column(column, overflow="fold")
    for o in outcomes:
        style = {"copied": "green", "skipped": "dim", "failed": "red", "planned": "cyan"}[o.action]
        table.add_row(
            escape(o.run.native_id),
            escape(o.run.experiment),
            escape(o.run.name or ""),
            f"[{style}]{o.action}[/]",
            str(o.points),
            str(o.artifacts),
            escape(o.destination_id or redact(o.reason) or ""),
        )
    print_table(table)
    counts = Counter(o.action for o in outcomes)
    out.print(escape(", ".join(f"{n} {action}" for action, n in counts.items()) + f" ({source} → {destination})"))
    notes = Counter(redact(note) or "" for o in outcomes for note in o.notes)
    if notes:
        out.print("\n[bold]Not carried, and why:[/]")
        for note, n in notes.items():
            out.print(f"  • {escape(note)}" + (f" [dim]({n} runs)[/]" if n > 1 else ""))
    if unreadable:
        out.print(
            f"[yellow]{escape(destination)} cannot be read back here, so earlier copies were not looked for: "
            "a rerun copies the runs again.[/]"
        )


@app.command(
    "import-tensorboard",
    short_help="Send TensorBoard event files to the configured trackers.",
    epilog="Example: [bold]tracelet import-tensorboard runs/ --experiment old-baselines -b mlflow[/]",
)
def import_tensorboard(
    logdir: Annotated[Path, typer.Argument(help="A TensorBoard log directory; every run under it is imported.")],
    experiment: Annotated[
        str | None, typer.Option(help="Experiment to import into (default: from the settings).")
    ] = None,
    backend: Annotated[
        list[str] | None, typer.Option("--backend", "-b", help="Send to this backend (repeatable; default: settings).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Send existing TensorBoard event files (every run under LOGDIR) to the configured trackers, one Tracelet
    run each, with a progress bar. What a tracker does not acknowledge stays in the journal for `tracelet sync`.
    """
    from tracelet_core.tensorboard_import import import_logdir

    if not logdir.is_dir():
        fail(f"{logdir} is not a directory", 2)
    progress = progress_bars(as_json)
    with user_errors(), progress, console_output(progress.console):
        task = progress.add_task(f"runs in {logdir}", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        imported = import_logdir(logdir, experiment=experiment, backends=backend or None, progress=advance)
    rows = [dataclasses.asdict(run) for run in imported]
    if as_json:
        emit_json(rows)
    elif not rows:
        out.print(f"No TensorBoard event files under {escape(str(logdir))}.")
    else:
        table = Table(show_edge=False, header_style="bold")
        for column in ("run", "tracelet id", "trackers", "delivered", "scalars", "other"):
            table.add_column(column, overflow="fold")
        for run in imported:
            trackers = ", ".join(f"{k} {v}" for k, v in run.backend_run_ids.items()) or "journal only"
            counts = dataclasses.asdict(run)
            other = ", ".join(
                f"{counts[k]} {k}" for k in ("histograms", "images", "texts", "params", "artifacts") if counts.get(k)
            )
            delivered = "[green]yes[/]" if run.complete else "[yellow]partly: `tracelet sync`[/]"
            table.add_row(escape(run.name), run.run_id[:8], escape(trackers), delivered, str(run.scalars), other)
        print_table(table)
    if not all(run.complete for run in imported):
        raise typer.Exit(1)

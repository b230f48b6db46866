"""``tracelet rm``, ``tracelet prune`` and ``tracelet open``: remove runs, and find them in the trackers."""

from __future__ import annotations

import shutil
import time
from typing import Annotated, Any

import typer

from tracelet_core.cli._app import (
    JournalDirOption,
    JsonOption,
    app,
    emit_json,
    err,
    escape,
    fail,
    journal_dir,
    out,
    redact,
    user_errors,
)
from tracelet_core.cli.runs import run_facts
from tracelet_core.filters import Condition, Filter, parse_duration, parse_filter
from tracelet_core.locks import delivery_lock
from tracelet_core.pipeline.journal import Journal
from tracelet_core.run_places import locate, mlflow_experiment_id, remove_from_tracker
from tracelet_core.trackers.journal.reader import JournalRun, journal_runs, resolve_run

__all__ = ["open_run", "prune", "rm"]

TrackersOption = Annotated[
    bool,
    typer.Option(
        "--trackers",
        help="Delete the runs in their trackers too: MLflow delete_run, the Aim run, W&B/ClearML offline folders.",
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _remove(run: JournalRun, trackers: bool) -> dict[str, Any]:
    """Delete one run's journal directory (and its tracker copies); a run in use is left alone."""
    result: dict[str, Any] = {"run_id": run.run_id, "removed": False, "trackers": []}
    if run.status == "RUNNING":
        return result | {"message": "still running: left alone"}
    lock = delivery_lock(run.path.parent, blocking=False)
    if not lock.acquire():
        return result | {"message": "its delivery process is delivering it: left alone"}
    try:
        if trackers and run.readable:
            with Journal(run.path) as journal:
                removals = [remove_from_tracker(state) for state in journal.deliveries().values()]
            result["trackers"] = [
                {"backend": r.backend, "done": r.done, "message": redact(r.message)} for r in removals
            ]
            if not all(r.done for r in removals):
                return result | {"message": "kept: a tracker copy could not be deleted"}
        shutil.rmtree(run.path.parent)
    finally:
        lock.release()
    return result | {"removed": True, "message": "removed"}


def _confirm(runs: list[JournalRun], trackers: bool, yes: bool) -> None:
    if yes or not runs:
        return
    what = "their journals and their tracker runs" if trackers else "their journals"
    names = ", ".join(f"{r.run_id[:8]} ({r.name or r.experiment})" for r in runs[:10])
    more = f" and {len(runs) - 10} more" if len(runs) > 10 else ""
    if not typer.confirm(f"Delete {len(runs)} run(s), {what}: {names}{more}?", err=True):
        raise typer.Exit(1)


def _report(results: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json(results)
    else:
        for result in results:
            mark = "[green]✓[/]" if result["removed"] else "[yellow]…[/]"
            out.print(f"{mark} {escape(result['run_id'][:8])}: {escape(result['message'])}")
            for tracker in result["trackers"]:
                out.print(f"    {tracker['backend']}: {escape(tracker['message'] or '')}")
    if not all(r["removed"] for r in results):
        raise typer.Exit(1)


@app.command(
    "rm",
    short_help="Delete runs: their journals, and with --trackers their tracker runs.",
    epilog="Example: [bold]tracelet rm 3f2a[/]  ·  [bold]tracelet rm 3f2a 9c1e --trackers --yes[/]",
)
def rm(
    runs: Annotated[list[str], typer.Argument(help="Runs (id, unique prefix or name).", show_default=False)],
    trackers: TrackersOption = False,
    yes: YesOption = False,
    journal_dir_option: JournalDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete runs from the local journals; with --trackers, from their trackers too (asks first; --yes
    does not). A running run, or one its delivery process is delivering, is left alone. Exits 1 when a
    run is left."""
    with user_errors():
        directory = journal_dir(journal_dir_option)
        chosen = list({run.path: run for run in (resolve_run(directory, ref) for ref in runs)}.values())
    _confirm(chosen, trackers, yes or not trackers)
    _report([_remove(run, trackers) for run in chosen], as_json)


@app.command(
    short_help="Delete old or failed runs in bulk.",
    epilog="Examples: [bold]tracelet prune --older-than 30d[/]  ·  [bold]tracelet prune --status FAILED "
    "--status KILLED --dry-run[/]  ·  [bold]tracelet prune tag.stage=debug --trackers --yes[/]",
)
def prune(
    conditions: Annotated[
        list[str] | None,
        typer.Argument(metavar="FILTER", help="Conditions as for `tracelet runs`.", show_default=False),
    ] = None,
    older_than: Annotated[
        str | None, typer.Option("--older-than", metavar="AGE", help="Runs started before this long ago: 30d, 12h.")
    ] = None,
    status: Annotated[
        list[str] | None, typer.Option("--status", "-s", help="Runs with this status (repeatable): FAILED, KILLED...")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list the runs that would be deleted.")] = False,
    trackers: TrackersOption = False,
    yes: YesOption = False,
    journal_dir_option: JournalDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete the runs that match every criterion (asks first; --yes does not). A running run is never
    deleted. Needs at least one criterion: --older-than, --status or a filter."""
    if not (conditions or older_than or status):
        fail("say which runs: --older-than 30d, --status FAILED, or a filter such as tag.stage=debug", 2)
    with user_errors():
        wanted = parse_filter(conditions or [])
        if older_than is not None:
            try:
                bound = time.time() - parse_duration(older_than)
            except ValueError as exc:
                fail(f"--older-than: {exc}", 2)
            wanted = Filter((*wanted.conditions, Condition("until", "=", repr(bound))))
        found = journal_runs(journal_dir(journal_dir_option))
        statuses = {s.upper() for s in status or []}
        chosen = [
            run
            for run in found
            if run.readable
            and run.status != "RUNNING"
            and (not statuses or run.status in statuses)
            and wanted.matches(run_facts(run, wanted.needs_contents))
        ]
    if dry_run or not chosen:
        if as_json:
            emit_json([{"run_id": r.run_id, "name": r.name, "status": r.status} for r in chosen])
        else:
            verb = "would delete" if dry_run else "nothing matches"
            out.print(f"{len(chosen)} run(s): {verb}" if chosen else "No run matches: nothing to delete.")
            for run in chosen:
                out.print(f"  {escape(run.run_id[:8])} {escape(run.experiment)}/{escape(run.name or '-')} {run.status}")
        return
    _confirm(chosen, trackers, yes)
    _report([_remove(run, trackers) for run in chosen], as_json)


@app.command(
    "open",
    short_help="Where a run is in each tracker: its page, or the command that opens a local store.",
    epilog="Example: [bold]tracelet open 3f2a[/]  ·  [bold]tracelet open my-run --json[/]",
)
def open_run(
    run: Annotated[str, typer.Argument(help="Run id, unique id prefix, or unique run name.")],
    journal_dir_option: JournalDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print where each tracker shows the run: the MLflow, W&B or ClearML page; for a local MLflow store
    or an Aim repository, the command that starts its UI and the page there."""
    with user_errors():
        found = resolve_run(journal_dir(journal_dir_option), run)
        if found.error is not None:
            fail(f"run {found.run_id} is unreadable: {found.error}")
        with Journal(found.path) as journal:
            deliveries = list(journal.deliveries().values())
    places = [locate(state, mlflow_experiment_id(state)) for state in deliveries]
    if as_json:
        emit_json([{k: redact(v) for k, v in vars(place).items()} for place in places])
        return
    if not places:
        err.print(
            f"{found.run_id[:8]} went to no tracker (send it with `tracelet sync {found.run_id[:8]} --to BACKEND`)"
        )
        raise typer.Exit(1)
    for place in places:
        if place.native_id is None:
            out.print(f"{place.backend}: not in the tracker yet (`tracelet sync` delivers it)")
            continue
        if place.command:
            out.print(f"{place.backend}: {escape(redact(place.command) or '')}")
            if place.url:
                out.print(f"    then {escape(place.url)}")
        elif place.url:
            out.print(f"{place.backend}: {escape(redact(place.url) or '')}")
        else:
            out.print(f"{place.backend}: run {escape(place.native_id)} in {escape(redact(place.location) or '-')}")

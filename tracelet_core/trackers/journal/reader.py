"""Tracelet's own journals as a store: what `tracelet runs`, `show` and `compare` read.

Everything here goes through :class:`~tracelet_core.pipeline.journal.Journal`'s public methods, one
page of events at a time, so a journal being written by a live run is read safely (SQLite WAL).

One damaged journal never hides the others: a journal that cannot be opened, or whose pages fail to
read, is listed as an ``UNREADABLE`` run with the reason (its id and experiment from its directory's
names), and reading its contents raises :class:`~tracelet_core.errors.JournalError` with that reason.
A journal being created right now may briefly be an empty file: it is listed as unreadable in that instant.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tracelet_core.errors import JournalError
from tracelet_core.events import TERMINAL_STATUSES, ArtifactRef, MetricPoint, RunStatus
from tracelet_core.pipeline.contract import (
    ArtifactPayload,
    EventKind,
    JournalEvent,
    MediaPayload,
    RejectedEvent,
    SessionStart,
)
from tracelet_core.pipeline.delivery_process import recorder_alive
from tracelet_core.pipeline.files import iter_journals
from tracelet_core.pipeline.journal import Journal
from tracelet_core.pipeline.report import DeliveryReport, read_report
from tracelet_core.trackers.store import RunNotFoundError, RunRecord, SourceRun, StoreReader, find_run

__all__ = [
    "UNREADABLE",
    "JournalReader",
    "JournalRun",
    "RunContents",
    "journal_runs",
    "load_run",
    "read_contents",
    "read_rejected",
    "resolve_run",
]

UNREADABLE = "UNREADABLE"
_PAGE = 10_000
# What reading a damaged journal raises: at open (JournalError), on a damaged page later
# (sqlite3.DatabaseError), or from a record damaged in a way SQLite does not notice, whose value then
# is not what Tracelet wrote (ValueError and TypeError while converting it).
_READ_ERRORS = (JournalError, sqlite3.DatabaseError, ValueError, TypeError)


@dataclass(frozen=True)
class JournalRun:
    """One run in the local journals, as ``tracelet runs`` lists it.

    Attributes:
        path: the journal file.
        run_id: Tracelet's id of the run.
        experiment: the experiment name.
        name: the run name, if one was given.
        status: RUNNING, FINISHED, FAILED, KILLED, INTERRUPTED (its trainer is gone and no end was
            journaled: no delivery process was left to record one), or UNREADABLE (see ``error``).
        created: when the run first started (seconds since the epoch).
        ended: when it last ended, if it has.
        report: every backend's delivery state (empty for an unreadable journal).
        error: why the journal cannot be read; None when it can.
    """

    path: Path
    run_id: str
    experiment: str
    name: str | None
    status: str
    created: float | None
    ended: float | None
    report: DeliveryReport
    error: str | None = None

    @property
    def readable(self) -> bool:
        """Whether the journal could be read (an unreadable run has only its directory's names)."""
        return self.error is None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (to now while running)."""
        if self.created is None:
            return None
        end = self.ended if self.ended is not None and self.status != "RUNNING" else time.time()
        return max(0.0, end - self.created)

    @property
    def pending(self) -> int:
        """Events some backend has not acknowledged yet (the most of any backend)."""
        return max((b.pending for b in self.report.backends), default=0)


@dataclass
class RunContents:
    """What one run logged, folded from its journal.

    Attributes:
        params: last value of each param.
        tags: last value of each tag (start tags included).
        metrics: every point of each metric key, in logged order.
        artifacts: every logged file (a later one with the same name replaces the earlier).
        media: how many images, histograms and texts were logged, by ``(kind, key)``.
        sessions: how many times the run was started (1, plus one per resume).
        damaged: events left out because their values could not be understood (a damaged record).
    """

    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, list[MetricPoint]] = field(default_factory=dict)
    artifacts: dict[str, ArtifactRef] = field(default_factory=dict)
    media: Counter[tuple[str, str]] = field(default_factory=Counter)
    sessions: int = 0
    damaged: int = 0


def _events(journal: Journal, skip_metrics: bool = False) -> Iterator[JournalEvent]:
    after = 0
    while True:
        page = journal.read(after, _PAGE, skip_metrics=skip_metrics)
        if not page:
            return
        yield from page
        after = page[-1].seq


def _status(journal: Journal, meta_status: str) -> str:
    if meta_status != "RUNNING":
        return meta_status
    if recorder_alive(journal.path, journal.meta()):
        return "RUNNING"
    return "INTERRUPTED"


def _reason(path: Path, exc: Exception) -> str:
    """Why ``path`` cannot be read, in one line."""
    if isinstance(exc, JournalError):
        return str(exc)
    detail = str(exc) if isinstance(exc, sqlite3.DatabaseError) else f"a damaged record ({exc})"
    return f"Cannot read the Tracelet journal {path}: {detail}"


def _unreadable(path: Path, reason: str) -> JournalRun:
    run_id, experiment = path.parent.name, path.parent.parent.name
    report = DeliveryReport(run_id, UNREADABLE, str(path), 0, ())
    return JournalRun(path, run_id, experiment, None, UNREADABLE, None, None, report, error=reason)


def load_run(path: Path) -> JournalRun:
    """Read one journal's summary.

    A journal that cannot be read (not SQLite, damaged, without a journal's tables, or the empty file a
    starting run has just created) gives an ``UNREADABLE`` run with the reason, named after its directories.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "digits" / "3f2a" / "journal.sqlite"
        >>> path.parent.mkdir(parents=True)
        >>> _ = path.write_bytes(b"not a database, but long enough to look like one" * 100)
        >>> run = load_run(path)
        >>> run.run_id, run.experiment, run.status, run.readable
        ('3f2a', 'digits', 'UNREADABLE', False)
        >>> run.error.endswith("file is not a database")
        True
    """
    try:
        with Journal(path) as journal:
            meta = journal.meta()
            run_id = meta.run_id or path.parent.name
            status = _status(journal, meta.status)
            report = read_report(journal, run_id, status)
    except _READ_ERRORS as exc:
        return _unreadable(path, _reason(path, exc))
    return JournalRun(
        path=path,
        run_id=run_id,
        experiment=meta.experiment or path.parent.parent.name,
        name=meta.run_name,
        status=status,
        created=meta.created,
        ended=meta.ended,
        report=report,
    )


def _started(run: JournalRun) -> float:
    """When a run started; for one whose journal does not say (unreadable), when its file last changed."""
    if run.created is not None:
        return run.created
    try:
        return run.path.stat().st_mtime
    except OSError:  # removed since it was listed
        return 0.0


def journal_runs(journal_dir: str | Path, experiments: Collection[str] | None = None) -> list[JournalRun]:
    """Every run under ``journal_dir``, oldest first; one whose journal cannot be read is ``UNREADABLE``.

    Example:
        >>> import tempfile
        >>> journal_runs(tempfile.mkdtemp())
        []
    """
    runs = [load_run(path) for path in iter_journals(journal_dir)]
    chosen = [run for run in runs if experiments is None or run.experiment in experiments]
    return sorted(chosen, key=lambda r: (_started(r), r.run_id))


def resolve_run(journal_dir: str | Path, ref: str) -> JournalRun:
    """The run ``ref`` names in ``journal_dir``: a run id, a unique id prefix, or a unique run name.

    An unreadable run is found by its directory's name (check :attr:`JournalRun.readable`).

    Raises:
        RunNotFoundError: no run, or several, match (the message says which and what to do).
    """
    runs = journal_runs(journal_dir)
    listing = [SourceRun(str(r.path), r.run_id, r.experiment, r.name) for r in runs]
    try:
        chosen = find_run(listing, ref)
    except RunNotFoundError as exc:
        raise RunNotFoundError(f"{exc} in {journal_dir} (see `tracelet runs`)") from None
    return next(r for r in runs if str(r.path) == chosen.key)


def read_contents(path: Path, metric_keys: Collection[str] | None = None) -> RunContents:
    """Fold a run's journal into its params, tags, metric histories, artifacts and media counts.

    An event whose values cannot be understood (a damaged record) is left out and counted in
    :attr:`RunContents.damaged`.

    Args:
        path: the journal file.
        metric_keys: keep only these metrics (all when None).

    Raises:
        JournalError: the journal cannot be read (the message says why).
    """
    contents = RunContents()
    try:
        with Journal(path) as journal:
            if metric_keys is not None:  # only some metrics: let SQLite pick them out
                for key in metric_keys:
                    for event in journal.metric_history(key):
                        _fold(contents, event)
            for event in _events(journal, skip_metrics=metric_keys is not None):
                _fold(contents, event)
    except sqlite3.DatabaseError as exc:
        raise JournalError(_reason(path, exc)) from exc
    return contents


def _fold(contents: RunContents, event: JournalEvent) -> None:
    """Add one event to ``contents``; values are converted before anything is changed, so a damaged
    event is left out whole."""
    key = event.key or ""
    try:
        if event.kind == EventKind.METRIC:
            point = MetricPoint(key, event.value, event.step, event.ts)
            contents.metrics.setdefault(key, []).append(point)
        elif event.kind == EventKind.PARAM:
            contents.params[key] = event.text or ""
        elif event.kind == EventKind.TAG:
            contents.tags[key] = event.text or ""
        elif event.kind == EventKind.START:
            tags = SessionStart.of(event).tags
            contents.sessions += 1
            contents.tags.update(tags)
        elif event.kind == EventKind.ARTIFACT:
            artifact = ArtifactPayload.of(event)
            contents.artifacts[key] = ArtifactRef(artifact.path, key, artifact.metadata)
        elif event.kind == EventKind.MEDIA:
            contents.media[(MediaPayload.of(event).kind, key)] += 1
    except (ValueError, TypeError, AttributeError, KeyError):  # a damaged record: not what Tracelet wrote
        contents.damaged += 1


def read_rejected(path: Path, limit: int = 1000) -> list[RejectedEvent]:
    """The events trackers refused for good (every backend's, with the reason), oldest first, at most ``limit``.

    Raises:
        JournalError: the journal cannot be read (the message says why).
    """
    try:
        with Journal(path) as journal:
            return journal.rejected(limit=limit)
    except sqlite3.DatabaseError as exc:
        raise JournalError(_reason(path, exc)) from exc


class JournalReader(StoreReader):
    """Reads runs from Tracelet journals (``journal:DIR``; default: the configured journal directory).

    An unreadable journal is listed (by its directory's names), and reading it raises :class:`JournalError`
    with the reason, so ``tracelet migrate`` reports it as a run that could not be copied.
    """

    kind = "journal"

    def __init__(self, location: str) -> None:
        super().__init__(location)
        if not location:
            from tracelet_core.settings import load_settings

            location = str(load_settings().journal_dir)
        self.root = Path(location)
        self._paths: dict[str, Path] = {}

    def list_runs(self, experiments: Collection[str] | None = None) -> list[SourceRun]:
        runs = []
        for run in journal_runs(self.root, experiments):
            self._paths[run.run_id] = run.path
            ended = run.ended if run.status != "RUNNING" else None
            runs.append(
                SourceRun(f"journal:{run.run_id}", run.run_id, run.experiment, run.name, {}, run.created, ended)
            )
        return runs

    def read_run(self, run: SourceRun, scratch: Path, *, artifacts: bool = True) -> RunRecord:
        path = self._path(run)
        summary = load_run(path)
        if summary.error is not None:
            raise JournalError(summary.error)
        contents = read_contents(path)
        run.tags = dict(contents.tags)
        status: RunStatus = next((s for s in TERMINAL_STATUSES if s == summary.status), "KILLED")
        record = RunRecord(run=run, params=contents.params, status=status)
        record.metrics = [point for points in contents.metrics.values() for point in points]
        if artifacts:
            for ref in contents.artifacts.values():
                if Path(ref.path).is_file():
                    record.artifacts.append(ref)
                else:
                    record.notes.append(f"artifact {ref.name!r}: its local copy {ref.path} is gone")
        if contents.media:
            record.notes.append(
                f"{sum(contents.media.values())} media items (images, histograms, texts) are not copied; "
                "`tracelet sync RUN --to BACKEND` delivers them"
            )
        if contents.damaged:
            record.notes.append(f"{contents.damaged} damaged event(s) in the journal cannot be read and are not copied")
        return record

    def metric_history(self, run: SourceRun, key: str) -> list[MetricPoint]:
        return read_contents(self._path(run), {key}).metrics.get(key, [])

    def _path(self, run: SourceRun) -> Path:
        if run.native_id not in self._paths:
            self.list_runs()
        return self._paths[run.native_id]

"""Tracelet's own journals as a store: what `tracelet runs`, `show` and `compare` read.

Everything here goes through :class:`~tracelet_core.pipeline.journal.Journal`'s public methods, one
page of events at a time, so a journal being written by a live run is read safely (SQLite WAL).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tracelet_core.errors import JournalError
from tracelet_core.events import TERMINAL_STATUSES, ArtifactRef, MetricPoint, RunStatus
from tracelet_core.pipeline.journal import Journal, JournalEvent, iter_journals
from tracelet_core.pipeline.report import DeliveryReport, read_report
from tracelet_core.readers import RunNotFoundError, RunRecord, SourceRun, StoreReader, find_run

__all__ = ["JournalReader", "JournalRun", "RunContents", "journal_runs", "read_contents", "resolve_run"]

_PAGE = 10_000


@dataclass(frozen=True)
class JournalRun:
    """One run in the local journals, as ``tracelet runs`` lists it.

    Attributes:
        path: the journal file.
        run_id: Tracelet's id of the run.
        experiment: the experiment name.
        name: the run name, if one was given.
        status: RUNNING, FINISHED, FAILED, KILLED, or INTERRUPTED (its trainer is gone and no end was
            journaled: no delivery process was left to record one).
        created: when the run first started (seconds since the epoch).
        ended: when it last ended, if it has.
        report: every backend's delivery state.
    """

    path: Path
    run_id: str
    experiment: str
    name: str | None
    status: str
    created: float | None
    ended: float | None
    report: DeliveryReport

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
    """

    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, list[MetricPoint]] = field(default_factory=dict)
    artifacts: dict[str, ArtifactRef] = field(default_factory=dict)
    media: Counter[tuple[str, str]] = field(default_factory=Counter)
    sessions: int = 0


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
    from tracelet_core.pipeline.sidecar import trainer_alive

    meta = journal.meta()
    if trainer_alive(meta.get("trainer_pid"), meta.get("trainer_create_time"), meta.get("trainer_host")):
        return "RUNNING"
    return "INTERRUPTED"


def load_run(path: Path) -> JournalRun:
    """Read one journal's summary.

    Raises:
        JournalError: the file is not a readable Tracelet journal.
    """
    with Journal(path) as journal:
        meta = journal.meta()
        run_id = str(meta.get("run_id") or path.parent.name)
        status = _status(journal, str(meta.get("status") or "RUNNING"))
        report = read_report(journal, run_id, status)
    return JournalRun(
        path=path,
        run_id=run_id,
        experiment=str(meta.get("experiment") or path.parent.parent.name),
        name=meta.get("run_name"),
        status=status,
        created=meta.get("created"),
        ended=meta.get("ended"),
        report=report,
    )


def journal_runs(journal_dir: str | Path, experiments: Collection[str] | None = None) -> list[JournalRun]:
    """Every readable run under ``journal_dir``, oldest first.

    Example:
        >>> import tempfile
        >>> journal_runs(tempfile.mkdtemp())
        []
    """
    runs = []
    for path in iter_journals(journal_dir):
        try:
            run = load_run(path)
        except JournalError:
            continue  # a journal being created right now, or a stray file: not a run to list
        if experiments is None or run.experiment in experiments:
            runs.append(run)
    return sorted(runs, key=lambda r: (r.created or 0.0, r.run_id))


def resolve_run(journal_dir: str | Path, ref: str) -> JournalRun:
    """The run ``ref`` names in ``journal_dir``: a run id, a unique id prefix, or a unique run name.

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

    Args:
        path: the journal file.
        metric_keys: keep only these metrics (all when None).
    """
    contents = RunContents()
    with Journal(path) as journal:
        if metric_keys is not None:  # only some metrics: let SQLite pick them out
            for key in metric_keys:
                points = [MetricPoint(key, e.value, e.step, e.ts) for e in journal.metric_history(key)]
                if points:
                    contents.metrics[key] = points
        for event in _events(journal, skip_metrics=metric_keys is not None):
            key = event.key or ""
            if event.kind == "metric":
                contents.metrics.setdefault(key, []).append(MetricPoint(key, event.value, event.step, event.ts))
            elif event.kind == "param":
                contents.params[key] = event.text or ""
            elif event.kind == "tag":
                contents.tags[key] = event.text or ""
            elif event.kind == "start":
                contents.sessions += 1
                contents.tags.update({str(k): str(v) for k, v in (event.payload().get("tags") or {}).items()})
            elif event.kind == "artifact":
                payload = event.payload()
                contents.artifacts[key] = ArtifactRef(payload["path"], key, dict(payload.get("metadata") or {}))
            elif event.kind == "media":
                contents.media[(str(event.payload().get("kind")), key)] += 1
    return contents


class JournalReader(StoreReader):
    """Reads runs from Tracelet journals (``journal:DIR``; default: the configured journal directory)."""

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
            runs.append(SourceRun(f"journal:{run.run_id}", run.run_id, run.experiment, run.name, {}, run.created))
        return runs

    def read_run(self, run: SourceRun, scratch: Path, *, artifacts: bool = True) -> RunRecord:
        path = self._path(run)
        contents = read_contents(path)
        summary = load_run(path)
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
        return record

    def metric_history(self, run: SourceRun, key: str) -> list[MetricPoint]:
        return read_contents(self._path(run), {key}).metrics.get(key, [])

    def _path(self, run: SourceRun) -> Path:
        if run.native_id not in self._paths:
            self.list_runs()
        return self._paths[run.native_id]

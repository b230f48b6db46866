"""Readers: what `tracelet migrate` and `tracelet compare` read runs from; each tracker's reader is in its folder.

A reader is the mirror image of a backend: a backend receives a run as batches, a reader gives a
stored run back as plain Tracelet data (:class:`RunRecord`: params, tags, every metric point with its
step and timestamp, artifacts as local files, final status) plus notes on what it could not carry.
Each store is named by a spec ``<kind>:<location>``:

=====================  ========================================================================
``mlflow:URI``         a tracking URI (``sqlite:///mlflow.db``, ``http://host:5000``); ``mlflow`` alone:
                       ``MLFLOW_TRACKING_URI`` or MLflow's default
``aim:REPO``           a local Aim repository (the directory holding ``.aim``)
``wandb-offline:DIR``  W&B run files (``run-<id>.wandb``) anywhere under DIR, e.g. ``WANDB_DIR``
``clearml-offline:DIR``  ClearML offline sessions under DIR (``CLEARML_CACHE_DIR``, its ``offline/``
                       folder, one session folder, or session zips)
``tensorboard:LOGDIR`` every directory under LOGDIR holding event files is a run (everything it logged)
``journal:DIR``        Tracelet's own journals (default: ``TRACELET_JOURNAL_DIR``)
=====================  ========================================================================

SDKs are imported when a reader is opened, never when this package is imported.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import ClassVar

from tracelet_core.errors import ConfigurationError, TraceletError
from tracelet_core.events import ArtifactRef, MediaItem, MetricPoint, RunStatus

__all__ = [
    "MIGRATED_FROM_TAG",
    "RunNotFoundError",
    "RunRecord",
    "SourceRun",
    "StoreReader",
    "find_run",
    "open_reader",
    "parse_spec",
    "reader_kinds",
]

MIGRATED_FROM_TAG = "tracelet.migrated_from"


class RunNotFoundError(TraceletError, LookupError):
    """A run reference matches no run, or more than one."""


@dataclass
class SourceRun:
    """One run of a store as a listing gives it (cheap: no metric histories).

    Attributes:
        key: the run's identity across stores, ``<kind>:<native id>`` (what ``tracelet.migrated_from`` holds).
        native_id: the store's own id of the run.
        experiment: experiment / project name.
        name: display name, if any.
        tags: the run's tags, without the store's own bookkeeping (each reader says which it drops).
        start_time: seconds since the epoch, when known.
        end_time: when the run ended, if it has and the store says so.
    """

    key: str
    native_id: str
    experiment: str
    name: str | None
    tags: dict[str, str] = field(default_factory=dict)
    start_time: float | None = None
    end_time: float | None = None


@dataclass
class RunRecord:
    """Everything a reader could read of one run.

    Attributes:
        run: the listing entry.
        params: flat (``/``-separated) param names and their values as strings.
        metrics: every metric point, in logged order per key.
        artifacts: files to copy, as local paths (downloaded into the reader's scratch directory).
        media: images (PNG files in the scratch directory), histograms and texts, for stores that hold them.
        status: how the run ended; a run still marked running in the source is reported KILLED.
        notes: what could not be carried, and why (one line each).
    """

    run: SourceRun
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[MetricPoint] = field(default_factory=list)
    artifacts: list[ArtifactRef] = field(default_factory=list)
    media: list[MediaItem] = field(default_factory=list)
    status: RunStatus = "FINISHED"
    notes: list[str] = field(default_factory=list)


class StoreReader(ABC):
    """Reads runs out of one store. Open one with :func:`open_reader`.

    Args:
        location: the part of the spec after ``<kind>:`` (may be empty: the store's default).
    """

    kind: ClassVar[str] = ""

    def __init__(self, location: str) -> None:
        self.location = location

    @abstractmethod
    def list_runs(self, experiments: Collection[str] | None = None) -> list[SourceRun]:
        """The store's runs (of ``experiments`` only, when given), oldest first where the store says."""

    @abstractmethod
    def read_run(self, run: SourceRun, scratch: Path, *, artifacts: bool = True) -> RunRecord:
        """Read one run whole; artifacts are downloaded under ``scratch`` (skipped when ``artifacts`` is False)."""

    def metric_history(self, run: SourceRun, key: str) -> list[MetricPoint]:
        """Every point of one metric; stores that can read one metric alone override this."""
        return [p for p in self.read_run(run, Path("."), artifacts=False).metrics if p.key == key]

    def metric_keys(self, run: SourceRun) -> list[str]:
        """The names of ``run``'s metrics, sorted; stores that can list them without reading points override this."""
        return sorted({p.key for p in self.read_run(run, Path("."), artifacts=False).metrics})

    def count(self, run: SourceRun) -> tuple[int, int]:
        """How many metric points and files (artifacts and media) copying ``run`` would write.

        Reads the run whole into a scratch directory; stores that can list their files without
        downloading them override this.
        """
        import tempfile

        with tempfile.TemporaryDirectory(prefix="tracelet-count-") as scratch:
            record = self.read_run(run, Path(scratch))
            return len(record.metrics), len(record.artifacts) + len(record.media)

    def describe(self) -> str:
        """The spec of this store, for messages."""
        return f"{self.kind}:{self.location}" if self.location else self.kind

    def close(self) -> None:  # noqa: B027 - optional hook, most readers hold nothing open
        """Release what the reader holds open."""

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``kind:location`` (the location may itself hold colons, as URIs do).

    Example:
        >>> parse_spec("mlflow:sqlite:///mlflow.db"), parse_spec("aim"), parse_spec("wandb-offline:./wandb")
        (('mlflow', 'sqlite:///mlflow.db'), ('aim', ''), ('wandb-offline', './wandb'))
    """
    kind, _, location = spec.partition(":")
    return kind.strip().lower(), location.strip()


def open_reader(spec: str) -> StoreReader:
    """The reader for a store spec such as ``mlflow:sqlite:///mlflow.db`` or ``aim:./repo``.

    Raises:
        ConfigurationError: the kind is unknown, or the store cannot be opened (the message says why).
    """
    from tracelet_core.trackers import tracker_for_kind

    kind, location = parse_spec(spec)
    tracker = tracker_for_kind(kind)
    if tracker is None or tracker.reader_kind != kind:
        sources = ", ".join(f"{k}:..." for k in reader_kinds())
        raise ConfigurationError(f"No reader for {spec!r}; sources are {sources}")
    return tracker.reader_class()(location)


def reader_kinds() -> list[str]:
    """The store spec kinds runs can be read from (``mlflow``, ``wandb-offline``, ``journal``...), sorted."""
    from tracelet_core.trackers import all_trackers

    return sorted(kind for tracker in all_trackers().values() if (kind := tracker.reader_kind))


def find_run(runs: Collection[SourceRun], ref: str) -> SourceRun:
    """The run ``ref`` names: an exact id, a unique id prefix, else a unique run name.

    Raises:
        RunNotFoundError: nothing matches, or several runs do (the message lists them).

    Example:
        >>> runs = [SourceRun("x:ab12", "ab12", "e", "first"), SourceRun("x:ab34", "ab34", "e", "second")]
        >>> find_run(runs, "ab1").native_id, find_run(runs, "second").native_id
        ('ab12', 'ab34')
    """
    exact = [r for r in runs if r.native_id == ref]
    if exact:
        return exact[0]
    for matches in ([r for r in runs if r.native_id.startswith(ref)], [r for r in runs if r.name == ref]):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            listed = ", ".join(f"{r.native_id} ({r.name or 'unnamed'})" for r in matches[:8])
            raise RunNotFoundError(f"{ref!r} matches {len(matches)} runs: {listed}; give more of the id")
    raise RunNotFoundError(f"No run matches {ref!r} among {len(runs)} runs")

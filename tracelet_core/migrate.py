"""Copy runs between stores: what ``tracelet migrate --from SOURCE --to DESTINATION`` does.

A :mod:`reader <tracelet_core.trackers.store>` gives each source run back as plain data, and the destination's
own :class:`~tracelet_core.trackers.base.Backend` writes it, exactly as a live run is delivered: open,
params, metric points in batches, files, then the tag ``tracelet.migrated_from=<kind>:<source id>``
and close with the source's status.

Idempotent: before copying, the destination is read back (where a reader exists for it) and every
run it holds is indexed by its own key and its ``tracelet.migrated_from`` tag. A source run whose key
is there (copied before, or the destination already is its home), or that is itself a copy of a run
that is there, is skipped. The provenance tag is written last, so a copy interrupted half way is
copied again on the next run (the partial copy is left, ended FAILED, and reported).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import uuid
import warnings
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tracelet_core.errors import ConfigurationError, TraceletWarning
from tracelet_core.events import Batch, RunInfo
from tracelet_core.settings import TraceletSettings
from tracelet_core.trackers import load_backend_class, tracker_for_kind
from tracelet_core.trackers.base import Backend
from tracelet_core.trackers.descriptor import load_object
from tracelet_core.trackers.store import MIGRATED_FROM_TAG, RunRecord, SourceRun, StoreReader, open_reader, parse_spec

__all__ = ["Destination", "MigrationObserver", "RunOutcome", "existing_copies", "migrate", "parse_destination"]

RUN_ID_TAG = "tracelet.run_id"
POINTS_PER_BATCH = 5_000


@dataclass(frozen=True)
class Destination:
    """Where ``tracelet migrate`` writes, resolved from a spec such as ``aim:./repo``.

    Attributes:
        spec: the spec as given.
        backend: the backend name that writes.
        options: that backend's options.
        reader_spec: the store to read back for earlier copies, or None when it cannot be read.
        env: environment variables the SDK must see (ClearML's cache directory).
    """

    spec: str
    backend: str
    options: dict[str, Any]
    reader_spec: str | None
    env: dict[str, str] = field(default_factory=dict)


def parse_destination(spec: str, settings: TraceletSettings) -> Destination:
    """Resolve ``mlflow[:URI]``, ``aim[:REPO]``, ``wandb``, ``wandb-offline:DIR``, ``clearml``,
    ``clearml-offline:DIR`` or any other tracker (``name[:LOCATION]``, or a ``module:Class`` backend);
    missing options come from ``settings``. Each tracker says how its location is read (its
    ``destination`` hook); without one, the location is ignored and the destination is read back with
    the tracker's own reader, if it has one.

    Raises:
        ConfigurationError: the spec names no tracker that receives runs.

    Example:
        >>> d = parse_destination("aim:/tmp/repo", TraceletSettings())
        >>> d.backend, d.options["repo"], d.reader_spec
        ('aim', '/tmp/repo', 'aim:/tmp/repo')
    """
    kind, location = parse_spec(spec)
    tracker = tracker_for_kind(kind)
    if tracker is None:  # a backend named by its import path
        load_backend_class(spec.strip())  # raises ConfigurationError naming the allowed backends
        return Destination(spec, spec.strip(), {}, None)
    tracker.backend_class()  # a store Tracelet only reads (journal, tensorboard) is no destination
    options = settings.backend_options(tracker.name)
    if tracker.destination is None:
        reader = f"{tracker.reader_kind}:{location}" if tracker.reader_kind else None
        return Destination(spec, tracker.name, options, reader)
    resolve = load_object(tracker.destination)
    options, reader, env = resolve(kind, location, options)
    return Destination(spec, tracker.name, options, reader, env)


@dataclass
class RunOutcome:
    """What happened to one source run.

    Attributes:
        run: the source run.
        action: copied, skipped (already in the destination; ``reason`` says how) or failed.
        destination_id: the destination's id of the copy.
        points: metric points copied (planned: that a copy would write).
        artifacts: files copied (planned: that a copy would write).
        reason: why it was skipped, or the error.
        notes: what could not be carried, and why.
    """

    run: SourceRun
    action: Literal["copied", "skipped", "failed", "planned"]
    destination_id: str | None = None
    points: int = 0
    artifacts: int = 0
    reason: str | None = None
    notes: list[str] = field(default_factory=list)


class MigrationObserver:
    """Hooks for showing progress; the default does nothing (the CLI draws progress bars)."""

    def planned(self, runs: list[SourceRun]) -> None:
        """The runs that will be looked at."""

    def run_started(self, run: SourceRun, points: int) -> None:
        """A run is being copied; it has ``points`` metric points."""

    def advanced(self, points: int) -> None:
        """``points`` more metric points were written."""

    def run_finished(self, outcome: RunOutcome) -> None:
        """A run was copied, skipped or failed."""


def provenance(key: str, backend_cls: type[Backend]) -> str:
    """The ``tracelet.migrated_from`` value for ``key`` on this backend: the key itself, or, where the
    backend's tags are too short for it (W&B: 64 characters for ``key:value``), a digest of it.

    Example:
        >>> from tracelet_core.trackers.wandb.backend import WandbBackend
        >>> provenance("mlflow:0123", WandbBackend), provenance("tensorboard:" + "x" * 60, WandbBackend)
        ('mlflow:0123', 'tensorboard:#8e70b482672446fe')
    """
    limit = backend_cls.capabilities.max_tag_length
    if limit is None or len(MIGRATED_FROM_TAG) + 1 + len(key) <= limit:
        return key
    kind = key.partition(":")[0]
    return f"{kind}:#{hashlib.sha1(key.encode()).hexdigest()[:16]}"


def existing_copies(destination: Destination) -> set[str] | None:
    """Keys of the runs the destination holds and of the runs they were copied from; None if it cannot be read."""
    if destination.reader_spec is None:
        return None
    with _environment(destination.env):
        try:
            reader = open_reader(destination.reader_spec)
        except ConfigurationError:
            return set()  # no store there yet (a new Aim repository, an empty folder)
        with reader:
            runs = reader.list_runs()
    keys = {run.key for run in runs}
    keys.update(run.tags[MIGRATED_FROM_TAG] for run in runs if MIGRATED_FROM_TAG in run.tags)
    return keys


def migrate(
    source: StoreReader,
    destination: Destination,
    *,
    experiments: Collection[str] | None = None,
    into: str | None = None,
    dry_run: bool = False,
    observer: MigrationObserver | None = None,
) -> list[RunOutcome]:
    """Copy every run of ``source`` (of ``experiments``, when given) that ``destination`` does not hold yet.

    Args:
        source: where the runs are read.
        destination: where they are written.
        experiments: only these source experiments.
        into: write every run into this experiment instead of its own.
        dry_run: only say what would be copied.
        observer: progress hooks.

    Returns:
        One outcome per source run, in the source's order.

    Raises:
        BackendUnavailableError: the destination's SDK is not installed.
    """
    observer = observer or MigrationObserver()
    backend_cls = load_backend_class(destination.backend)
    backend_cls.check_available()
    runs = source.list_runs(experiments)
    observer.planned(runs)
    known = existing_copies(destination) or set()
    outcomes = []
    for run in runs:
        own = provenance(run.key, backend_cls)
        origin = run.tags.get(MIGRATED_FROM_TAG)
        if run.key in known or own in known:
            outcome = RunOutcome(run, "skipped", reason=f"already copied ({MIGRATED_FROM_TAG}={own})")
        elif origin is not None and origin in known:
            outcome = RunOutcome(run, "skipped", reason=f"a copy of {origin}, which the destination holds")
        elif dry_run:
            outcome = _plan_one(source, run)
        else:
            outcome = _copy_one(source, run, destination, backend_cls, into, observer)
            if outcome.action == "copied":
                known.add(own)
        observer.run_finished(outcome)
        outcomes.append(outcome)
    return outcomes


def _plan_one(source: StoreReader, run: SourceRun) -> RunOutcome:
    """What copying ``run`` would write: its points and files, counted in the source."""
    try:
        points, files = source.count(run)
    except Exception as exc:  # one unreadable run must not stop the others
        return RunOutcome(run, "failed", reason=f"cannot read it: {type(exc).__name__}: {exc}")
    return RunOutcome(run, "planned", points=points, artifacts=files)


def _copy_one(
    source: StoreReader,
    run: SourceRun,
    destination: Destination,
    backend_cls: type[Backend],
    into: str | None,
    observer: MigrationObserver,
) -> RunOutcome:
    with tempfile.TemporaryDirectory(prefix="tracelet-migrate-") as scratch, _environment(destination.env):
        try:
            record = source.read_run(run, Path(scratch))
        except Exception as exc:  # one unreadable run must not stop the others
            return RunOutcome(run, "failed", reason=f"cannot read it: {type(exc).__name__}: {exc}")
        observer.run_started(run, len(record.metrics))
        backend_cls.prepare_delivery_process(destination.options)  # this command is Tracelet's own process
        backend = backend_cls(destination.options)
        outcome = RunOutcome(run, "failed", notes=list(record.notes))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TraceletWarning)
            try:
                outcome.destination_id = backend.open(_run_info(record, into, scratch), None)
                _write(backend, record, backend_cls, observer, outcome)
                outcome.action = "copied"
            except Exception as exc:
                partial = f" (a partial copy {outcome.destination_id} is left, ended FAILED)"
                outcome.reason = f"{type(exc).__name__}: {exc}" + (partial if outcome.destination_id else "")
                _close_quietly(backend)
        outcome.notes.extend(str(w.message) for w in caught if issubclass(w.category, TraceletWarning))
    return outcome


def _run_info(record: RunRecord, into: str | None, scratch: str) -> RunInfo:
    run = record.run
    tags = {k: v for k, v in run.tags.items() if k not in (MIGRATED_FROM_TAG, RUN_ID_TAG)}
    # The source's end: its own, where a reader knows it, else its last point (never before the start).
    times = [point.timestamp for point in record.metrics] + [item.timestamp for item in record.media]
    ended = getattr(run, "end_time", None) or max(times, default=None)
    started = run.start_time or min(times, default=None) or time.time()
    return RunInfo(
        run_id=run.tags.get(RUN_ID_TAG) or uuid.uuid4().hex,
        experiment=into or run.experiment,
        run_name=run.name,
        tags=tags,
        start_time=started,
        run_dir=scratch,
        end_time=None if ended is None else max(ended, started),
    )


def _write(
    backend: Backend, record: RunRecord, backend_cls: type[Backend], observer: MigrationObserver, outcome: RunOutcome
) -> None:
    if record.params:
        backend.deliver_batch(Batch(params=dict(record.params)))
    for start in range(0, len(record.metrics), POINTS_PER_BATCH):
        chunk = record.metrics[start : start + POINTS_PER_BATCH]
        backend.deliver_batch(Batch(metrics=list(chunk)))
        outcome.points += len(chunk)
        observer.advanced(len(chunk))
    for artifact in record.artifacts:
        backend.deliver_artifact(artifact)
        outcome.artifacts += 1
    for item in record.media:
        backend.deliver_media(item)
        outcome.artifacts += 1
    # Last: a copy carries its provenance only once it is whole (see the module docstring).
    backend.deliver_batch(Batch(tags={MIGRATED_FROM_TAG: provenance(record.run.key, backend_cls)}))
    backend.close(record.status)


def _close_quietly(backend: Backend) -> None:
    try:
        backend.close("FAILED")
    except Exception:  # the copy already failed; its error is the one to report
        return


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

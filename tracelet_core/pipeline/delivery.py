"""Delivery: one ordered worker per backend that tails the journal and acknowledges what it delivered.

A worker turns consecutive metric/param/tag events into one :class:`~tracelet_core.events.Batch`
and every other event (start, artifact, media, finish) into one call, delivers them in journal
order, and after each success records the last delivered sequence number in the journal. A failed
call is retried with exponential backoff (capped at ``max_backoff``) until it succeeds or the
service is told to give up; nothing is skipped, so per-key order holds end to end.

The same :class:`DeliveryService` runs inside the delivery process (the default) and, with
``TRACELET_DELIVERY=thread``, in the training process.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracelet_core.backends import load_backend_class
from tracelet_core.backends.base import Backend
from tracelet_core.errors import BackendUnavailableError, ConfigurationError, warn_once
from tracelet_core.events import ArtifactRef, Batch, MediaItem, MetricPoint, RunInfo
from tracelet_core.pipeline.journal import Journal, JournalEvent

__all__ = ["BackendWorker", "DeliveryService", "delivery_lock"]

log = logging.getLogger("tracelet.delivery")

READ_LIMIT = 5_000
POLL_INTERVAL = 0.05
# Metrics, params and tags wait until this many have accumulated or the first of them has waited
# this long: trackers' per-call costs (a transaction, a request) then spread over ~1000 points
# instead of a few steps' worth, which lowers the CPU that delivery takes while training runs.
# Any other event (start, artifact, media, finish) is delivered with what precedes it at once.
BATCH_EVENTS = 1_000
BATCH_DELAY = 1.0


@dataclass(frozen=True)
class _Unit:
    """Events delivered by one backend call, and the sequence number to acknowledge after it."""

    kind: str
    last_seq: int
    events: tuple[JournalEvent, ...]


def _units(events: list[JournalEvent]) -> Iterator[_Unit]:
    """Group consecutive metric/param/tag events; every other event is a unit of its own."""
    pending: list[JournalEvent] = []
    for event in events:
        if event.kind in ("metric", "param", "tag"):
            pending.append(event)
            continue
        if pending:
            yield _Unit("batch", pending[-1].seq, tuple(pending))
            pending = []
        yield _Unit(event.kind, event.seq, (event,))
    if pending:
        yield _Unit("batch", pending[-1].seq, tuple(pending))


def _worth_waiting(events: list[JournalEvent], waiting_since: float) -> bool:
    """True while only a small, young batch of metrics/params/tags is pending (see ``BATCH_EVENTS``)."""
    if len(events) >= BATCH_EVENTS or time.monotonic() - waiting_since >= BATCH_DELAY:
        return False
    return all(event.kind in ("metric", "param", "tag") for event in events)


def _batch(events: tuple[JournalEvent, ...]) -> Batch:
    batch = Batch()
    for event in events:
        key = event.key or ""
        if event.kind == "metric":
            batch.metrics.append(MetricPoint(key, event.value, event.step, event.ts))
        elif event.kind == "param":
            batch.params[key] = event.text or ""
        else:
            batch.tags[key] = event.text or ""
    return batch


class BackendWorker(threading.Thread):
    """Delivers one run's journal to one backend, in order, with retry; see the module docstring.

    Args:
        backend_name: the backend's registered name (also its row in the journal's deliveries).
        journal_path: the run's journal.
        options: the backend's options section.
        give_up: set to make the worker stop retrying and leave what is left in the journal.
        max_backoff: longest pause between two attempts, in seconds.
        backend_path: ``module:Class`` of a backend registered by name in the training process.
        keep_files: keep the run directory's copy of a file after every backend has it.
    """

    def __init__(
        self,
        backend_name: str,
        journal_path: Path,
        options: dict[str, Any],
        give_up: threading.Event,
        max_backoff: float = 30.0,
        backend_path: str | None = None,
        keep_files: bool = False,
    ) -> None:
        super().__init__(name=f"tracelet-delivery-{backend_name}", daemon=True)
        self._keep_files = keep_files
        self.backend_name = backend_name
        self._backend_path = backend_path or backend_name
        self._journal_path = journal_path
        self._options = options
        self._give_up = give_up
        self._max_backoff = max_backoff
        self._backend: Backend | None = None
        self._unavailable = False
        self.done = threading.Event()

    def run(self) -> None:
        journal = Journal(self._journal_path)
        try:
            self._deliver_all(journal)
        except Exception:
            log.exception("%s: delivery stopped by an unexpected error", self.backend_name)
            journal.update_delivery(self.backend_name, state="gave_up", error="unexpected error, see delivery log")
        finally:
            journal.close()
            self.done.set()

    def _deliver_all(self, journal: Journal) -> None:
        state = journal.deliveries()[self.backend_name]
        if state.state == "unavailable":
            return
        acked, native_id = state.acked_seq, state.native_id
        try:
            backend_cls = load_backend_class(self._backend_path)
            backend_cls.check_available()
        except (BackendUnavailableError, ConfigurationError) as exc:
            log.error("%s: %s", self.backend_name, exc)
            journal.update_delivery(self.backend_name, state="unavailable", error=str(exc))
            return
        waiting_since: float | None = None
        while not self._give_up.is_set():
            events = journal.read(acked, READ_LIMIT)
            if not events:
                if self._backend is None and acked and journal.last_event("finish") is not None:
                    return  # the last session ended and is fully delivered
                self._give_up.wait(POLL_INTERVAL)
                continue
            if waiting_since is None:
                waiting_since = time.monotonic()
            if _worth_waiting(events, waiting_since):
                self._give_up.wait(POLL_INTERVAL)
                continue
            waiting_since = None
            for unit in _units(events):
                ok = self._retrying(journal, functools.partial(self._deliver, unit, backend_cls, native_id))
                if not ok:
                    if not self._unavailable:
                        journal.update_delivery(self.backend_name, state="gave_up")
                    return
                acked = unit.last_seq
                if unit.kind == "start" and self._backend is not None:
                    native_id = journal.deliveries()[self.backend_name].native_id
                state_name = "closed" if unit.kind == "finish" else "open"
                journal.update_delivery(self.backend_name, acked_seq=acked, state=state_name, error=None, failures=0)
                if unit.kind == "artifact" and not self._keep_files:
                    self._release_file(journal, unit)
            if self._backend is None and acked == journal.last_seq() and journal.last_event("finish") is not None:
                return

    def _deliver(self, unit: _Unit, backend_cls: type[Backend], native_id: str | None) -> None:
        event = unit.events[0]
        if unit.kind == "start":
            self._open(event, backend_cls, native_id)
            return
        if self._backend is None:
            # Delivery resumes mid-session (a restarted delivery process, `tracelet sync`):
            # re-open the native run from the session's start event.
            with Journal(self._journal_path) as journal:
                start = journal.last_event("start", before=event.seq)
            if start is None:
                raise RuntimeError("the journal has events before the run's start event")
            self._open(start, backend_cls, native_id)
        backend = self._backend
        assert backend is not None
        if unit.kind == "batch":
            backend.write(_batch(unit.events))
        elif unit.kind == "artifact":
            payload = event.payload()
            if not Path(payload["path"]).is_file():  # retrying cannot bring it back
                warn_once(
                    f"artifact-gone:{payload['path']}",
                    f"The file for artifact {event.key!r} is gone ({payload['path']}); it is not uploaded.",
                )
                return
            backend.log_artifact(ArtifactRef(payload["path"], event.key or "", payload.get("metadata") or {}))
        elif unit.kind == "media":
            payload = event.payload()
            backend.log_media(
                MediaItem(
                    payload["kind"],
                    event.key or "",
                    event.step,
                    event.ts,
                    payload.get("path"),
                    payload["data"],
                )
            )
        elif unit.kind == "finish":
            backend.close(event.text or "FINISHED")  # type: ignore[arg-type]
            self._backend = None
        else:
            log.warning("%s: skipping unknown journal event kind %r", self.backend_name, unit.kind)

    def _release_file(self, journal: Journal, unit: _Unit) -> None:
        """Delete the run directory's copy of an uploaded file once every backend of the run has it.

        Only the per-call copies ``files/<id>/<name>`` that ``Run.log_artifact`` makes; a backend that
        has not taken the file yet (slow, unreachable, SDK missing) keeps it on disk.
        """
        states = journal.deliveries()
        if not states or any(state.acked_seq < unit.last_seq for state in states.values()):
            return
        path = Path(unit.events[0].payload()["path"])
        if path.parent.parent != self._journal_path.parent / "files":
            return
        try:
            path.unlink(missing_ok=True)
            path.parent.rmdir()
        except OSError as exc:  # another backend's worker got there first, or the directory is not empty
            log.debug("%s: kept %s: %s", self.backend_name, path, exc)

    def _open(self, event: JournalEvent, backend_cls: type[Backend], native_id: str | None) -> None:
        info = event.payload()
        run = RunInfo(
            run_id=info["run_id"],
            experiment=info["experiment"],
            run_name=info.get("run_name"),
            tags=dict(info.get("tags") or {}),
            start_time=float(info.get("start_time") or event.ts),
            run_dir=info["run_dir"],
        )
        backend = backend_cls(self._options)
        new_id = backend.open(run, native_id)
        self._backend = backend
        journal = Journal(self._journal_path)
        try:
            journal.update_delivery(self.backend_name, native_id=new_id, location=backend.location(), state="open")
        finally:
            journal.close()
        log.debug("%s: run %s open as %s (%s)", self.backend_name, run.run_id, new_id, backend.location())

    def _retrying(self, journal: Journal, call: Callable[[], None]) -> bool:
        failures = 0
        while not self._give_up.is_set():
            try:
                call()
                return True
            except BackendUnavailableError as exc:
                journal.update_delivery(self.backend_name, state="unavailable", error=str(exc))
                log.error("%s: %s", self.backend_name, exc)
                self._unavailable = True
                return False
            except Exception as exc:
                failures += 1
                backoff = min(self._max_backoff, 0.25 * 2 ** min(failures - 1, 16)) * random.uniform(0.8, 1.2)
                log.warning(
                    "%s: delivery failed (attempt %d, next in %.1fs): %s: %s",
                    self.backend_name,
                    failures,
                    backoff,
                    type(exc).__name__,
                    exc,
                )
                journal.update_delivery(
                    self.backend_name,
                    state="retrying",
                    error=f"{type(exc).__name__}: {exc}"[:2000],
                    failures=failures,
                )
                self._give_up.wait(backoff)
        return False


class DeliveryService:
    """Runs one :class:`BackendWorker` per backend of a run until each has delivered the run's end.

    Args:
        journal_path: the run's journal.
        backends: backend names; default: those recorded in the journal's metadata.
        options: backend options by name; default: those recorded in the journal's metadata.
        max_backoff: longest pause between two retries.
    """

    def __init__(
        self,
        journal_path: Path,
        backends: list[str] | None = None,
        options: dict[str, dict[str, Any]] | None = None,
        max_backoff: float | None = None,
    ) -> None:
        self.journal_path = Path(journal_path)
        with Journal(self.journal_path) as journal:
            meta = journal.meta()
            self.backends = list(backends if backends is not None else meta.get("backends", []))
            journal.register_backends(self.backends)
        all_options = options if options is not None else meta.get("backend_options", {})
        self.give_up_event = threading.Event()
        backoff = max_backoff if max_backoff is not None else float(meta.get("max_retry_backoff", 30.0))
        paths = dict(meta.get("backend_paths") or {})
        keep = bool(meta.get("keep_uploaded_files", True))  # a journal from before the setting: keep
        self.workers = [
            BackendWorker(
                name,
                self.journal_path,
                dict(all_options.get(name, {})),
                self.give_up_event,
                backoff,
                paths.get(name),
                keep,
            )
            for name in self.backends
        ]

    def start(self) -> DeliveryService:
        """Start every worker; returns self."""
        for worker in self.workers:
            worker.start()
        return self

    def all_done(self) -> bool:
        """True once every worker has finished (delivered, unavailable or given up)."""
        return all(worker.done.is_set() for worker in self.workers)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every worker is done or ``timeout`` seconds pass; True if all are done."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in self.workers:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not worker.done.wait(remaining):
                return False
        return True

    def give_up(self) -> None:
        """Tell every worker to stop retrying; undelivered events stay in the journal."""
        self.give_up_event.set()


class delivery_lock:
    """An exclusive lock on a run's delivery, so two processes never deliver the same run at once.

    Args:
        run_dir: the run's directory (holds ``delivery.lock``).
        blocking: wait for the lock (True) or fail at once.
    """

    def __init__(self, run_dir: Path, blocking: bool = True) -> None:
        self._path = Path(run_dir) / "delivery.lock"
        self._blocking = blocking
        self._file: Any = None

    def acquire(self) -> bool:
        """Take the lock; False when not blocking and another process holds it."""
        self._file = open(self._path, "a+")  # noqa: SIM115 - held for the life of the lock
        flags = fcntl.LOCK_EX | (0 if self._blocking else fcntl.LOCK_NB)
        try:
            fcntl.flock(self._file.fileno(), flags)
        except BlockingIOError:
            self._file.close()
            self._file = None
            return False
        return True

    def release(self) -> None:
        """Release the lock."""
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> delivery_lock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

"""Delivery: one ordered worker per backend that tails the journal and acknowledges what it delivered.

A worker turns consecutive metric/param/tag events into one :class:`~tracelet_core.events.Batch`
and every other event (start, artifact, media, finish) into one call, delivers them in journal
order, and after each success records the last delivered sequence number in the journal, so
per-key order holds end to end. A failed call is classified by its backend
(:meth:`~tracelet_core.trackers.base.Backend.classify_error`):

* transient (network, timeout, a locked store): retried with exponential backoff (capped at
  ``max_backoff``) until it succeeds or the service is told to give up;
* permanent (the tracker refuses the content): a batch is split in halves until the refused events
  are found; those are set aside in the journal with the reason (``tracelet show`` lists them) and
  delivery goes on, so one bad event never holds back the rest;
* configuration (no API key, no permission; any refusal of the run's opening): this backend stops
  and the user is told at once; the events wait in the journal for ``tracelet sync``.

A worker whose journal cannot be written for a while (a full disk) waits and carries on from its
last recorded acknowledgement; re-sending what it had delivered is harmless (see backends/base.py).
A journal deleted and recreated under a live run (see :mod:`.writer`) is followed: the worker goes
on with the new file, into the same tracker run.

The same :class:`DeliveryService` runs inside the delivery process (the default) and, with
``TRACELET_DELIVERY=thread``, in the training process.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from tracelet_core.errors import BackendUnavailableError, ConfigurationError, ErrorKind, warn_once
from tracelet_core.events import ArtifactRef, MediaItem
from tracelet_core.locks import delivery_lock
from tracelet_core.pipeline.contract import (
    ArtifactPayload,
    DeliveryState,
    EventKind,
    JournalEvent,
    MediaPayload,
    SessionStart,
)
from tracelet_core.pipeline.credentials import restore_credentials, strip_credentials
from tracelet_core.pipeline.files import file_identity, release_staged_file
from tracelet_core.pipeline.journal import Journal
from tracelet_core.pipeline.units import BATCH, DeliveryUnit, halves, retry_backoff, to_batch, units, worth_waiting
from tracelet_core.trackers import load_backend_class
from tracelet_core.trackers.base import Backend, classify_common_error

__all__ = ["BackendWorker", "DeliveryService", "delivery_lock"]

log = logging.getLogger("tracelet.delivery")

READ_LIMIT = 5_000
POLL_INTERVAL = 0.05


def _reason(exc: BaseException) -> str:
    """An error as the journal and the user see it: type, message, no credentials, bounded."""
    return strip_credentials(f"{type(exc).__name__}: {exc}")[:2000]


class _JournalReplaced(Exception):
    """The journal file was deleted or replaced while a worker read it: open the new one."""


class BackendWorker(threading.Thread):
    """Delivers one run's journal to one backend, in order; see the module docstring.

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
        self._opening: Backend | None = None  # the instance whose open() is under way (to classify its errors)
        self._open_for: int | None = None  # seq of the start event the open backend belongs to
        self._tracker_id: str | None = None  # the native run id (not `_native_id`: threading.Thread has one)
        self._recorded_id: str | None = None  # the native id the journal holds
        self.done = threading.Event()
        self.opened = threading.Event()  # its tracker's run is open (or the worker has stopped)

    def run(self) -> None:
        failures = 0
        try:
            while not self._give_up.is_set():
                try:
                    with Journal(self._journal_path) as journal:
                        self._deliver_all(journal)
                    return
                except _JournalReplaced:
                    log.info("%s: the journal was recreated; delivery goes on with the new one", self.backend_name)
                except Exception as exc:
                    # The journal cannot be read or written right now (a full disk, a lock held too long),
                    # or a bug: wait and carry on from the last acknowledgement recorded.
                    failures += 1
                    backoff = retry_backoff(failures, self._max_backoff)
                    log.exception("%s: delivery interrupted (next attempt in %.1fs)", self.backend_name, backoff)
                    self._record_quietly(DeliveryState.RETRYING, _reason(exc), failures)
                    self._give_up.wait(backoff)
        finally:
            self.opened.set()
            self.done.set()

    def _deliver_all(self, journal: Journal) -> None:
        state = journal.deliveries()[self.backend_name]
        if state.state in (DeliveryState.UNAVAILABLE, DeliveryState.MISCONFIGURED):
            return
        acked = state.acked_seq
        self._tracker_id = self._tracker_id or state.native_id
        self._recorded_id = state.native_id
        identity = file_identity(self._journal_path)
        try:
            backend_cls = load_backend_class(self._backend_path)
            backend_cls.check_available()
        except (BackendUnavailableError, ConfigurationError) as exc:
            log.error("%s: %s", self.backend_name, exc)
            journal.update_delivery(self.backend_name, state=DeliveryState.UNAVAILABLE, error=str(exc))
            return
        waiting_since: float | None = None
        while not self._give_up.is_set():
            events = journal.read(acked, READ_LIMIT)
            if not events:
                if self._backend is None and acked and journal.last_event(EventKind.FINISH) is not None:
                    return  # the last session ended and is fully delivered
                if file_identity(self._journal_path) != identity:
                    raise _JournalReplaced
                self._give_up.wait(POLL_INTERVAL)
                continue
            if waiting_since is None:
                waiting_since = time.monotonic()
            if worth_waiting(events, waiting_since):
                self._give_up.wait(POLL_INTERVAL)
                continue
            waiting_since = None
            for unit in units(events):
                if not self._deliver_unit(journal, unit, backend_cls):
                    return
                acked = unit.last_seq
                if unit.kind == EventKind.ARTIFACT and not self._keep_files:
                    self._release_file(journal, unit)
            if self._backend is None and acked == journal.last_seq() and journal.last_event(EventKind.FINISH):
                return

    def _deliver_unit(self, journal: Journal, unit: DeliveryUnit, backend_cls: type[Backend]) -> bool:
        """Deliver one unit (retrying, splitting, or setting events aside); False when this worker must stop."""
        failures = 0
        while not self._give_up.is_set():
            try:
                self._deliver(unit, backend_cls)
            except BackendUnavailableError as exc:
                log.error("%s: %s", self.backend_name, exc)
                journal.update_delivery(self.backend_name, state=DeliveryState.UNAVAILABLE, error=str(exc))
                return False
            except Exception as exc:
                kind = self._classify(exc, unit.kind)
                if kind is ErrorKind.TRANSIENT:
                    failures += 1
                    self._retry_later(journal, unit, exc, failures)
                    continue
                if kind is ErrorKind.CONFIGURATION or unit.kind == EventKind.START:
                    self._stop_misconfigured(journal, exc)
                    return False
                if unit.kind == BATCH and len(unit.events) > 1:
                    return all(self._deliver_unit(journal, half, backend_cls) for half in halves(unit))
                self._reject(journal, unit, exc)
                return True
            self._acknowledge(journal, unit)
            return True
        journal.update_delivery(self.backend_name, state=DeliveryState.GAVE_UP)
        return False

    def _acknowledge(self, journal: Journal, unit: DeliveryUnit) -> None:
        """Record ``unit`` as delivered, with the tracker's run id the first time it is known."""
        state = DeliveryState.CLOSED if unit.kind == EventKind.FINISH else DeliveryState.OPEN
        if self._tracker_id == self._recorded_id or self._backend is None:
            journal.update_delivery(self.backend_name, acked_seq=unit.last_seq, state=state, error=None, failures=0)
            return
        journal.update_delivery(
            self.backend_name,
            acked_seq=unit.last_seq,
            state=state,
            error=None,
            failures=0,
            native_id=self._tracker_id,
            location=self._location(),
        )
        self._recorded_id = self._tracker_id

    def _classify(self, exc: Exception, during: str) -> ErrorKind:
        backend = self._backend or self._opening
        try:
            return backend.classify_error(exc, during) if backend is not None else classify_common_error(exc)
        except Exception:  # a classifier must never stop delivery
            log.exception("%s: could not classify %r", self.backend_name, exc)
            return classify_common_error(exc)

    def _retry_later(self, journal: Journal, unit: DeliveryUnit, exc: Exception, failures: int) -> None:
        backoff = retry_backoff(failures, self._max_backoff)
        reason = _reason(exc)
        log.warning("%s: delivery failed (attempt %d, next in %.1fs): %s", self.backend_name, failures, backoff, reason)
        if unit.kind == EventKind.START and failures == 1:
            warn_once(
                f"unreachable:{self.backend_name}",
                f"{self.backend_name} cannot be reached yet ({reason}); Tracelet keeps retrying in the background, "
                "and every event waits in the run's journal meanwhile.",
            )
        journal.update_delivery(self.backend_name, state=DeliveryState.RETRYING, error=reason, failures=failures)
        self._give_up.wait(backoff)

    def _stop_misconfigured(self, journal: Journal, exc: Exception) -> None:
        reason = _reason(exc)
        log.error("%s: cannot be used as configured: %s", self.backend_name, reason)
        warn_once(
            f"misconfigured:{self.backend_name}",
            f"{self.backend_name} cannot be used as configured ({reason}). Nothing more is sent to it in this run; "
            "every event stays in the run's journal: fix the setting, then run `tracelet sync`.",
        )
        journal.update_delivery(self.backend_name, state=DeliveryState.MISCONFIGURED, error=reason)

    def _reject(self, journal: Journal, unit: DeliveryUnit, exc: Exception) -> None:
        """Set the unit's events aside for good and move past them."""
        reason = _reason(exc)
        event = unit.events[0]
        log.error(
            "%s: refused %s %r (seq %d) for good: %s", self.backend_name, event.kind, event.key, event.seq, reason
        )
        warn_once(
            f"rejected:{self.backend_name}:{type(exc).__name__}",
            f"{self.backend_name} refused the {event.kind} {event.key!r} for good ({reason}); it stays in the run's "
            "journal (`tracelet show` lists what was refused) and delivery goes on with the rest.",
        )
        if unit.kind == EventKind.FINISH:
            self._backend = None
        journal.reject(self.backend_name, [e.seq for e in unit.events], reason, acked_seq=unit.last_seq)

    def _record_quietly(self, state: DeliveryState, error: str, failures: int) -> None:
        try:
            with Journal(self._journal_path) as journal:
                journal.update_delivery(self.backend_name, state=state, error=error, failures=failures)
        except Exception as exc:  # the journal is what failed; the delivery log has the story
            log.debug("%s: could not record the delivery state: %s", self.backend_name, exc)

    def _location(self) -> str | None:
        location = self._backend.location() if self._backend is not None else None
        return strip_credentials(location) if location else None

    def _deliver(self, unit: DeliveryUnit, backend_cls: type[Backend]) -> None:
        event = unit.events[0]
        if unit.kind == EventKind.START:
            if self._backend is None or self._open_for != event.seq:
                self._open(event, backend_cls)
            return
        if self._backend is None:
            # Delivery resumes mid-session (a restarted delivery process, `tracelet sync`):
            # re-open the native run from the session's start event.
            with Journal(self._journal_path) as journal:
                start = journal.last_event(EventKind.START, before=event.seq)
            if start is None:
                raise RuntimeError("the journal has events before the run's start event")
            self._open(start, backend_cls)
        backend = self._backend
        assert backend is not None
        if unit.kind == BATCH:
            backend.deliver_batch(to_batch(unit.events))
        elif unit.kind == EventKind.ARTIFACT:
            artifact = ArtifactPayload.of(event)
            if not Path(artifact.path).is_file():  # retrying cannot bring it back
                warn_once(
                    f"artifact-gone:{artifact.path}",
                    f"The file for artifact {event.key!r} is gone ({artifact.path}); it is not uploaded.",
                )
                return
            backend.deliver_artifact(ArtifactRef(artifact.path, event.key or "", artifact.metadata))
        elif unit.kind == EventKind.MEDIA:
            media = MediaPayload.of(event)
            backend.deliver_media(MediaItem(media.kind, event.key or "", event.step, event.ts, media.path, media.data))
        elif unit.kind == EventKind.FINISH:
            backend.close(event.text or "FINISHED")  # type: ignore[arg-type]
            self._backend = None
        else:
            log.warning("%s: skipping unknown journal event kind %r", self.backend_name, unit.kind)

    def _release_file(self, journal: Journal, unit: DeliveryUnit) -> None:
        """Delete the run directory's copy of an uploaded file once every backend of the run has it.

        Only the per-call copies ``files/<id>/<name>`` that ``Run.log_artifact`` makes; a backend that
        has not taken the file yet (slow, unreachable, SDK missing) keeps it on disk.
        """
        states = journal.deliveries()
        if states and all(state.acked_seq >= unit.last_seq for state in states.values()):
            release_staged_file(self._journal_path.parent, Path(ArtifactPayload.of(unit.events[0]).path))

    def _open(self, event: JournalEvent, backend_cls: type[Backend]) -> None:
        """Open (or re-open) the native run of the session that ``event`` starts.

        The native id is kept in memory as soon as the tracker returns it, so a retry after a failure
        to record it (or after a later failure) continues that run instead of creating a second one.
        """
        run = SessionStart.of(event).run_info()
        self._backend = None
        # A retry of a failed open goes to the same instance: it may hold what the tracker already made.
        backend = self._opening = self._opening or backend_cls(self._options)
        self._tracker_id = backend.open(run, self._tracker_id)
        self._backend, self._opening, self._open_for = backend, None, event.seq
        self.opened.set()
        log.debug("%s: run %s open as %s (%s)", self.backend_name, run.run_id, self._tracker_id, self._location())


class DeliveryService:
    """Runs one :class:`BackendWorker` per backend of a run until each has delivered the run's end.

    Args:
        journal_path: the run's journal.
        backends: backend names; default: those recorded in the journal's metadata.
        options: backend options by name, over those recorded in the journal's metadata (which have
            their credentials put back from the environment: see :mod:`.credentials`).
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
            self.backends = list(backends if backends is not None else meta.backends)
            journal.register_backends(self.backends)
        all_options = restore_credentials(meta.backend_options) | dict(options or {})
        self.give_up_event = threading.Event()
        backoff = max_backoff if max_backoff is not None else meta.max_retry_backoff
        self.workers = [
            BackendWorker(
                name,
                self.journal_path,
                dict(all_options.get(name, {})),
                self.give_up_event,
                backoff,
                meta.backend_paths.get(name),
                meta.keep_uploaded_files,
            )
            for name in self.backends
        ]

    def start(self) -> DeliveryService:
        """Start every worker; returns self."""
        for worker in self.workers:
            worker.start()
        return self

    def all_opened(self) -> bool:
        """True once every worker has opened its tracker's run, or stopped."""
        return all(worker.opened.is_set() for worker in self.workers)

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

"""Opening and ending one session of a run: what ``Run.start()`` and ``Run.finish()`` do under the hood.

A session (a resumed run has several) takes the run's lock, so that no second live process records
into the run; journals the run's metadata and the session's start; starts the journal writer and the
delivery (see :mod:`.session`). Ending it journals the end, stops the writer, waits for the trackers
and frees the run for the next session.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path

import psutil

from tracelet_core.destinations import resolve_sdk_variables
from tracelet_core.errors import JournalError, RunInUseError, TraceletError, TrackerConfigurationError
from tracelet_core.locks import RUN_LOCK, ProcessLock, run_in_use, run_lock
from tracelet_core.pipeline.contract import EventKind, SessionStart
from tracelet_core.pipeline.credentials import split_credentials
from tracelet_core.pipeline.files import JOURNAL_FILENAME, make_private_dir
from tracelet_core.pipeline.journal import Journal
from tracelet_core.pipeline.opening import wait_for_trackers
from tracelet_core.pipeline.queue import FINISH, EventQueue
from tracelet_core.pipeline.report import DeliveryReport
from tracelet_core.pipeline.session import DeliverySession, usable_backends
from tracelet_core.pipeline.standby import prelaunch
from tracelet_core.pipeline.writer import JournalWriter
from tracelet_core.settings import TraceletSettings
from tracelet_core.trackers import registered_paths

__all__ = ["Recording", "check_run_free", "prelaunch_delivery", "run_directory"]

_UNSAFE_PATH = re.compile(r"[^\w.-]+")
# What a failing journal raises when the session opens: reported as the journal's failure.
_STORAGE_ERRORS = (TraceletError, sqlite3.Error, OSError)


def run_directory(settings: TraceletSettings, run_id: str) -> Path:
    """The local directory of a run: ``<journal_dir>/<experiment>/<run id>``, or where that run already is."""
    root = Path(settings.journal_dir).resolve()
    existing = next(root.glob(f"*/{run_id}/{JOURNAL_FILENAME}"), None)
    if existing is not None:
        return existing.parent
    return root / (_UNSAFE_PATH.sub("_", settings.experiment).strip("._") or "default") / run_id


def check_run_free(run_id: str, run_dir: Path) -> None:
    """Raise :class:`RunInUseError` if a live process records into the run in ``run_dir``; creates nothing."""
    if run_in_use(run_dir):
        raise _in_use(run_id, run_dir)


def _in_use(run_id: str, run_dir: Path) -> RunInUseError:
    return RunInUseError(
        f"Run {run_id} is being recorded by another live process (it holds {run_dir / RUN_LOCK}); two "
        "processes writing one run would merge their points. Start a new run, or continue this one once that "
        "process has ended."
    )


class Recording:
    """One open session of a run: its queue, journal writer, delivery and lock.

    Attributes:
        queue: where the run's log calls put their items (the hot path).
        writer: the thread that journals them.
        backends: the session's backends (those configured whose SDK is installed).
    """

    def __init__(
        self,
        queue: EventQueue,
        writer: JournalWriter,
        delivery: DeliverySession,
        lock: ProcessLock,
        backends: list[str],
    ) -> None:
        self.queue = queue
        self.writer = writer
        self.backends = backends
        self._delivery = delivery
        self._lock = lock

    @classmethod
    def open(
        cls, settings: TraceletSettings, run_id: str, run_dir: Path, native_ids: Mapping[str, str], *, resumed: bool
    ) -> Recording:
        """Open a session of run ``run_id``: lock it, journal its start, start the writer and the delivery.

        Args:
            settings: the run's settings.
            run_id: the run.
            run_dir: its directory (see :func:`run_directory`).
            native_ids: each backend's own run id to continue when the journal does not know it.
            resumed: the run's journal existed before (``created`` is kept).

        Raises:
            RunInUseError: another live process records into this run.
            JournalError: the journal cannot be created or written (e.g. a full disk).
        """
        make_private_dir(run_dir)
        lock = run_lock(run_dir)
        if not lock.acquire():
            raise _in_use(run_id, run_dir)
        journal_path = run_dir / JOURNAL_FILENAME
        try:
            backends, options = _backends_and_options(settings)
            start_seq = _journal_start(settings, run_id, journal_path, backends, options, native_ids, resumed)
        except _STORAGE_ERRORS as exc:
            lock.release()
            raise JournalError(
                f"Tracelet cannot create the journal of run {run_id} in {run_dir} ({type(exc).__name__}: {exc}). "
                "Free space there, or point TRACELET_JOURNAL_DIR somewhere writable."
            ) from exc
        queue = EventQueue()
        writer = JournalWriter(queue, journal_path, run_dir / "media", settings.flush_interval)
        writer.start()
        _, carried = split_credentials(options)
        in_process = settings.delivery == "thread"
        delivery = DeliverySession(run_dir, journal_path, backends, in_process, options=options, carried_env=carried)
        delivery.start()
        recording = cls(queue, writer, delivery, lock, backends)
        if settings.on_tracker_error == "raise" and backends:
            recording._wait_for_trackers(journal_path, options, start_seq)
        return recording

    def _wait_for_trackers(self, journal_path: Path, options: dict[str, dict[str, object]], start_seq: int) -> None:
        """Wait for every tracker to open its run; if one cannot, end the session FAILED and raise."""
        try:
            wait_for_trackers(journal_path, self.backends, options, start_seq)
        except TrackerConfigurationError:
            self.writer.stop()
            with contextlib.suppress(*_STORAGE_ERRORS), Journal(journal_path) as journal:
                journal.record_end("FAILED")
            self._delivery.stop(end_process=True)
            self._lock.release()
            raise

    def end(self, run_id: str, status: str, timeout: float) -> DeliveryReport:
        """Journal the session's end with ``status``, stop the writer, wait up to ``timeout`` seconds for the
        trackers, and free the run. Never raises: what went wrong is in the report."""
        self.queue.put((FINISH, status, time.time()))
        last_seq = self.writer.stop()
        report = self._delivery.final_report(run_id, status, self.writer, last_seq, timeout)
        self.writer.relay_notices()
        self._delivery.stop()
        self._lock.release()
        return report


def prelaunch_delivery(settings: TraceletSettings) -> None:
    """Start the delivery process of a run about to open with ``settings`` now (see :mod:`.standby`), so that its
    trackers' SDKs are imported while training sets up. Does nothing for disabled runs, in-process delivery
    and runs without a tracker; never raises (the run's start reports what is wrong)."""
    if not settings.enabled or settings.delivery != "process":
        return
    try:
        backends, options = _backends_and_options(settings)
    except Exception:  # an invalid tracker option: raised where it belongs, when the run starts
        return
    prelaunch(backends, *split_credentials(options))


def _backends_and_options(settings: TraceletSettings) -> tuple[list[str], dict[str, dict[str, object]]]:
    """The session's backends (those configured whose SDK is installed) and their options, credentials included;
    an option left unset is taken from the SDK's own variable (``MLFLOW_TRACKING_URI``), so the journal records
    where the run goes whatever the environment of a later ``tracelet sync``."""
    backends = usable_backends(settings)
    return backends, {name: resolve_sdk_variables(name, settings.backend_options(name)) for name in backends}


def _journal_start(
    settings: TraceletSettings,
    run_id: str,
    journal_path: Path,
    backends: list[str],
    options: dict[str, dict[str, object]],
    native_ids: Mapping[str, str],
    resumed: bool,
) -> int:
    """Create (or reopen, on resume) the run's journal: its metadata, and the session's start event (whose
    sequence number is returned)."""
    now = time.time()
    stored_options, _ = split_credentials(options)
    with Journal(journal_path, create=True) as journal:
        before = journal.meta()
        journal.set_meta(
            run_id=run_id,
            experiment=settings.experiment,
            run_name=settings.run_name,
            backends=sorted(set(before.backends) | set(backends)),
            backend_options=stored_options,
            backend_paths=registered_paths(backends),
            trainer_pid=os.getpid(),
            trainer_create_time=psutil.Process().create_time(),
            trainer_host=socket.gethostname(),
            give_up_after=settings.give_up_after,
            max_retry_backoff=settings.max_retry_backoff,
            keep_uploaded_files=settings.keep_uploaded_files,
            status="RUNNING",
            created=before.created if resumed else now,
        )
        journal.register_backends(backends)
        known = journal.deliveries()
        for backend, native_id in native_ids.items():
            if backend in known and not known[backend].native_id:
                journal.update_delivery(backend, native_id=native_id)  # continue a run whose journal was lost
        start = SessionStart(
            run_id, settings.experiment, settings.run_name, dict(settings.tags), now, str(journal_path.parent), resumed
        )
        # Journaled before delivery starts, so a delivery worker never mistakes the previous
        # session's end for the end of this one.
        return journal.append([(EventKind.START, None, None, start.to_json(), None, now)])

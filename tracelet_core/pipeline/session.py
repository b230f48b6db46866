"""What one session of a run needs to reach its trackers: which backends it can use, and its delivery.

A session is one ``Run.start()`` ... ``Run.finish()`` of a run (a resumed run has several). Its
delivery is the delivery process (the default) or, with ``TRACELET_DELIVERY=thread``, the same
workers in a thread of the training process; either way ``finish()`` waits on :meth:`delivered`.

The delivery process is supervised while the session lasts: a thread waits on it (no polling), and
if it ends any other way than having delivered everything (killed, crashed, or stopped because the
journal was replaced), a new one is started, at most :data:`MAX_RESTARTS` times, with the reason
written to ``delivery.log``; the new one carries on from the last acknowledgements. So a run ends
delivered without a manual ``tracelet sync``.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from tracelet_core.errors import BackendUnavailableError, TraceletError, warn_once
from tracelet_core.locks import ProcessLock, delivery_lock
from tracelet_core.pipeline.delivery import DeliveryService
from tracelet_core.pipeline.delivery_process import DELIVERY_LOG, launch_delivery_process
from tracelet_core.pipeline.journal import Journal
from tracelet_core.pipeline.progress import WaitLine, describe_wait
from tracelet_core.pipeline.report import DeliveryReport, read_report
from tracelet_core.pipeline.standby import claim
from tracelet_core.pipeline.writer import JournalWriter
from tracelet_core.settings import TraceletSettings
from tracelet_core.trackers import load_backend_class

__all__ = ["MAX_RESTARTS", "DeliverySession", "usable_backends"]

log = logging.getLogger("tracelet")
MAX_RESTARTS = 5
_ACK_POLL = 0.05
# What a failing journal raises: reported, never passed on to training.
_STORAGE_ERRORS = (TraceletError, sqlite3.Error, OSError)


def usable_backends(settings: TraceletSettings) -> list[str]:
    """The configured backends whose SDK is installed; one warning for each that is not.

    With none usable, the run is kept in its journal, and a notice says how to install a tracker.
    """
    wanted = settings.resolved_backends()
    usable = []
    for name in wanted:
        try:
            load_backend_class(name).check_available()
        except BackendUnavailableError as exc:
            warn_once(f"unavailable:{name}", f"{exc} Other backends go on.")
            continue
        usable.append(name)
    if not usable and (wanted or settings.backends is None):
        warn_once(
            "journal-only",
            "No tracker is configured or installed; Tracelet keeps the run in its journal under "
            f"{Path(settings.journal_dir).resolve()}. "
            'Install one with: pip install "tracelet-lightning[mlflow]"',
        )
    return usable


class DeliverySession:
    """The delivery of one session of a run.

    Args:
        run_dir: the run's directory.
        journal_path: the run's journal.
        backends: the session's backends (none: nothing is started).
        in_process: deliver from a thread of this process instead of the delivery process.
        options: the backends' options as configured, credentials included (the journal keeps them
            without credentials; see :mod:`.credentials`).
        carried_env: variables that carry those credentials to the delivery process.
    """

    def __init__(
        self,
        run_dir: Path,
        journal_path: Path,
        backends: list[str],
        in_process: bool,
        options: dict[str, dict[str, Any]] | None = None,
        carried_env: dict[str, str] | None = None,
    ) -> None:
        self._run_dir = run_dir
        self._journal_path = journal_path
        self._backends = list(backends)
        self._in_process = in_process
        self._options = options
        self._carried_env = dict(carried_env or {})
        self._lock: ProcessLock | None = None
        self._service: DeliveryService | None = None
        self._stopped = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self) -> None:
        """Launch (and watch) the delivery process, or hand the run to one started ahead (see :mod:`.standby`);
        or start the in-process workers once the run's delivery is free."""
        if not self._backends:
            return
        if not self._in_process:
            self._process = claim(self._journal_path, self._backends, self._carried_env) or launch_delivery_process(
                self._journal_path, self._carried_env
            )
            threading.Thread(
                target=self._watch, args=(self._process,), name="tracelet-delivery-watch", daemon=True
            ).start()
            return
        self._lock = delivery_lock(self._run_dir)
        self._service = DeliveryService(self._journal_path, options=self._options)
        # A delivery process of an earlier session of this run may still hold the run's delivery;
        # wait for it off the training thread, then deliver.
        threading.Thread(target=self._deliver_when_unlocked, name="tracelet-delivery", daemon=True).start()

    def delivered(self, journal: Journal, last_seq: int) -> bool:
        """True when every backend of the session acknowledged ``last_seq`` or is out of the race."""
        return all(
            state.acked_seq >= last_seq or state.state.stopped
            for name, state in journal.deliveries().items()
            if name in self._backends
        )

    def final_report(
        self, run_id: str, status: str, writer: JournalWriter, last_seq: int, timeout: float
    ) -> DeliveryReport:
        """Record the session's end, wait up to ``timeout`` for the trackers to acknowledge ``last_seq``,
        and read the report. Never raises: what the journal could not record is said in the report."""
        deadline = time.monotonic() + timeout
        problems: list[str] = []
        try:
            with Journal(self._journal_path) as journal:
                try:
                    meta = journal.meta()
                    journal.set_meta(
                        status=status,
                        ended=time.time(),
                        dropped_events=meta.dropped_events + writer.dropped,
                        lost_events=meta.lost_events + writer.lost,
                    )
                except _STORAGE_ERRORS as exc:  # a full disk: the journal still reads
                    problems.append(f"the run's end could not be recorded in its journal ({type(exc).__name__}: {exc})")
                if not problems:
                    self._wait(journal, writer, last_seq, deadline)
                report = read_report(journal, run_id, status)
        except _STORAGE_ERRORS as exc:
            problems.append(f"the journal could not be read ({type(exc).__name__}: {exc})")
            report = DeliveryReport(run_id, status, str(self._journal_path), last_seq, ())
        if problems:
            log.warning("tracelet: run %s: %s", run_id, "; ".join(problems))
            # What the journal could not record is this session's own count.
            report = dataclasses.replace(report, dropped=writer.dropped, lost=writer.lost, problems=tuple(problems))
        return report

    def _wait(self, journal: Journal, writer: JournalWriter, last_seq: int, deadline: float) -> None:
        """Wait until every backend acknowledged ``last_seq`` or ``deadline``, saying on stderr what for."""
        line = WaitLine()
        try:
            # A journal that cannot be written cannot record acknowledgements either: no use waiting.
            while not writer.failing and time.monotonic() < deadline and not self.delivered(journal, last_seq):
                if line.due():
                    line.show(describe_wait(journal, self._backends, last_seq))
                time.sleep(_ACK_POLL)
        finally:
            line.clear()

    def stop(self, *, end_process: bool = False) -> None:
        """Stop watching the delivery process (it goes on by itself, unless ``end_process``), or stop in-process
        workers (what they did not deliver stays journaled), and free the run's delivery."""
        self._stopped.set()
        process = self._process
        if end_process and process is not None and process.poll() is None:
            process.terminate()  # what it did not deliver stays in the journal, for `tracelet sync`
        if self._service is not None:
            self._service.give_up()
            self._service = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _watch(self, process: subprocess.Popen[bytes]) -> None:
        """Wait for the delivery process; start a new one if it ends before its work is done."""
        while True:
            code = process.wait()
            if code == 0 or self._stopped.is_set():
                return
            if self.restarts >= MAX_RESTARTS:
                self._note(f"delivery process {process.pid} {_describe_exit(code)}; not restarted again")
                warn_once(
                    "delivery-restarts",
                    f"Tracelet's delivery process ended {MAX_RESTARTS + 1} times; what is left stays in the journal "
                    f"{self._journal_path} (deliver it with `tracelet sync`; {DELIVERY_LOG} says why).",
                )
                return
            self.restarts += 1
            self._note(
                f"delivery process {process.pid} {_describe_exit(code)}; starting a new one "
                f"({self.restarts}/{MAX_RESTARTS})"
            )
            warn_once(
                "delivery-restart",
                f"Tracelet's delivery process {_describe_exit(code)}; a new one carries on from where it stopped "
                f"(see {self._run_dir / DELIVERY_LOG}).",
            )
            process = self._process = launch_delivery_process(self._journal_path, self._carried_env)

    def _note(self, message: str) -> None:
        log.debug("tracelet: %s", message)
        try:
            with open(self._run_dir / DELIVERY_LOG, "a", encoding="utf-8") as file:
                file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        except OSError:  # a full disk or a deleted directory: the warning still reaches the user
            pass

    def _deliver_when_unlocked(self) -> None:
        lock, service = self._lock, self._service
        if lock is not None and service is not None:
            lock.acquire()
            service.start()


def _describe_exit(code: int) -> str:
    """``ended with signal SIGKILL`` / ``exited with code 1``."""
    if code < 0:
        try:
            return f"ended with signal {signal.Signals(-code).name}"
        except ValueError:
            return f"ended with signal {-code}"
    return f"exited with code {code}"

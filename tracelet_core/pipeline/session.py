"""What one session of a run needs to reach its trackers: which backends it can use, and its delivery.

A session is one ``Run.start()`` ... ``Run.finish()`` of a run (a resumed run has several). Its
delivery is the delivery process (the default) or, with ``TRACELET_DELIVERY=thread``, the same
workers in a thread of the training process; either way ``finish()`` waits on :meth:`delivered`.
"""

from __future__ import annotations

import threading
from pathlib import Path

from tracelet_core.backends import load_backend_class
from tracelet_core.errors import BackendUnavailableError, warn_once
from tracelet_core.pipeline.delivery import DeliveryService, delivery_lock
from tracelet_core.pipeline.journal import Journal
from tracelet_core.pipeline.sidecar import launch_sidecar
from tracelet_core.settings import TraceletSettings

__all__ = ["DeliverySession", "usable_backends"]


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
    """

    def __init__(self, run_dir: Path, journal_path: Path, backends: list[str], in_process: bool) -> None:
        self._run_dir = run_dir
        self._journal_path = journal_path
        self._backends = list(backends)
        self._in_process = in_process
        self._lock: delivery_lock | None = None
        self._service: DeliveryService | None = None

    def start(self) -> None:
        """Launch the delivery process, or start the in-process workers once the run's delivery is free."""
        if not self._backends:
            return
        if not self._in_process:
            launch_sidecar(self._journal_path)
            return
        self._lock = delivery_lock(self._run_dir)
        self._service = DeliveryService(self._journal_path)
        # A delivery process of an earlier session of this run may still hold the run's delivery;
        # wait for it off the training thread, then deliver.
        threading.Thread(target=self._deliver_when_unlocked, name="tracelet-delivery", daemon=True).start()

    def delivered(self, journal: Journal, last_seq: int) -> bool:
        """True when every backend of the session acknowledged ``last_seq`` or is out of the race."""
        return all(
            state.acked_seq >= last_seq or state.state in ("unavailable", "gave_up")
            for name, state in journal.deliveries().items()
            if name in self._backends
        )

    def stop(self) -> None:
        """Stop in-process workers (what they did not deliver stays journaled) and free the run's delivery."""
        if self._service is not None:
            self._service.give_up()
            self._service = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _deliver_when_unlocked(self) -> None:
        lock, service = self._lock, self._service
        if lock is not None and service is not None:
            lock.acquire()
            service.start()

"""Deliver what a run's backends have not acknowledged: what ``tracelet sync`` does.

Exactly once, by construction of the pipeline this reuses:

- Each backend's journal row holds the last sequence number it acknowledged; delivery resumes right
  after it (a :class:`~tracelet_core.pipeline.delivery.DeliveryService`, the same workers the delivery
  process runs), so what was acknowledged is never sent again.
- The run's :func:`~tracelet_core.locks.delivery_lock` is taken without waiting (or
  waiting, with ``wait=True``): while the run's own delivery process (or a trainer delivering in a
  thread) holds it, sync leaves the run alone instead of delivering the same events twice.
- At most the one call in flight when a process dies is sent again, and every backend makes that
  harmless (points carry their logging time; see :mod:`tracelet_core.trackers.base`).

Each backend goes to the destination the run recorded, not to the one the current shell names;
``to`` sends the run to a backend it was never sent to (options from the current settings), and
``retarget`` sends the run's backends where the current settings point (see :mod:`.sync_plan`).
Files whose local copies were released after upload are fetched back from a tracker that has them.
A run whose trainer died without journaling its end (and whose delivery process died too) gets the
KILLED end its delivery process would have written, so its backends can close it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tracelet_core.locks import delivery_lock
from tracelet_core.pipeline.contract import BackendDelivery, DeliveryState, RunMeta
from tracelet_core.pipeline.delivery import DeliveryService
from tracelet_core.pipeline.delivery_process import recorder_alive
from tracelet_core.pipeline.journal import Journal
from tracelet_core.pipeline.report import DeliveryReport, read_report
from tracelet_core.settings import TraceletSettings, load_settings
from tracelet_core.sync_plan import Destination, plan_destinations, restore_files

__all__ = ["Announce", "SyncProgress", "SyncResult", "sync_run", "undelivered"]

POLL_INTERVAL = 0.2
SyncProgress = Callable[[str, dict[str, BackendDelivery], int], None]
"""Called while delivering with (run id, each backend's delivery state, last sequence number)."""
Announce = Callable[[str, Destination], None]
"""Called before sending with (run id, where one backend's events go)."""


@dataclass(frozen=True)
class SyncResult:
    """What ``sync_run`` did for one run.

    Attributes:
        run_id: the run.
        outcome: delivered (everything acknowledged now), nothing (there was nothing to deliver),
            incomplete (a backend failed or stalled; the rest stays in the journal), locked (another
            process delivers it), running (its trainer is alive and delivers it).
        message: one line for the user.
        report: the delivery state afterwards.
    """

    run_id: str
    outcome: Literal["delivered", "nothing", "incomplete", "locked", "running"]
    message: str
    report: DeliveryReport

    @property
    def ok(self) -> bool:
        """Everything journaled is in every backend."""
        return self.outcome in ("delivered", "nothing")


def undelivered(journal: Journal) -> dict[str, int]:
    """Events each backend has not acknowledged, for the backends that lack some."""
    pending = {name: journal.count(after=state.acked_seq) for name, state in journal.deliveries().items()}
    return {name: count for name, count in pending.items() if count}


def sync_run(
    journal_path: Path,
    *,
    to: Sequence[str] = (),
    settings: TraceletSettings | None = None,
    wait: bool = False,
    stall_timeout: float = 60.0,
    progress: SyncProgress | None = None,
    retarget: bool = False,
    announce: Announce | None = None,
) -> SyncResult:
    """Deliver one run's unacknowledged events to its backends (and to ``to``), then return.

    Args:
        journal_path: the run's journal.
        to: backends to add to the run (options from ``settings``); only these are delivered then.
        settings: where the options of ``to`` come from; default: the current settings.
        wait: wait for another process delivering the run instead of leaving it.
        stall_timeout: give up when no backend has made progress for this many seconds.
        progress: called about five times a second while delivering.
        retarget: send the run's own backends where ``settings`` point instead of where the run recorded.
        announce: told each backend's destination before anything is sent.

    Returns:
        The outcome and the delivery report afterwards.

    Raises:
        ConfigurationError: a backend of ``to`` is unknown.
        BackendUnavailableError: a backend of ``to`` is not installed.
    """
    journal_path = Path(journal_path)
    lock = delivery_lock(journal_path.parent, blocking=wait)
    with Journal(journal_path) as journal:
        meta = journal.meta()
        run_id = meta.run_id or journal_path.parent.name
        if not lock.acquire():
            why = "its delivery process is still delivering it; run `tracelet sync` again once it ends, or add --wait"
            return _result(journal, run_id, "locked", why)
        try:
            options = _Options(list(to), settings, stall_timeout, progress, retarget, announce)
            return _sync_locked(journal, run_id, options)
        finally:
            lock.release()


@dataclass(frozen=True)
class _Options:
    to: list[str]
    settings: TraceletSettings | None
    stall_timeout: float
    progress: SyncProgress | None
    retarget: bool
    announce: Announce | None


def _sync_locked(journal: Journal, run_id: str, options: _Options) -> SyncResult:
    meta = journal.meta()
    if not _end_session(journal, meta):
        why = f"it is still running (pid {meta.trainer_pid}) and its own delivery process delivers it"
        return _result(journal, run_id, "running", why)
    wanted = options.to or list(meta.backends)
    if not wanted:
        return _result(journal, run_id, "nothing", "the run has no trackers; send it to one with --to BACKEND")
    settings = options.settings or load_settings()
    added = [name for name in wanted if name not in meta.backends]
    plan = plan_destinations(journal, wanted, added, options.retarget, settings)
    waiting = undelivered(journal)
    pending = [name for name in wanted if name in waiting and name not in plan.refused]
    refused = "; ".join(plan.refused.values())
    if not pending:
        if refused:
            return _result(journal, run_id, "incomplete", refused)
        return _result(journal, run_id, "nothing", "nothing to deliver")
    for destination in plan.destinations:
        if options.announce is not None and destination.backend in pending:
            options.announce(run_id, destination)
    lost = restore_files(journal, pending)
    _deliver(journal, run_id, pending, options)
    return _outcome(journal, run_id, pending, refused, lost)


def _deliver(journal: Journal, run_id: str, pending: list[str], options: _Options) -> None:
    """Run the delivery workers until they are done or no backend progresses for ``stall_timeout``."""
    for name, state in journal.deliveries().items():
        if name in pending and state.state.stopped:
            # A new attempt: the SDK may be installed now, the tracker back up, the setting fixed.
            journal.update_delivery(name, state=DeliveryState.PENDING, error=None, failures=0)
    # Credentials were never stored: the service takes them from this process's environment.
    service = DeliveryService(journal.path, backends=pending).start()
    last_seq = journal.last_seq()
    best = dict.fromkeys(pending, -1)
    progressed = time.monotonic()
    while not service.wait(POLL_INTERVAL):
        states = journal.deliveries()
        if options.progress is not None:
            options.progress(run_id, {name: states[name] for name in pending}, last_seq)
        for name in pending:
            if states[name].acked_seq > best[name]:
                best[name], progressed = states[name].acked_seq, time.monotonic()
        if time.monotonic() - progressed > options.stall_timeout:
            service.give_up()
            service.wait(5.0)
            break
    if options.progress is not None:
        states = journal.deliveries()
        options.progress(run_id, {name: states[name] for name in pending}, last_seq)


def _outcome(journal: Journal, run_id: str, pending: list[str], refused: str, lost: list[str]) -> SyncResult:
    left = {name: n for name, n in undelivered(journal).items() if name in pending}
    states = journal.deliveries()
    problems = [
        f"{name}: {n} left ({states[name].state}: {states[name].error or 'no error'})" for name, n in left.items()
    ]
    if lost:
        problems.append(
            f"{len(lost)} file(s) not copied: their local copies were released after upload and no tracker "
            f"of the run could give them back ({', '.join(lost[:5])}{', ...' if len(lost) > 5 else ''})"
        )
    if refused:
        problems.append(refused)
    if problems:
        done = [name for name in pending if name not in left]
        prefix = f"delivered to {', '.join(done)}; " if done else ""
        return _result(journal, run_id, "incomplete", prefix + "; ".join(problems))
    return _result(journal, run_id, "delivered", f"delivered to {', '.join(pending)}")


def _end_session(journal: Journal, meta: RunMeta) -> bool:
    """Journal the KILLED end of a session whose trainer is gone; False while the trainer still runs."""
    if not journal.session_open():
        return True
    if recorder_alive(journal.path, meta):
        return False
    journal.record_end("KILLED")
    return True


def _result(journal: Journal, run_id: str, outcome: Any, message: str) -> SyncResult:
    status = journal.meta().status
    return SyncResult(run_id, outcome, message, read_report(journal, run_id, status))

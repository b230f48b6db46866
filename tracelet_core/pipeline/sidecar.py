"""The delivery process ("sidecar"): one per run, started by the run, never by a fork.

``python -m tracelet_core.pipeline <journal>`` delivers a run's journal to its backends and
exits when every backend has acknowledged the run's end. It watches the training process: if the
trainer dies without finishing the run (OOM killer, SIGKILL, a scheduler), it journals a KILLED
end itself, so what was journaled is still delivered and the run is not left RUNNING. Once the
trainer is gone (or the run has ended), an unreachable tracker is retried for ``give_up_after``
seconds, then the process exits and leaves the rest in the journal for ``tracelet sync``.

It runs in its own session with stdin, stdout and stderr pointed away from the trainer's
terminal (its output goes to ``delivery.log`` beside the journal), so ``python train.py | tee log``
ends when training ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import psutil

from tracelet_core.errors import TraceletWarning
from tracelet_core.pipeline.delivery import DeliveryService, delivery_lock
from tracelet_core.pipeline.journal import Journal

__all__ = ["launch_sidecar", "main", "supervise", "trainer_alive"]

log = logging.getLogger("tracelet.delivery")

DELIVERY_LOG = "delivery.log"
WATCH_INTERVAL = 0.25


def launch_sidecar(journal_path: Path) -> subprocess.Popen[bytes]:
    """Start the delivery process for ``journal_path`` and return at once."""
    run_dir = journal_path.parent
    env = dict(os.environ, TRACELET_SIDECAR="1", PYTHONUNBUFFERED="1")
    # A ClearML task in the trainer marks its child processes; ClearML would then hand this
    # process a do-nothing stub instead of a task (see backends/clearml.py).
    for variable in ("CLEARML_PROC_MASTER_ID", "TRAINS_PROC_MASTER_ID"):
        env.pop(variable, None)
    # The sidecar must import the same tracelet_core as the trainer, even when the trainer found it
    # through sys.path tweaks rather than an installation.
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    with open(run_dir / DELIVERY_LOG, "ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "tracelet_core.pipeline", str(journal_path)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd=os.getcwd(),
            env=env,
        )


def trainer_alive(pid: int | None, create_time: float | None, host: str | None = None) -> bool:
    """Whether the process that owns the run still runs (and is not a new process with a reused pid).

    A trainer on another host (a journal on a shared file system) cannot be seen from here and is
    taken to be alive, so that nothing here ends a live run as KILLED.
    """
    if host and host != socket.gethostname():
        return True
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_time is None or abs(process.create_time() - create_time) < 1.0
    except psutil.Error:
        return False


def supervise(journal_path: Path, give_up_after: float | None = None) -> int:
    """Deliver one run's journal until done; the body of the delivery process. Returns an exit code."""
    with Journal(journal_path) as journal:
        meta = journal.meta()
    grace = float(meta.get("give_up_after", 300.0)) if give_up_after is None else give_up_after
    service = DeliveryService(journal_path).start()
    gone_at: float | None = None
    while not service.all_done():
        time.sleep(WATCH_INTERVAL)
        with Journal(journal_path) as journal:
            meta = journal.meta()
            start = journal.last_event("start")
            finish = journal.last_event("finish")
            session_open = start is not None and (finish is None or finish.seq < start.seq)
            alive = trainer_alive(meta.get("trainer_pid"), meta.get("trainer_create_time"), meta.get("trainer_host"))
            if session_open and not alive:
                log.warning("the training process %s is gone; ending the run as KILLED", meta.get("trainer_pid"))
                journal.append([("finish", None, None, "KILLED", None, time.time())])
                journal.set_meta(status="KILLED")
                session_open = False
        if gone_at is None and not alive:
            gone_at = time.monotonic()
        if gone_at is not None and time.monotonic() - gone_at > grace:
            log.error(
                "giving up after %.0fs without the trainer; undelivered events stay in %s "
                "(deliver them later with `tracelet sync`)",
                grace,
                journal_path,
            )
            service.give_up()
            service.wait(5.0)
            return 1
    return 0


def _relay_warnings_to(journal_path: Path) -> None:
    """Send Tracelet's warnings (sanitised keys, truncated values...) to the journal, where the training
    process picks them up and shows them to the user; this process has no terminal."""
    show = warnings.showwarning

    def record(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        show(message, category, *args, **kwargs)
        if issubclass(category, TraceletWarning):
            with Journal(journal_path) as journal:
                journal.add_notice(str(message), str(message))

    warnings.showwarning = record


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tracelet_core.pipeline JOURNAL``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tracelet_core.pipeline JOURNAL", file=sys.stderr)
        return 2
    journal_path = Path(args[0])
    # Delivery is never urgent; training is. On a machine whose cores the trainer keeps busy, the
    # scheduler serves the trainer first and delivers in the gaps (what is journaled waits safely).
    with contextlib.suppress(OSError):
        os.nice(10)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
        stream=sys.stdout,
    )
    tracelet_log = logging.getLogger("tracelet")
    tracelet_log.handlers.clear()  # the trainer-side console handler; here everything goes to the log file
    tracelet_log.propagate = True
    tracelet_log.setLevel(logging.DEBUG)
    _relay_warnings_to(journal_path)
    with delivery_lock(journal_path.parent):
        log.info("delivering %s", journal_path)
        code = supervise(journal_path)
        log.info("delivery process exits (%d)", code)
    # A backend call that hangs would keep a non-daemon SDK thread alive; leave regardless.
    sys.stdout.flush()
    os._exit(code)

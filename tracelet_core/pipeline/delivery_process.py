"""The delivery process: one per run, started by the run, never by a fork.

``python -m tracelet_core.pipeline <journal>`` delivers a run's journal to its backends and
exits when every backend has acknowledged the run's end. It watches the training process: if the
trainer dies without finishing the run (OOM killer, SIGKILL, a scheduler), it journals a KILLED
end itself, so what was journaled is still delivered and the run is not left RUNNING. Once the
trainer is gone (or the run has ended), an unreachable tracker is retried for ``give_up_after``
seconds, then the process exits and leaves the rest in the journal for ``tracelet sync``.

Before delivering, it lets each backend make the process-wide SDK settings it wants
(:meth:`~tracelet_core.trackers.base.Backend.prepare_delivery_process`): this process is Tracelet's
own, unlike the training process, whose process-wide state Tracelet leaves alone.

It runs in its own session with stdin, stdout and stderr pointed away from the trainer's
terminal (its output goes to ``delivery.log`` beside the journal), so ``python train.py | tee log``
ends when training ends.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import select
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import psutil

from tracelet_core.collectors.git import strip_credentials
from tracelet_core.errors import TraceletWarning
from tracelet_core.locks import RUN_LOCK, delivery_lock, run_in_use
from tracelet_core.pipeline.contract import RunMeta
from tracelet_core.pipeline.credentials import restore_credentials
from tracelet_core.pipeline.delivery import DeliveryService
from tracelet_core.pipeline.files import PRIVATE_FILE
from tracelet_core.pipeline.journal import Journal
from tracelet_core.settings_sources import DELIVERY_PROCESS_MARKER
from tracelet_core.trackers import load_backend_class

__all__ = [
    "DELIVERY_LOG",
    "STANDBY_FLAG",
    "STANDBY_LIMIT",
    "delivery_env",
    "launch_delivery_process",
    "main",
    "prepare_backends",
    "recorder_alive",
    "supervise",
    "trainer_alive",
]

log = logging.getLogger("tracelet.delivery")

DELIVERY_LOG = "delivery.log"
STANDBY_FLAG = "--standby"
STANDBY_LIMIT = 600.0  # seconds a process started ahead of its run waits for it
WATCH_INTERVAL = 0.25
OPENING_LIMIT = 30.0


def delivery_env(extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a delivery process: this one's, plus ``extra_env`` (credentials the journal does not
    keep: see :mod:`.credentials`), minus what would mislead it."""
    env = dict(os.environ, **(extra_env or {}), PYTHONUNBUFFERED="1")
    env[DELIVERY_PROCESS_MARKER] = "1"
    # A ClearML task in the trainer marks its child processes; ClearML would then hand this
    # process a do-nothing stub instead of a task (see backends/clearml.py).
    for variable in ("CLEARML_PROC_MASTER_ID", "TRAINS_PROC_MASTER_ID"):
        env.pop(variable, None)
    # The delivery process must import the same tracelet_core as the trainer, even when the trainer found it
    # through sys.path tweaks rather than an installation.
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


def launch_delivery_process(journal_path: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start the delivery process for ``journal_path`` and return at once.

    ``extra_env`` is added to the child's environment only (see :func:`delivery_env`).
    """
    run_dir = journal_path.parent
    env = delivery_env(extra_env)
    log_fd = os.open(run_dir / DELIVERY_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
    with open(log_fd, "ab") as log_file:
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


def recorder_alive(journal_path: Path, meta: RunMeta) -> bool:
    """Whether a process is recording into the run right now: it holds the run's lock.

    A run that released its lock without journaling its end (a full disk at ``finish``) is as good as
    ended. Journals from before the run lock, and runs on another host, fall back on the trainer's pid.
    """
    host = meta.trainer_host
    if (journal_path.parent / RUN_LOCK).exists() and not (host and host != socket.gethostname()):
        return run_in_use(journal_path.parent)
    return trainer_alive(meta.trainer_pid, meta.trainer_create_time, host)


def supervise(
    journal_path: Path, give_up_after: float | None = None, on_opened: Callable[[], None] | None = None
) -> int:
    """Deliver one run's journal until done; the body of the delivery process. Returns an exit code:
    0 delivered, 1 gave up (no progress for ``give_up_after`` seconds after the trainer ended).
    ``on_opened`` is called once every tracker has opened its run (or stopped), or after
    :data:`OPENING_LIMIT` seconds (a tracker that cannot be reached is retried for longer)."""
    with Journal(journal_path) as journal:
        meta = journal.meta()
    grace = meta.give_up_after if give_up_after is None else give_up_after
    service = DeliveryService(journal_path).start()
    alive = True
    progress, progressed = -1, time.monotonic()
    opening_until = progressed + OPENING_LIMIT
    while not service.all_done():
        time.sleep(WATCH_INTERVAL)
        if on_opened is not None and (service.all_opened() or time.monotonic() > opening_until):
            on_opened()
            on_opened = None
        try:
            alive, done = _watch(journal_path)
        except Exception:  # an unreadable or unwritable journal for a moment (a full disk): look again
            log.exception("could not read the journal")
            continue
        if done != progress or alive:
            progress, progressed = done, time.monotonic()
        elif time.monotonic() - progressed > grace:
            log.error(
                "giving up after %.0fs without progress and without the trainer; undelivered events stay in %s "
                "(deliver them later with `tracelet sync`)",
                grace,
                journal_path,
            )
            service.give_up()
            service.wait(5.0)
            return 1
    return 0


def _yield_to_training() -> None:
    """Lower this process's priority once its trackers are open.

    Delivery is never urgent while training runs; on a machine whose cores the trainer keeps busy,
    the scheduler then serves the trainer first and delivers in the gaps (what is journaled waits
    safely). Opening the trackers (importing their SDKs, creating a new store) runs at the trainer's
    priority, so that it is done while training runs rather than left for the run's end.
    """
    with contextlib.suppress(OSError):
        os.nice(10)


def _watch(journal_path: Path) -> tuple[bool, int]:
    """Whether the trainer is alive (ending its session as KILLED if it died), and how far delivery got."""
    with Journal(journal_path) as journal:
        meta = journal.meta()
        alive = recorder_alive(journal_path, meta)
        if not alive and journal.session_open():
            log.warning(
                "the training process %s ended without journaling the run's end; ending it as KILLED",
                meta.trainer_pid,
            )
            journal.record_end("KILLED")
        done = sum(state.acked_seq for state in journal.deliveries().values())
        done += sum(journal.rejected_counts().values())
    return alive, done


def prepare_backends(journal_path: Path) -> None:
    """Call each backend's :meth:`~tracelet_core.trackers.base.Backend.prepare_delivery_process` once, with
    its options, before anything is delivered. Only the delivery process does this, never a thread of the
    training process. A backend that cannot be loaded is left to its worker, which reports it."""
    with Journal(journal_path) as journal:
        meta = journal.meta()
    options = restore_credentials(meta.backend_options)
    for name in meta.backends:
        try:
            backend_cls = load_backend_class(meta.backend_paths.get(name) or name)
            backend_cls.prepare_delivery_process(dict(options.get(name, {})))
        except Exception:  # its worker meets the same problem and records it where the user sees it
            log.exception("%s: could not prepare the delivery process", name)


def _relay_warnings_to(journal_path: Path) -> None:
    """Send Tracelet's warnings (sanitised keys, truncated values...) to the journal, where the training
    process picks them up and shows them to the user; this process has no terminal."""
    show = warnings.showwarning

    def record(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        show(message, category, *args, **kwargs)
        if issubclass(category, TraceletWarning):
            try:
                with Journal(journal_path) as journal:
                    journal.add_notice(str(message), str(message))
            except Exception as exc:  # a full disk: the warning is in the delivery log, delivery goes on
                log.warning("could not pass this warning on to the training process: %s", exc)

    warnings.showwarning = record


class _Redacted(io.TextIOBase):
    """A text stream that removes credentials from URLs before writing: what an SDK prints lands in
    ``delivery.log``, and must not carry a password there."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(strip_credentials(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return False


def _await_journal(options_json: str, backends: list[str]) -> Path | None:
    """A process started ahead of its run (see :mod:`.standby`): import the backends' SDKs now (and let each
    warm up, if it has a ``warm_up(options)`` class method: import its store's modules, say), then wait for
    the journal's path on stdin (None: the trainer is gone, or sent nothing for :data:`STANDBY_LIMIT` seconds).
    From then on, the output goes to the run's ``delivery.log``."""
    options = json.loads(options_json)
    for name in backends:
        with contextlib.suppress(Exception):  # its worker meets the same problem and records it
            backend_cls = load_backend_class(name)
            if backend_cls.sdk_module:
                importlib.import_module(backend_cls.sdk_module)
            warm_up = getattr(backend_cls, "warm_up", None)
            if callable(warm_up):
                warm_up(dict(options.get(name, {})))
    ready, _, _ = select.select([sys.stdin], [], [], STANDBY_LIMIT)
    line = sys.stdin.readline().strip() if ready else ""
    if not line:
        return None
    journal_path = Path(line)
    log_fd = os.open(journal_path.parent / DELIVERY_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
    for stream in (1, 2):
        os.dup2(log_fd, stream)
    os.close(log_fd)
    return journal_path


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tracelet_core.pipeline JOURNAL`` (or ``--standby OPTIONS BACKEND...``: see
    :mod:`.standby`)."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == [STANDBY_FLAG]:
        standby_path = _await_journal(args[1], args[2:])
        if standby_path is None:
            return 0
        args = [str(standby_path)]
    if len(args) != 1:
        print("usage: python -m tracelet_core.pipeline JOURNAL", file=sys.stderr)
        return 2
    journal_path = Path(args[0])
    sys.stdout, sys.stderr = _Redacted(sys.stdout), _Redacted(sys.stderr)
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
        prepare_backends(journal_path)
        code = supervise(journal_path, on_opened=_yield_to_training)
        log.info("delivery process exits (%d)", code)
    # A backend call that hangs would keep a non-daemon SDK thread alive; leave regardless.
    sys.stdout.flush()
    os._exit(code)

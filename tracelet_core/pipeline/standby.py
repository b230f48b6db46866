"""A delivery process started ahead of its run, so that the trackers' SDKs are imported before training ends.

Importing a tracker's SDK takes a second or more (MLflow 1.6 s, several on a busy machine), and the
delivery process can only deliver the end of a run once it has. A short run (a sweep's trial, a
smoke test) used to end waiting for that import. ``TraceletLogger`` therefore calls
:func:`prelaunch` when it is created: a delivery process starts at once, imports the SDKs of the
run's trackers, and waits for its journal on stdin. When the run opens, :func:`claim` hands it the
journal (``DeliverySession`` falls back on a fresh process when there is none that fits).

A standby process fits a run only if it was started for the same trackers, with the same credentials,
in the same working directory and environment (variables that Lightning and torch set while setting
up are not compared); otherwise it is told to exit and a fresh one is started. One that gets no run
exits when this process does (its stdin closes) or after :data:`~.delivery_process.STANDBY_LIMIT`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tracelet_core.pipeline.credentials import BackendOptions
from tracelet_core.pipeline.delivery_process import STANDBY_FLAG, STANDBY_LIMIT, delivery_env

__all__ = ["claim", "discard", "prelaunch"]

# Set by Lightning, torch and launchers while a fit sets up; they do not change what delivery does.
_UNCOMPARED = ("PL_", "LIGHTNING_", "TORCH", "OMP_", "MKL_", "CUDA_", "NCCL_", "MASTER_", "LOCAL_", "RANK")
_UNCOMPARED_NAMES = frozenset({"WORLD_SIZE", "NODE_RANK", "GROUP_RANK", "KMP_DUPLICATE_LIB_OK"})
_MARGIN = 60.0  # seconds before its STANDBY_LIMIT from which a standby process is no longer handed a run


@dataclass(frozen=True)
class _Standby:
    process: subprocess.Popen[bytes]
    fits: tuple[object, ...]  # what a run must match to use it (see _fit_key)
    started: float  # time.monotonic() at its start

    def usable_for(self, fits: tuple[object, ...]) -> bool:
        """It fits, runs, and is not about to give up waiting (a journal sent then would go unread)."""
        young = time.monotonic() - self.started < STANDBY_LIMIT - _MARGIN
        return self.fits == fits and young and self.process.poll() is None


_lock = threading.Lock()
_waiting: _Standby | None = None


def _fit_key(backends: list[str], carried_env: dict[str, str]) -> tuple[object, ...]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_UNCOMPARED) and name not in _UNCOMPARED_NAMES
    }
    return tuple(backends), sorted(carried_env.items()), sorted(env.items()), os.getcwd()


def prelaunch(backends: list[str], options: BackendOptions, carried_env: dict[str, str]) -> None:
    """Start a delivery process for a run about to open with ``backends`` (one at a time: a previous one that
    does not fit is told to exit). ``options`` are the backends' options without credentials (those are in
    ``carried_env``). Never raises: without it, the run starts its delivery process as usual."""
    global _waiting
    if not backends:
        return
    fits = _fit_key(backends, carried_env)
    with _lock:
        previous = _waiting
        if previous is not None and previous.usable_for(fits):
            return
        _waiting = None
    _close(previous)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "tracelet_core.pipeline", STANDBY_FLAG, json.dumps(options, default=str), *backends],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
            cwd=os.getcwd(),
            env=delivery_env(carried_env),
        )
    except OSError:  # no process can be started here: the run will say so when it starts its own
        return
    with _lock:
        stale, _waiting = _waiting, _Standby(process, fits, time.monotonic())
    _close(stale)


def claim(journal_path: Path, backends: list[str], carried_env: dict[str, str]) -> subprocess.Popen[bytes] | None:
    """The standby process, now delivering ``journal_path``; None when there is none that fits this run."""
    global _waiting
    with _lock:
        standby, _waiting = _waiting, None
    if standby is None:
        return None
    if not standby.usable_for(_fit_key(backends, carried_env)):
        _close(standby)
        return None
    stdin = standby.process.stdin
    assert stdin is not None
    try:
        stdin.write(f"{journal_path}\n".encode())
        stdin.close()
    except OSError:  # it has just exited
        return None
    return standby.process


def discard() -> None:
    """Tell the standby process waiting, if any, to exit."""
    global _waiting
    with _lock:
        standby, _waiting = _waiting, None
    _close(standby)


def _close(standby: _Standby | None) -> None:
    """Tell a standby process to exit: its stdin closes."""
    if standby is not None and standby.process.stdin is not None:
        with contextlib.suppress(OSError):
            standby.process.stdin.close()

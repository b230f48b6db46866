"""Cross-process locks, portable (``filelock``: ``flock`` on POSIX, ``LockFileEx`` on Windows).

Three locks keep concurrent processes apart:

* :func:`run_lock`: held by the process that records into a run, for as long as it does, so a second
  process given the same run id is refused instead of merging two runs into one;
* :func:`delivery_lock`: held by whoever delivers a run (its delivery process, a trainer delivering
  in a thread, ``tracelet sync``), so events are never delivered twice at once;
* :func:`store_lock`: held around the first open of a local tracker store (an MLflow SQLite file,
  an Aim repository), so the eight runs of a sweep starting at once on a fresh store do not race
  through its creation or its schema migrations.

The operating system releases every one of them when its process dies, however it dies.
"""

from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock, Timeout

__all__ = ["LOCK_MODE", "RUN_LOCK", "ProcessLock", "delivery_lock", "run_in_use", "run_lock", "store_lock"]

LOCK_MODE = 0o600
DELIVERY_LOCK = "delivery.lock"
RUN_LOCK = "run.lock"


class ProcessLock:
    """An exclusive lock on ``path`` shared by every process on the machine (and NFS, where it locks).

    Args:
        path: the lock file (created if missing, left in place afterwards).
        blocking: wait for the lock (True) or give up at once.
        timeout: with ``blocking``, seconds to wait at most (None: forever).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.lock"
        >>> first, second = ProcessLock(path), ProcessLock(path, blocking=False)
        >>> first.acquire(), second.acquire()
        (True, False)
        >>> first.release(); second.acquire()
        True
        >>> second.release()
    """

    def __init__(self, path: str | os.PathLike[str], *, blocking: bool = True, timeout: float | None = None) -> None:
        self.path = Path(path)
        self._blocking = blocking
        self._timeout = timeout
        self._lock: FileLock | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._lock is not None

    def acquire(self) -> bool:
        """Take the lock; False when it is held elsewhere and waiting is not allowed (or timed out)."""
        if self._lock is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # thread_local=False: the lock is the process's, whichever thread releases it.
        lock = FileLock(self.path, mode=LOCK_MODE, thread_local=False)
        wait = (-1 if self._timeout is None else self._timeout) if self._blocking else 0
        try:
            lock.acquire(timeout=wait)
        except Timeout:
            return False
        self._lock = lock
        return True

    def release(self) -> None:
        """Release the lock (nothing happens when it is not held)."""
        if self._lock is not None:
            self._lock.release(force=True)
            self._lock = None

    def __enter__(self) -> ProcessLock:
        if not self.acquire():
            raise TimeoutError(f"{self.path} is locked by another process")
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def delivery_lock(run_dir: str | os.PathLike[str], blocking: bool = True) -> ProcessLock:
    """The lock on a run's delivery (``<run dir>/delivery.lock``)."""
    return ProcessLock(Path(run_dir) / DELIVERY_LOCK, blocking=blocking)


def run_lock(run_dir: str | os.PathLike[str]) -> ProcessLock:
    """The lock a recording process holds on its run (``<run dir>/run.lock``).

    Taking it waits two seconds at most: long enough to pass a delivery process that looks at it
    (:func:`run_in_use`), far too short to wait for another recording process.
    """
    return ProcessLock(Path(run_dir) / RUN_LOCK, timeout=2.0)


def run_in_use(run_dir: str | os.PathLike[str]) -> bool:
    """Whether a live process holds the run's lock right now (creates nothing when no run is there)."""
    lock = ProcessLock(Path(run_dir) / RUN_LOCK, blocking=False)
    if not lock.path.exists():
        return False
    if not lock.acquire():
        return True
    lock.release()
    return False


def store_lock(store: str | os.PathLike[str], timeout: float = 300.0) -> ProcessLock:
    """The lock around the first open of a local tracker store at ``store`` (a file or a directory).

    The lock file lies beside the store, hidden (``.<name>.tracelet-lock``), so every process that
    opens the same store, from any working directory, takes the same lock. Waiting longer than
    ``timeout`` raises :class:`TimeoutError` (a transient delivery error: retried later).
    """
    target = Path(store).resolve()
    return ProcessLock(target.parent / f".{target.name}.tracelet-lock", timeout=timeout)

"""A run's files on disk: private directories, a file's identity, and where the journals are.

A run's directory is ``<journal_dir>/<experiment>/<run id>``: its journal, ``delivery.log``, the
staged copies of uploaded files and encoded media. All of it is private to its user (files 0600, in
directories 0700: a run's params and tags are nobody else's business).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("tracelet.delivery")

__all__ = [
    "JOURNAL_FILENAME",
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "file_identity",
    "iter_journals",
    "make_private_dir",
    "release_staged_file",
]

JOURNAL_FILENAME = "journal.sqlite"
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def make_private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents readable by their owner only; existing ones are left as they are."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(mode=PRIVATE_DIR, exist_ok=True)


def file_identity(path: Path) -> tuple[int, int] | None:
    """A file's (device, inode), or None when it does not exist: tells a journal deleted or replaced under a run."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def release_staged_file(run_dir: Path, path: Path) -> None:
    """Delete a file ``Run.log_artifact`` staged in ``run_dir`` (``files/<id>/<name>``) and its directory.

    Any other path is left alone, and so is a directory another file is still in.
    """
    if path.parent.parent != run_dir / "files":
        return
    try:
        path.unlink(missing_ok=True)
        path.parent.rmdir()
    except OSError as exc:  # another backend's worker got there first, or the directory is not empty
        log.debug("kept %s: %s", path, exc)


def iter_journals(journal_dir: str | Path) -> Iterator[Path]:
    """Every journal file under ``journal_dir`` (``<dir>/<experiment>/<run id>/journal.sqlite``)."""
    yield from sorted(Path(journal_dir).glob(f"*/*/{JOURNAL_FILENAME}"))

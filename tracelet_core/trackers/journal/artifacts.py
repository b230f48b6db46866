"""Where each file a run logged is now: kept on disk, uploaded (local copy released), replaced, or missing.

A run's delivery deletes its own copy of a file once every tracker has it (``keep_uploaded_files``),
and a newer best checkpoint replaces the previous one (its metadata names it in ``replaces``; MLflow
deletes the old file). So a file that is not on disk is not necessarily lost: it is ``missing`` only
when no tracker acknowledged it either.

Example:
    >>> ArtifactStatus("model.ckpt", "/gone", 7, "uploaded", None, ("mlflow",)).lost
    False
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tracelet_core.errors import JournalError
from tracelet_core.pipeline.contract import ArtifactPayload, BackendDelivery, EventKind
from tracelet_core.pipeline.journal import Journal

__all__ = ["ArtifactState", "ArtifactStatus", "artifact_statuses"]

ArtifactState = Literal["kept", "uploaded", "replaced", "missing"]
_PAGE = 10_000


@dataclass(frozen=True)
class ArtifactStatus:
    """One logged file (the last one logged under its name).

    Attributes:
        name: its name in the trackers; path: the run's local copy; seq: its journal event.
        state: ``kept`` (the local copy is there), ``uploaded`` (the local copy was released once
            trackers took it: ``holders``), ``replaced`` (a newer file superseded it: ``replaced_by``),
            ``missing`` (neither on disk nor in any tracker: lost).
        size: bytes of the local copy (None when it is gone).
        holders: the backends that acknowledged it.
        replaced_by: the file that superseded it.
        metadata: what was logged with it (a checkpoint's score, aliases).
    """

    name: str
    path: str
    seq: int
    state: ArtifactState
    size: int | None
    holders: tuple[str, ...] = ()
    replaced_by: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def lost(self) -> bool:
        """Neither on disk nor in any tracker."""
        return self.state == "missing"


def artifact_statuses(path: Path) -> list[ArtifactStatus]:
    """Every file a run's journal logged (the last one per name), in logged order, with its state.

    Raises:
        JournalError: the journal cannot be read.
    """
    logged: dict[str, tuple[int, ArtifactPayload]] = {}
    replaced: dict[str, str] = {}
    try:
        with Journal(path) as journal:
            deliveries = journal.deliveries()
            after = 0
            while page := journal.read(after, _PAGE, skip_metrics=True):
                after = page[-1].seq
                for event in page:
                    if event.kind != EventKind.ARTIFACT or not event.key:
                        continue
                    try:
                        payload = ArtifactPayload.of(event)
                    except (KeyError, TypeError, ValueError):  # a damaged record: `show` counts those
                        continue
                    logged[event.key] = (event.seq, payload)
                    replaced.pop(event.key, None)
                    supersedes = payload.metadata.get("replaces")
                    if supersedes and supersedes != event.key:
                        replaced[str(supersedes)] = event.key
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"Cannot read the Tracelet journal {path}: {exc}") from exc
    return [_status(name, seq, payload, replaced.get(name), deliveries) for name, (seq, payload) in logged.items()]


def _status(
    name: str, seq: int, payload: ArtifactPayload, replaced_by: str | None, deliveries: dict[str, BackendDelivery]
) -> ArtifactStatus:
    local = Path(payload.path)
    size = local.stat().st_size if local.is_file() else None
    holders = tuple(sorted(b for b, state in deliveries.items() if state.acked_seq >= seq))
    state: ArtifactState
    if replaced_by is not None:
        state = "replaced"
    elif size is not None:
        state = "kept"
    elif holders:
        state = "uploaded"  # a tracker without it yet gets it from one that has it (`tracelet sync`)
    else:
        state = "missing"
    return ArtifactStatus(name, payload.path, seq, state, size, holders, replaced_by, payload.metadata)

"""The index of a run's checkpoints: one JSON file (``checkpoints/index.json``) instead of tags per file.

A tracker without per-file metadata of its own (MLflow) keeps each uploaded file's metadata (epoch,
step, score, monitor, aliases...) in this one artifact, rewritten as checkpoints come and go, so the
run's tags stay few however many checkpoints a run saves. An entry leaves the index when a later
upload replaces its file (``replaces`` in the metadata), and an alias (``best``, ``last``) stays only
on the newest entry that has it.
"""

from __future__ import annotations

import json
from typing import Any

from tracelet_core.events import ArtifactRef
from tracelet_core.normalize import to_plain

__all__ = ["CHECKPOINT_INDEX", "CheckpointIndex"]

CHECKPOINT_INDEX = "checkpoints/index.json"


class CheckpointIndex:
    """File name -> metadata of the files a tracker holds that came with metadata.

    Example:
        >>> index = CheckpointIndex()
        >>> index.add(ArtifactRef("/tmp/a", "checkpoints/a.ckpt", {"score": 0.5, "aliases": ["best", "last"]}))
        >>> index.add(ArtifactRef("/tmp/b", "checkpoints/b.ckpt", {"score": 0.7, "aliases": ["last"]}))
        >>> index.entries["checkpoints/a.ckpt"]["aliases"], index.entries["checkpoints/b.ckpt"]["aliases"]
        (['best'], ['last'])
        >>> index.add(ArtifactRef("/tmp/c", "checkpoints/c.ckpt", {"replaces": "checkpoints/b.ckpt"}))
        >>> sorted(index.entries)
        ['checkpoints/a.ckpt', 'checkpoints/c.ckpt']
    """

    def __init__(self, entries: dict[str, dict[str, Any]] | None = None) -> None:
        self.entries: dict[str, dict[str, Any]] = dict(entries or {})

    def add(self, artifact: ArtifactRef) -> None:
        """Record ``artifact``'s metadata; drop the entry it replaces and move its aliases off older entries."""
        metadata = {str(k): v for k, v in to_plain(artifact.metadata).items() if k != "replaces"}
        replaced = artifact.metadata.get("replaces")
        if replaced and replaced != artifact.name:
            self.entries.pop(str(replaced), None)
        aliases = set(metadata.get("aliases") or ())
        for name, entry in self.entries.items():
            if name != artifact.name and isinstance(entry.get("aliases"), list):
                entry["aliases"] = [alias for alias in entry["aliases"] if alias not in aliases]
        self.entries[artifact.name] = metadata

    def to_json(self) -> str:
        """The index as its file holds it: ``{"checkpoints": {name: metadata}}``, names sorted."""
        return json.dumps({"checkpoints": dict(sorted(self.entries.items()))}, indent=2, default=str) + "\n"

    @classmethod
    def from_json(cls, text: str | None) -> CheckpointIndex:
        """Read an index written by :meth:`to_json`; an empty index for None or a damaged file."""
        try:
            data = json.loads(text or "{}")
        except json.JSONDecodeError:
            return cls()
        entries = data.get("checkpoints") if isinstance(data, dict) else None
        if not isinstance(entries, dict):
            return cls()
        return cls({str(k): dict(v) for k, v in entries.items() if isinstance(v, dict)})

"""Read W&B run files (``run-<id>.wandb``, offline or the local copy of an online run): ``wandb-offline:DIR``.

wandb 0.31 ships no Python reader for these files. The format: a 7-byte header (``:W&B``, magic
0xBEE1, version 0), then LevelDB-log framing in 32 KiB blocks (each chunk: CRC32 of type and data,
2-byte length, type FULL/FIRST/MIDDLE/LAST); each assembled payload is a ``wandb_internal_pb2.Record``.

What comes back: the project as the experiment, the display name, tags (``key:value`` labels split
again), the config as params (nested dicts flattened with ``/``), every history value that is a number
as a metric point at ``trainer/global_step`` (the W&B backend's axis), else W&B's ``_step``; a row on
Tracelet's wall-time axis has no step. Each point keeps the row's ``_timestamp``. Files of ``file``
and ``model`` artifacts are copied from W&B's staging area while they are still there. Media values
(images, tables, histograms) are not copied. The W&B backend's ``user/`` prefix for reserved keys stays.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracelet_core.events import TERMINAL_STATUSES, ArtifactRef, MetricPoint
from tracelet_core.normalize import flatten_params
from tracelet_core.trackers.store import RunRecord, SourceRun, StoreReader
from tracelet_core.trackers.wandb.mapping import GLOBAL_STEP, STATUS_KEY, WALL_TIME

__all__ = ["WandbOfflineReader", "destination", "iter_records"]

_BLOCK = 32 * 1024
_CHUNK = struct.Struct("<IHB")
_FULL, _FIRST, _LAST = 1, 2, 4
_AXES = {GLOBAL_STEP, WALL_TIME}


def iter_records(path: Path) -> Iterator[Any]:
    """Every complete record of a ``.wandb`` file, in order; stops at a torn or corrupt tail."""
    from wandb.proto.wandb_internal_pb2 import Record  # type: ignore[attr-defined]

    data = path.read_bytes()
    if len(data) < 7 or struct.unpack_from("<4sHB", data) != (b":W&B", 0xBEE1, 0):
        return
    pos, parts = 7, b""
    while pos + _CHUNK.size <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _CHUNK.size:
            pos += left
            continue
        crc, length, kind = _CHUNK.unpack_from(data, pos)
        if kind == 0 and length == 0:  # zero padding at the end of a block
            pos += left
            continue
        chunk = data[pos + _CHUNK.size : pos + _CHUNK.size + length]
        if len(chunk) < length or zlib.crc32(chunk, zlib.crc32(bytes([kind]))) != crc:
            return  # still being written, or damaged: what came before is what we have
        pos += _CHUNK.size + length
        parts = chunk if kind in (_FULL, _FIRST) else parts + chunk
        if kind in (_FULL, _LAST):
            record = Record()
            record.ParseFromString(parts)
            yield record


def _put(target: dict[str, Any], item: Any) -> None:
    path = [item.key] if item.key else list(item.nested_key)
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = json.loads(item.value_json)


@dataclass
class _RunFile:
    """What one or more ``.wandb`` files of a run hold."""

    first_run: Any = None  # the first run record: start time
    run: Any = None  # the latest: name and tags as they ended up
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[Any] = field(default_factory=list)
    exit_code: int | None = None


def _read_file(path: Path, header_only: bool = False) -> _RunFile:
    """Fold a file's records; ``header_only`` keeps only the run records (no history decoding)."""
    result = _RunFile()
    for record in iter_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            result.first_run = result.first_run or record.run
            result.run = record.run
            for item in record.run.config.update:
                _put(result.config, item)
        elif header_only:
            continue
        elif kind == "config":
            for item in record.config.update:
                _put(result.config, item)
        elif kind == "history":
            row: dict[str, Any] = {}
            for item in record.history.item:
                _put(row, item)
            result.history.append(row)
        elif kind == "summary":
            for item in record.summary.update:
                _put(result.summary, item)
        elif kind == "artifact":
            result.artifacts.append(record.artifact)
        elif kind == "exit":
            result.exit_code = int(record.exit.exit_code)
    return result


class WandbOfflineReader(StoreReader):
    """Reads every ``run-*.wandb`` file under ``location`` (default: ``WANDB_DIR`` or ``.``)."""

    kind = "wandb-offline"

    def __init__(self, location: str) -> None:
        super().__init__(location)
        import os

        self.root = Path(location or os.environ.get("WANDB_DIR") or ".").expanduser()
        self._files: dict[str, list[Path]] = {}

    def list_runs(self, experiments: Collection[str] | None = None) -> list[SourceRun]:
        runs: dict[str, SourceRun] = {}
        self._files.clear()
        # A resumed run writes one file per session; their folders are named in time order.
        for path in sorted(self.root.rglob("run-*.wandb")):
            header = _read_file(path, header_only=True)
            latest = header.run
            if latest is None or not latest.run_id:
                continue
            experiment = latest.project or "uncategorized"
            if experiments is not None and experiment not in experiments:
                continue
            self._files.setdefault(latest.run_id, []).append(path)
            tags = {}
            for label in latest.tags:
                key, _, value = label.partition(":")
                tags[key] = value
            first = runs.get(latest.run_id)
            begun = header.first_run.start_time
            start = first.start_time if first else (begun.seconds + begun.nanos / 1e9 or None)
            runs[latest.run_id] = SourceRun(
                f"wandb:{latest.run_id}", latest.run_id, experiment, latest.display_name or None, tags, start
            )
        return sorted(runs.values(), key=lambda r: (r.start_time or 0.0, r.native_id))

    def read_run(self, run: SourceRun, scratch: Path, *, artifacts: bool = True) -> RunRecord:
        if run.native_id not in self._files:
            self.list_runs()
        content = _RunFile()
        for path in self._files[run.native_id]:
            session = _read_file(path)
            content.config.update(session.config)
            content.summary.update(session.summary)
            content.history.extend(session.history)
            content.artifacts.extend(session.artifacts)
            content.exit_code = session.exit_code
        config = {k: v for k, v in content.config.items() if k != "_wandb"}
        record = RunRecord(run=run, params=flatten_params(config))
        media: set[str] = set()
        for row in content.history:
            step = row.get(GLOBAL_STEP, row.get("_step"))
            if WALL_TIME in row:
                step = None
            when = float(row.get("_timestamp") or 0.0)
            for key, value in row.items():
                if key.startswith("_") or key in _AXES:
                    continue
                number = _number(value)
                if number is None:
                    media.add(key)
                    continue
                record.metrics.append(MetricPoint(key, number, None if step is None else int(step), when))
        if media:
            record.notes.append(f"non-numeric history values are not copied: {', '.join(sorted(media))}")
        status = content.summary.get(STATUS_KEY)
        if status in TERMINAL_STATUSES:
            record.status = status
        elif content.exit_code is None:
            record.status = "KILLED"
            record.notes.append("the run file has no exit record (run still going, or killed); its copy ends KILLED")
        else:
            record.status = "FINISHED" if content.exit_code == 0 else "FAILED"
        if artifacts:
            self._artifacts(content, record)
        return record

    @staticmethod
    def _artifacts(content: _RunFile, record: RunRecord) -> None:
        for artifact in content.artifacts:
            if artifact.type.startswith("wandb-"):
                continue  # W&B's own bookkeeping (history, code, job)
            for entry in artifact.manifest.contents:
                if entry.local_path and Path(entry.local_path).is_file():
                    record.artifacts.append(ArtifactRef(entry.local_path, entry.path))
                else:
                    record.notes.append(
                        f"artifact {artifact.name!r} file {entry.path!r}: no local copy left "
                        f"(W&B staging area cleaned, or a reference to {entry.ref or 'a remote file'})"
                    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return math.nan if value == "NaN" else float(value.replace("Infinity", "inf"))
    return None


def destination(kind: str, location: str, options: dict[str, Any]) -> tuple[dict[str, Any], str | None, dict[str, str]]:
    """``tracelet migrate --to wandb`` / ``wandb-offline:DIR``: offline run files can be read back, online runs not."""
    if kind == "wandb-offline":
        options["mode"] = "offline"
    options["dir"] = location or options.get("dir")
    mode = options.get("mode") or os.environ.get("WANDB_MODE")
    return options, (f"wandb-offline:{options['dir'] or ''}" if mode == "offline" else None), {}

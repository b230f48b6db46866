"""Read a W&B offline run file (``run-<id>.wandb``) back, for tests.

wandb 0.31 no longer ships a Python reader. The format: a 7-byte header (``:W&B``, magic 0xBEE1,
version 0), then LevelDB-log framing in 32 KiB blocks: each chunk is CRC32 (of the type byte and
the data), length (2 bytes), type (FULL/FIRST/MIDDLE/LAST), data; a block's tail shorter than a
chunk header is zero padding. Each assembled payload is a ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import math
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32 * 1024
CHUNK_HEADER = struct.Struct("<IHB")
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def iter_records(path: str | Path) -> Iterator[pb.Record]:
    """Every record of a ``.wandb`` file, in order, with each chunk's checksum verified."""
    data = Path(path).read_bytes()
    if len(data) < 7:  # not even the header yet
        return
    ident, magic, version = struct.unpack_from("<4sHB", data)
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), (ident, magic, version)
    pos, parts = 7, b""
    while pos + CHUNK_HEADER.size <= len(data):
        left = BLOCK - pos % BLOCK
        if left < CHUNK_HEADER.size:
            pos += left
            continue
        crc, length, kind = CHUNK_HEADER.unpack_from(data, pos)
        if kind == 0 and length == 0:  # zero padding at the end of a block or of the file
            pos += left
            continue
        if pos + CHUNK_HEADER.size + length > len(data):  # still being written
            return
        chunk = data[pos + CHUNK_HEADER.size : pos + CHUNK_HEADER.size + length]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == crc, f"bad checksum at offset {pos}"
        pos += CHUNK_HEADER.size + length
        parts = chunk if kind in (FULL, FIRST) else parts + chunk
        if kind in (FULL, LAST):
            record = pb.Record()
            record.ParseFromString(parts)
            yield record


def _put(target: dict[str, Any], item: Any) -> None:
    """Store a history/summary/config item; a media value arrives as several items with a nested key."""
    path = [item.key] if item.key else list(item.nested_key)
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = json.loads(item.value_json)


@dataclass
class WandbRun:
    """What a test needs from one offline run file."""

    run: pb.RunRecord = field(default_factory=pb.RunRecord)  # the last run record (empty if none)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, pb.MetricRecord] = field(default_factory=dict)
    artifacts: list[pb.ArtifactRecord] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    exit: pb.RunExitRecord | None = None
    records: list[pb.Record] = field(default_factory=list)

    def series(self, key: str, axis: str = "trainer/global_step") -> list[tuple[Any, Any]]:
        """``(axis value, value)`` of every history row holding ``key``, in order."""
        return [(row.get(axis), row[key]) for row in self.history if key in row]


def run_file(run_dir: str | Path) -> Path:
    """The ``run-<id>.wandb`` file in an offline run directory (what the backend's location() names)."""
    (path,) = Path(run_dir).glob("run-*.wandb")
    return path


def read_run(path: str | Path, timeout: float = 10.0) -> WandbRun:
    """Fold the records of a ``.wandb`` file into history rows, summary, config, tags and artifacts.

    ``run.finish()`` can return a moment before wandb-core has flushed the file, so this waits up to
    ``timeout`` seconds for the run's exit record.
    """
    deadline = time.monotonic() + timeout
    while True:
        records = list(iter_records(path))
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    out = WandbRun()
    for record in records:
        out.records.append(record)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out.run = record.run
            out.tags = list(record.run.tags)
            for item in record.run.config.update:
                _put(out.config, item)
        elif kind == "history":
            row: dict[str, Any] = {}
            for item in record.history.item:
                _put(row, item)
            out.history.append(row)
        elif kind == "summary":
            for item in record.summary.update:
                _put(out.summary, item)
        elif kind == "config":
            for item in record.config.update:
                _put(out.config, item)
        elif kind == "metric":
            out.metrics[record.metric.name or record.metric.glob_name] = record.metric
        elif kind == "artifact":
            out.artifacts.append(record.artifact)
        elif kind == "exit":
            out.exit = record.exit
    return out


def same_value(got: Any, expected: float) -> bool:
    """JSON turns ``1.0`` into ``1`` and keeps NaN/±inf as ``NaN``/``Infinity``: compare as floats."""
    got = float(got)
    return (math.isnan(got) and math.isnan(expected)) or got == expected

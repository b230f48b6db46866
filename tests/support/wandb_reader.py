"""Read a W&B offline run file (``run-<id>.wandb``) back, for tests: records from Tracelet's own
reader (:mod:`tracelet_core.trackers.wandb.reader`), folded into what the tests assert on.

wandb 0.31 no longer ships a Python reader. The format: a 7-byte header (``:W&B``, magic 0xBEE1,
version 0), then LevelDB-log framing in 32 KiB blocks: each chunk is CRC32 (of the type byte and
the data), length (2 bytes), type (FULL/FIRST/MIDDLE/LAST), data; a block's tail shorter than a
chunk header is zero padding. Each assembled payload is a ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2 as pb

from tracelet_core.trackers.wandb.reader import _put, iter_records


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
        records = list(iter_records(Path(path)))
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

"""A minimal third-party-style backend (one JSON line per call in the working directory), for tests."""

from __future__ import annotations

import json
from pathlib import Path

from tracelet_core import Backend, Batch, RunInfo, RunStatus


class JsonLinesBackend(Backend):
    name = "jsonl-for-test"

    def _write(self, record: dict[str, object]) -> None:
        with Path(f"{self.name}.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")

    def open(self, run: RunInfo, native_id: str | None) -> str:
        self._write({"open": run.run_id})
        return native_id or run.run_id

    def write(self, batch: Batch) -> None:
        self._write({"metrics": [[p.key, p.value, p.step] for p in batch.metrics], "params": batch.params})

    def close(self, status: RunStatus) -> None:
        self._write({"close": status})

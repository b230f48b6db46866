"""A backend that notes, in ``preparing.jsonl`` in the working directory, each process-wide preparation
and each call, with the process that made it and that process's delivery-process marker: for the tests
of ``Backend.prepare_delivery_process``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tracelet_core import Backend, Batch, RunInfo, RunStatus
from tracelet_core.settings_sources import DELIVERY_PROCESS_MARKER

NOTES = "preparing.jsonl"


def _note(record: dict[str, Any]) -> None:
    with Path(NOTES).open("a", encoding="utf-8") as out:
        marker = os.environ.get(DELIVERY_PROCESS_MARKER)
        out.write(json.dumps({**record, "pid": os.getpid(), "marker": marker}) + "\n")


class PreparingBackend(Backend):
    name = "preparing-for-test"

    @classmethod
    def prepare_delivery_process(cls, options: Mapping[str, Any]) -> None:
        _note({"call": "prepare", "options": dict(options)})

    def open(self, run: RunInfo, native_id: str | None) -> str:
        _note({"call": "open"})
        return native_id or run.run_id

    def write(self, batch: Batch) -> None:
        _note({"call": "write"})

    def close(self, status: RunStatus) -> None:
        _note({"call": "close"})

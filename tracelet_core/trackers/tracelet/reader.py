"""Read runs from a Tracelet server (``tracelet:URL``) through its REST API, for ``sync``, ``migrate`` and ``compare``.

Every run the server lists (soft-deleted ones are not), its params, tags, status, and every point of every
metric. Not carried: files (the server does not keep artifacts yet).
"""

from __future__ import annotations

import shlex
from collections.abc import Collection
from pathlib import Path
from typing import Any

from tracelet_core.client import TraceletClient
from tracelet_core.events import TERMINAL_STATUSES, MetricPoint, RunStatus
from tracelet_core.trackers.store import RunRecord, SourceRun, StoreReader
from tracelet_core.trackers.tracelet.options import DEFAULT_URL, TOKEN_VARIABLE

__all__ = ["TraceletServerReader", "destination"]


def _number(value: float | str) -> float:
    return float(value) if not isinstance(value, str) else float(value.replace("Infinity", "inf"))


class TraceletServerReader(StoreReader):
    """Reads a Tracelet server; ``location`` is its URL (empty: ``http://127.0.0.1:8765``).

    Example:
        >>> reader = TraceletServerReader("http://127.0.0.1:8765")  # doctest: +SKIP
        >>> [run.name for run in reader.list_runs(["digits"])]  # doctest: +SKIP
        ['baseline', 'wide']
    """

    kind = "tracelet"

    def __init__(self, location: str) -> None:
        import os

        super().__init__(location)
        self.client = TraceletClient(location or DEFAULT_URL, os.environ.get(TOKEN_VARIABLE))

    def describe(self) -> str:
        return f"tracelet:{self.client.url}"

    def list_runs(self, experiments: Collection[str] | None = None) -> list[SourceRun]:
        wanted = filter_for(experiments) if experiments is not None and len(experiments) == 1 else ""
        found = self.client.search_runs(wanted, sort="start_time", order="asc")
        return [self._source(run) for run in found if experiments is None or run["experiment"] in experiments]

    @staticmethod
    def _source(run: dict[str, Any], tags: dict[str, str] | None = None) -> SourceRun:
        return SourceRun(
            key=f"tracelet:{run['id']}",
            native_id=run["id"],
            experiment=run["experiment"],
            name=run["name"],
            tags=dict(tags or run.get("tags") or {}),
            start_time=run["start_time"],
        )

    def read_run(self, run: SourceRun, scratch: Path, *, artifacts: bool = True) -> RunRecord:
        detail = self.client.get_run(run.native_id)
        record = RunRecord(run=self._source(detail), params=dict(detail["params"]))
        for key in sorted(detail["metrics"]):
            record.metrics.extend(self.metric_history(run, key))
        record.status = _status(detail["status"])
        if detail["status"] not in TERMINAL_STATUSES:
            record.notes.append(f"the run is {detail['status']} on the server; its copy ends as KILLED")
        return record

    def metric_history(self, run: SourceRun, key: str) -> list[MetricPoint]:
        points = self.client.history(run.native_id, key)["points"]
        return [MetricPoint(key, _number(value), step, ts) for step, ts, value in points]

    def metric_keys(self, run: SourceRun) -> list[str]:
        return sorted(self.client.metrics(run.native_id))

    def count(self, run: SourceRun) -> tuple[int, int]:
        """Points from the metric counts; the server holds no files yet."""
        return sum(int(m["count"]) for m in self.client.metrics(run.native_id).values()), 0

    def close(self) -> None:
        self.client.close()


def _status(status: str) -> RunStatus:
    return next((terminal for terminal in TERMINAL_STATUSES if terminal == status), "KILLED")


def destination(kind: str, location: str, options: dict[str, Any]) -> tuple[dict[str, Any], str | None, dict[str, str]]:
    """``tracelet migrate --to tracelet[:URL]``: the URL (else the settings') is written to and read back."""
    options["url"] = location or options.get("url") or DEFAULT_URL
    return options, f"tracelet:{options['url']}", {}


def filter_for(experiments: Collection[str]) -> str:
    """The filter matching one experiment (the API's language quotes like a shell).

    Example:
        >>> filter_for(["my exp"])
        "'experiment=my exp'"
    """
    return " ".join(shlex.quote(f"experiment={name}") for name in experiments)

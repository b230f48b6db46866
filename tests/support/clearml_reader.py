"""Read a ClearML offline session back, for tests.

A session is the folder ``<CLEARML_CACHE_DIR>/offline/<task id>/`` (and, after ``close``, a zip
of it beside the folder) holding:

- ``task.json``: the task as the API would return it: ``name``, ``project_name``, ``type``,
  ``tags``, ``hyperparams`` (``{section: {name: {"value": ...}}}``, nested keys flattened with
  ``/``; user properties are the ``properties`` section), ``execution.artifacts`` (``key``,
  ``uri`` of the stored copy, ``display_data`` = metadata as string pairs).
- ``metrics.jsonl``: one JSON list of events per line. Scalars are ``training_stats_scalar``
  (``metric`` = title, ``variant`` = series, ``iter``, ``value``); debug samples (images, media)
  ``training_debug_image`` with ``url`` = the stored file; plots ``plot`` with ``plot_str`` (plotly JSON).
- ``log.jsonl``: console lines, and ``data/``: stored artifact and media files.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class OfflineSession:
    """What one offline session holds, as plain data."""

    folder: Path
    task: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def task_id(self) -> str:
        return str(self.task["id"])

    @property
    def tags(self) -> list[str]:
        return list(self.task.get("tags") or [])

    def params(self, section: str) -> dict[str, str]:
        """``{name: value}`` of one hyperparameter section (names flattened with ``/``)."""
        entries = (self.task.get("hyperparams") or {}).get(section) or {}
        return {name: entry.get("value") for name, entry in entries.items()}

    @property
    def user_properties(self) -> dict[str, str]:
        return self.params("properties")

    def scalars(self) -> dict[tuple[str, str], list[tuple[int, float]]]:
        """``{(title, series): [(iter, value), ...]}`` in the order the events were written."""
        series: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for event in self.events_of("training_stats_scalar"):
            series.setdefault((event["metric"], event["variant"]), []).append((event["iter"], event["value"]))
        return series

    def latest_scalars(self) -> dict[tuple[str, str], dict[int, float]]:
        """``{(title, series): {iter: value}}`` as a server keeps them after import: events are keyed
        by (task, iter, metric, variant), so a repeated event overwrites the earlier one."""
        return {name: dict(points) for name, points in self.scalars().items()}

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event.get("type") == kind]

    def plots(self) -> list[dict[str, Any]]:
        """Plot events, each with its plotly figure decoded under ``"figure"``."""
        return [{**event, "figure": json.loads(event["plot_str"])} for event in self.events_of("plot")]

    def artifacts(self) -> dict[str, dict[str, Any]]:
        """``{key: artifact entry}``, each with ``"path"`` (the stored copy) and ``"metadata"``."""
        entries = ((self.task.get("execution") or {}).get("artifacts")) or []
        return {
            entry["key"]: {
                **entry,
                "path": Path(entry["uri"]),
                "metadata": dict(entry.get("display_data") or []),
            }
            for entry in entries
        }

    def zip_names(self) -> set[str]:
        """Files in the session's zip (written by ``Task.close``)."""
        with zipfile.ZipFile(self.folder.with_name(self.folder.name + ".zip")) as archive:
            return set(archive.namelist())


def session_folder(cache_dir: str | Path, task_id: str) -> Path:
    """Where ClearML keeps the offline session of ``task_id`` under ``CLEARML_CACHE_DIR``."""
    return Path(cache_dir) / "offline" / task_id


def read_session(folder: str | Path) -> OfflineSession:
    """Read ``task.json`` and every event of ``metrics.jsonl`` from a session folder."""
    folder = Path(folder)
    task = json.loads((folder / "task.json").read_text())
    events: list[dict[str, Any]] = []
    metrics = folder / "metrics.jsonl"
    if metrics.exists():
        for line in metrics.read_text().splitlines():
            if line.strip():
                events.extend(json.loads(line))
    return OfflineSession(folder=folder, task=task, events=events)

"""Read ClearML offline sessions (``clearml-offline:DIR``), without the ClearML SDK or a server.

A session is a folder ``offline-<id>/`` (and, once the task is closed, a zip of it beside the folder)
holding ``task.json`` (name, project, tags, hyperparameters, artifacts) and ``metrics.jsonl`` (one
JSON list of events per line). DIR may be ``CLEARML_CACHE_DIR``, its ``offline/`` folder, one session
folder, or a folder of session zips (each is unpacked into a temporary folder).

What comes back: the project as the experiment; the ``hyperparameters`` section as params (other
sections as ``<section>/<name>``); user properties as tags (the ClearML backend stores every tag
there), plus any ClearML tag not already among them; scalars as metrics, ``title/series`` (or
``title`` when both are the same, as the ClearML backend splits keys), at their iteration; artifacts
from the session's data folder. ClearML stamps a point with the time it was reported, not logged,
and plots, debug samples and console logs are not copied.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Collection, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from tracelet_core.events import TERMINAL_STATUSES, ArtifactRef, MetricPoint, RunStatus
from tracelet_core.trackers.clearml.mapping import PARAMS_SECTION, STATUS_PROPERTY
from tracelet_core.trackers.store import RunRecord, SourceRun, StoreReader

__all__ = ["ClearMLOfflineReader", "destination", "metric_key"]

PROPERTIES_SECTION = "properties"
_STATUSES: dict[str, RunStatus] = {
    "completed": "FINISHED",
    "published": "FINISHED",
    "closed": "FINISHED",
    "failed": "FAILED",
    "stopped": "KILLED",
}


def metric_key(title: str, series: str) -> str:
    """The Tracelet key of a ClearML scalar (the inverse of the backend's split at the last ``/``).

    Example:
        >>> metric_key("train", "loss"), metric_key("val_acc", "val_acc")
        ('train/loss', 'val_acc')
    """
    return title if title == series else f"{title}/{series}"


def _time(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _events(folder: Path) -> Iterator[dict[str, Any]]:
    path = folder / "metrics.jsonl"
    if not path.exists():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield from json.loads(line)


class ClearMLOfflineReader(StoreReader):
    """Reads every ClearML offline session under ``location`` (default: ``CLEARML_CACHE_DIR/offline``)."""

    kind = "clearml-offline"

    def __init__(self, location: str) -> None:
        super().__init__(location)
        import os

        default = Path(os.environ.get("CLEARML_CACHE_DIR") or Path.home() / ".clearml" / "cache") / "offline"
        self.root = Path(location).expanduser() if location else default
        self._unpacked: Path | None = None
        self._folders: dict[str, Path] = {}
        self._from_zip: set[Path] = set()

    def list_runs(self, experiments: Collection[str] | None = None) -> list[SourceRun]:
        runs = []
        for folder in self._sessions():
            task = json.loads((folder / "task.json").read_text(encoding="utf-8"))
            experiment = str(task.get("project_name") or task.get("project") or "default")
            if experiments is not None and experiment not in experiments:
                continue
            task_id = str(task.get("id") or folder.name)
            self._folders[task_id] = folder
            props = _section(task, PROPERTIES_SECTION)
            tags = {k: v for k, v in props.items() if k != STATUS_PROPERTY}
            for label in task.get("tags") or []:
                key, _, value = str(label).partition(":")
                tags.setdefault(key, value)
            start = _time(task.get("started")) or _time(task.get("created")) or (folder / "task.json").stat().st_mtime
            runs.append(SourceRun(f"clearml:{task_id}", task_id, experiment, task.get("name"), tags, start))
        return sorted(runs, key=lambda r: (r.start_time or 0.0, r.native_id))

    def read_run(self, run: SourceRun, scratch: Path, *, artifacts: bool = True) -> RunRecord:
        if run.native_id not in self._folders:
            self.list_runs()
        folder = self._folders[run.native_id]
        task = json.loads((folder / "task.json").read_text(encoding="utf-8"))
        record = RunRecord(run=run, params=_params(task), status=self._status(task, folder))
        skipped: Counter[str] = Counter()
        for event in _events(folder):
            if event.get("type") == "training_stats_scalar":
                key = metric_key(str(event["metric"]), str(event["variant"]))
                record.metrics.append(
                    MetricPoint(key, float(event["value"]), int(event["iter"]), float(event["timestamp"]) / 1000)
                )
            else:
                skipped[str(event.get("type"))] += 1
        if record.metrics:
            record.notes.append("ClearML keeps the time a point was reported, not logged: timestamps are report times")
        if skipped:
            listed = ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items()))
            record.notes.append(f"events that are not scalars are not copied ({listed})")
        if artifacts:
            for entry in (task.get("execution") or {}).get("artifacts") or []:
                path = Path(str(entry.get("uri", "")).removeprefix("file://"))
                name = str(entry.get("key"))
                if path.is_file():
                    metadata = {str(k): v for k, v in entry.get("display_data") or []}
                    record.artifacts.append(ArtifactRef(str(path), name, metadata))
                else:
                    record.notes.append(f"artifact {name!r}: {entry.get('uri')} is not a local file")
        return record

    def close(self) -> None:
        if self._unpacked is not None:
            shutil.rmtree(self._unpacked, ignore_errors=True)
            self._unpacked = None

    def _sessions(self) -> list[Path]:
        folders = {p.parent for p in self.root.rglob("task.json")}
        for archive in sorted(self.root.rglob("offline-*.zip")):
            if archive.with_suffix("") in folders:
                continue  # the zip of a folder we already read
            if self._unpacked is None:
                self._unpacked = Path(tempfile.mkdtemp(prefix="tracelet-clearml-"))
            target = self._unpacked / archive.stem
            if not target.exists():
                with zipfile.ZipFile(archive) as zipped:
                    zipped.extractall(target)
            self._from_zip.update(p.parent for p in target.rglob("task.json"))
        folders |= self._from_zip
        return sorted(folders)

    def _status(self, task: dict[str, Any], folder: Path) -> RunStatus:
        recorded = _section(task, PROPERTIES_SECTION).get(STATUS_PROPERTY)
        for status in TERMINAL_STATUSES:
            if recorded == status:
                return status
        mapped = _STATUSES.get(str(task.get("status")))
        if mapped is not None:
            return mapped
        # An offline session gets its zip when the task is closed.
        closed = folder in self._from_zip or folder.with_name(folder.name + ".zip").exists()
        return "FINISHED" if closed else "KILLED"


def _section(task: dict[str, Any], section: str) -> dict[str, str]:
    entries = (task.get("hyperparams") or {}).get(section) or {}
    return {str(name): str(entry.get("value", "")) for name, entry in entries.items()}


def _params(task: dict[str, Any]) -> dict[str, str]:
    params: dict[str, str] = {}
    for section in task.get("hyperparams") or {}:
        if section == PROPERTIES_SECTION:
            continue
        prefix = "" if section == PARAMS_SECTION else f"{section}/"
        params.update({f"{prefix}{name}": value for name, value in _section(task, section).items()})
    return params


def destination(kind: str, location: str, options: dict[str, Any]) -> tuple[dict[str, Any], str | None, dict[str, str]]:
    """``tracelet migrate --to clearml`` / ``clearml-offline:DIR``: DIR is ClearML's cache directory; offline
    sessions can be read back, a server's tasks not."""
    env: dict[str, str] = {}
    if kind == "clearml-offline":
        options["offline"] = True
    if location:
        env["CLEARML_CACHE_DIR"] = str(Path(location).expanduser().resolve())
    cache = env.get("CLEARML_CACHE_DIR") or os.environ.get("CLEARML_CACHE_DIR")
    reader = f"clearml-offline:{Path(cache) / 'offline' if cache else ''}" if options.get("offline") else None
    return options, reader, env

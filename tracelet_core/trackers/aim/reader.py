"""Read runs from a local Aim repository (``aim:REPO``), undoing what the Aim backend does.

- Metric sequences: ``loss`` with context ``{"subset": "train"}`` is ``train/loss`` again (see
  :func:`tracelet_core.trackers.aim.backend.sequence_of`); an empty context keeps the name; any other context
  is appended to the name in brackets (``loss[head=a]``), with a note.
- Aim's epoch axis becomes an ``epoch`` metric again: one point per distinct (step, time) that
  carries an epoch, as Lightning logs it (unless the run has a real ``epoch`` sequence).
- Params: ``hparams`` flattened with ``/`` (other user attributes under ``<attribute>/``); Aim turned
  numeric strings into numbers, so ``1e-3`` comes back as ``0.001``.
- Tags: the backend's ``tracelet.tags`` record when there is one, else Aim's ``key:value`` labels.
- Images, distributions and texts are not copied (counted in the notes); artifacts are downloaded.

A finished run is invisible to ``Repo.get_run`` until Aim has indexed it (``aim up`` does that in
the background), so each run is indexed before it is read.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from pathlib import Path
from typing import Any

from tracelet_core.errors import ConfigurationError
from tracelet_core.events import TERMINAL_STATUSES, ArtifactRef, MetricPoint, RunStatus
from tracelet_core.normalize import flatten_params
from tracelet_core.trackers.aim.mapping import EPOCH_KEY, STATUS_TAG, SUBSETS, sequence_of
from tracelet_core.trackers.store import RunRecord, SourceRun, StoreReader

__all__ = ["AimReader", "destination", "metric_key"]

_NUMERIC = ("float", "int", "number")
_MEDIA = {"aim.image": "image", "aim.distribution": "distribution", "aim.text": "text", "aim.audio": "audio"}
_INTERNAL_ATTRIBUTES = {"hparams", "tracelet"}


def metric_key(name: str, context: dict[str, Any]) -> str:
    """The Tracelet metric key of an Aim sequence.

    Example:
        >>> metric_key("loss", {"subset": "train"}), metric_key("lr", {}), metric_key("acc", {"head": "a"})
        ('train/loss', 'lr', 'acc[head=a]')
    """
    if not context:
        return name
    if set(context) == {"subset"} and context["subset"] in SUBSETS:
        return f"{context['subset']}/{name}"
    return f"{name}[{','.join(f'{k}={v}' for k, v in sorted(context.items()))}]"


def _label_tags(labels: Collection[str]) -> dict[str, str]:
    tags = {}
    for label in labels:
        key, _, value = str(label).partition(":")
        if key != STATUS_TAG:
            tags[key] = value
    return tags


class AimReader(StoreReader):
    """Reads a local Aim repository; ``location`` is the directory holding ``.aim`` (default: ``.``).

    Raises:
        ConfigurationError: there is no Aim repository at ``location``.
    """

    kind = "aim"

    def __init__(self, location: str) -> None:
        super().__init__(location)
        from aim import Repo
        from aim.sdk.index_manager import RepoIndexManager

        path = str(Path(location or ".").expanduser())
        if Path(path).name == ".aim":
            path = str(Path(path).parent)
        if not Repo.exists(path):
            raise ConfigurationError(f"No Aim repository at {path!r} (no .aim folder there); `aim init` makes one")
        self.repo = Repo.from_path(path)
        self._indexer = RepoIndexManager.get_index_manager(self.repo)

    def list_runs(self, experiments: Collection[str] | None = None) -> list[SourceRun]:
        runs = []
        hashes = self.repo.list_all_runs()
        self._index(hashes)
        for run_hash in hashes:
            aim_run = self.repo.get_run(run_hash)
            if aim_run is None:
                continue
            experiment = aim_run.experiment or "default"
            if experiments is not None and experiment not in experiments:
                continue
            stored = aim_run.get("tracelet") or {}
            tags = dict(stored.get("tags") or _label_tags(aim_run.tags))
            if stored.get("run_id"):
                tags["tracelet.run_id"] = str(stored["run_id"])
            name = aim_run.name if aim_run.name and aim_run.name != f"Run: {run_hash}" else None
            ended = aim_run.end_time if not aim_run.active else None
            runs.append(SourceRun(f"aim:{run_hash}", run_hash, experiment, name, tags, aim_run.creation_time, ended))
        return sorted(runs, key=lambda r: (r.start_time or 0.0, r.native_id))

    def read_run(self, run: SourceRun, scratch: Path, *, artifacts: bool = True) -> RunRecord:
        aim_run = self._get(run.native_id)
        if aim_run is None:
            raise ConfigurationError(f"Aim run {run.native_id} is not in {self.repo.path}")
        record = RunRecord(run=run, params=self._params(aim_run), status=self._status(aim_run, run.native_id))
        if record.status == "KILLED" and run.native_id in self.repo.list_active_runs():
            record.notes.append("the run is still active in Aim; its copy ends as KILLED")
        has_epoch_sequence = any(name == EPOCH_KEY for name, _, _ in aim_run.iter_sequence_info_by_type(_NUMERIC))
        epochs: dict[tuple[int, float], float] = {}
        for name, context, _ in aim_run.iter_sequence_info_by_type(_NUMERIC):
            key = metric_key(name, context.to_dict())
            if "[" in key:
                record.notes.append(f"Aim sequence {name!r} with context {context.to_dict()} is copied as {key!r}")
            steps, (values, epoch_values, times) = aim_run.get_metric(name, context).data.numpy()
            for step, value, epoch, when in zip(steps, values, epoch_values, times, strict=True):
                record.metrics.append(MetricPoint(key, float(value), int(step), float(when)))
                if not has_epoch_sequence and not math.isnan(epoch):
                    epochs[(int(step), float(when))] = float(epoch)
        record.metrics.extend(MetricPoint(EPOCH_KEY, e, s, t) for (s, t), e in sorted(epochs.items()))
        for kind, label in _MEDIA.items():
            count = sum(1 for _ in aim_run.iter_sequence_info_by_type((kind,)))
            if count:
                record.notes.append(f"{count} {label} sequence(s) are not copied (only metrics, params and files are)")
        if artifacts:
            self._download(aim_run, scratch / "aim-artifacts" / run.native_id, record)
        return record

    def metric_history(self, run: SourceRun, key: str) -> list[MetricPoint]:
        from aim.storage.context import Context

        aim_run = self._get(run.native_id)
        name, context = sequence_of(key)
        untyped: Any = context  # Aim's AimObject type is a dict with Union keys
        metric = aim_run.get_metric(name, Context(untyped)) if aim_run is not None else None
        if metric is None:
            return super().metric_history(run, key) if key == EPOCH_KEY else []
        steps, (values, _, times) = metric.data.numpy()
        return [MetricPoint(key, float(v), int(s), float(t)) for s, v, t in zip(steps, values, times, strict=True)]

    def _get(self, run_hash: str) -> Any:
        self._index([run_hash])
        return self.repo.get_run(run_hash)

    def _index(self, hashes: Collection[str]) -> None:
        for run_hash in hashes:
            self._indexer.index(run_hash)
        # Read-only RocksDB handles see the index as it was when they were opened, and Aim keeps them in a
        # pool: drop them so the runs just indexed (written by this process, say) are seen.
        self.repo.container_pool.clear()

    @staticmethod
    def _params(aim_run: Any) -> dict[str, str]:
        stored = aim_run.get("tracelet") or {}
        if isinstance(stored.get("params"), dict):  # the raw strings, where the backend keeps them
            return {str(k): str(v) for k, v in stored["params"].items()}
        params = flatten_params(aim_run.get("hparams") or {})
        for attribute, value in (aim_run[...] or {}).items():
            if attribute not in _INTERNAL_ATTRIBUTES and not attribute.startswith("__"):
                params.update(flatten_params({attribute: value}))
        return params

    def _status(self, aim_run: Any, run_hash: str) -> RunStatus:
        stored = (aim_run.get("tracelet") or {}).get("status")
        labels = [str(label) for label in aim_run.tags]
        for status in TERMINAL_STATUSES:
            if stored == status or f"{STATUS_TAG}:{status}" in labels:
                return status
        return "KILLED" if run_hash in self.repo.list_active_runs() else "FINISHED"

    @staticmethod
    def _download(aim_run: Any, target: Path, record: RunRecord) -> None:
        for index, (name, artifact) in enumerate(sorted(aim_run.artifacts.items())):
            folder = target / str(index)
            folder.mkdir(parents=True, exist_ok=True)
            try:
                local = artifact.download(str(folder))
            except Exception as exc:  # a moved or remote artifact store: say so, copy the rest
                record.notes.append(f"artifact {name!r} could not be downloaded from {artifact.uri}: {exc}")
                continue
            record.artifacts.append(ArtifactRef(str(local), name))


def destination(kind: str, location: str, options: dict[str, Any]) -> tuple[dict[str, Any], str | None, dict[str, str]]:
    """``tracelet migrate --to aim[:REPO]``: the repository (else the settings') is written to and read back."""
    options["repo"] = location or options.get("repo")
    return options, f"aim:{options['repo'] or ''}", {}

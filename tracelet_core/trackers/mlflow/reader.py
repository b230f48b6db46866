"""Read runs from an MLflow tracking store (``mlflow:URI``): SQLite, a file store, or a server.

Everything comes from ``MlflowClient``: experiments and runs (active ones), params, tags, the full
history of every metric (``get_metric_history``), and the artifact tree (downloaded). The tag
``mlflow.runName`` is the run's name rather than a tag; MLflow's names of facts Tracelet records itself
(``mlflow.user``, ``mlflow.source.*``) go back to Tracelet's (``env.user``, ``env.program``, ``git.*``),
so a copy holds each fact once; other ``mlflow.*`` tags are carried as they are. Not carried: dataset
inputs, registered models (their files are copied as artifacts) and traces.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracelet_core.events import TERMINAL_STATUSES, ArtifactRef, MetricPoint, RunStatus
from tracelet_core.trackers.mlflow.mapping import tracelet_tags
from tracelet_core.trackers.store import RunRecord, SourceRun, StoreReader

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = ["MlflowReader", "destination", "fetch_artifact"]

_PAGE = 1000


class MlflowReader(StoreReader):
    """Reads an MLflow store; ``location`` is a tracking URI (empty: ``MLFLOW_TRACKING_URI`` or MLflow's default).

    Example:
        >>> reader = MlflowReader("sqlite:///mlflow.db")  # doctest: +SKIP
        >>> [run.name for run in reader.list_runs(["digits"])]  # doctest: +SKIP
        ['baseline', 'wide']
    """

    kind = "mlflow"

    def __init__(self, location: str) -> None:
        super().__init__(location)
        # Fail fast on a server that is down instead of MLflow's minutes of retries; a user's setting wins.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # Tracelet draws its own
        from mlflow.tracking import MlflowClient

        self.client: MlflowClient = MlflowClient(tracking_uri=location or None)

    def describe(self) -> str:
        return f"mlflow:{self.client.tracking_uri}"

    def list_runs(self, experiments: Collection[str] | None = None) -> list[SourceRun]:
        runs = []
        for experiment in self._experiments():
            if experiments is not None and experiment.name not in experiments:
                continue
            for run in self._runs(experiment.experiment_id):
                tags = tracelet_tags(run.data.tags)
                runs.append(
                    SourceRun(
                        key=f"mlflow:{run.info.run_id}",
                        native_id=run.info.run_id,
                        experiment=experiment.name,
                        name=run.info.run_name,
                        tags=tags,
                        start_time=run.info.start_time / 1000 if run.info.start_time else None,
                        end_time=run.info.end_time / 1000 if run.info.end_time else None,
                    )
                )
        return runs

    def read_run(self, run: SourceRun, scratch: Path, *, artifacts: bool = True) -> RunRecord:
        native = self.client.get_run(run.native_id)
        record = RunRecord(run=run, params=dict(native.data.params))
        for key in sorted(native.data.metrics):
            record.metrics.extend(self.metric_history(run, key))
        status = native.info.status
        record.status = _status(status)
        if status not in TERMINAL_STATUSES:
            record.notes.append(f"the run is {status} in MLflow; its copy ends as KILLED")
        inputs = getattr(native, "inputs", None)
        if inputs is not None and getattr(inputs, "dataset_inputs", None):
            record.notes.append(f"{len(inputs.dataset_inputs)} dataset input(s): MLflow-only, not copied")
        if artifacts:
            record.artifacts = self._download(run.native_id, scratch)
        return record

    def metric_history(self, run: SourceRun, key: str) -> list[MetricPoint]:
        history = self.client.get_metric_history(run.native_id, key)
        # MLflow does not keep the order points were logged in; (time, step) is the closest to it.
        history = sorted(history, key=lambda m: (m.timestamp, m.step))
        return [MetricPoint(key, float(m.value), int(m.step), m.timestamp / 1000) for m in history]

    def count(self, run: SourceRun) -> tuple[int, int]:
        """Points from the metric histories, files from the artifact listing (nothing is downloaded)."""
        record = self.read_run(run, Path("."), artifacts=False)
        return len(record.metrics), self._count_files(run.native_id, None)

    def _count_files(self, run_id: str, path: str | None) -> int:
        return sum(
            self._count_files(run_id, item.path) if item.is_dir else 1
            for item in self.client.list_artifacts(run_id, path)
        )

    def _experiments(self) -> Iterator[Any]:
        token = None
        while True:
            page = self.client.search_experiments(max_results=_PAGE, page_token=token)
            yield from page
            token = page.token
            if not token:
                return

    def _runs(self, experiment_id: str) -> Iterator[Any]:
        token = None
        while True:
            page = self.client.search_runs(
                [experiment_id], max_results=_PAGE, order_by=["attributes.start_time ASC"], page_token=token
            )
            yield from page
            token = page.token
            if not token:
                return

    def _download(self, run_id: str, scratch: Path) -> list[ArtifactRef]:
        if not self.client.list_artifacts(run_id):
            return []
        target = scratch / "mlflow-artifacts" / run_id
        target.mkdir(parents=True, exist_ok=True)
        root = Path(self.client.download_artifacts(run_id, "", dst_path=str(target)))
        return [
            ArtifactRef(str(path), path.relative_to(root).as_posix())
            for path in sorted(root.rglob("*"))
            if path.is_file()
        ]


def fetch_artifact(location: str, run_id: str, name: str, target: Path) -> None:
    """Download one artifact ``name`` of MLflow run ``run_id`` in the store at ``location`` to ``target``.

    ``location`` is stored without credentials; they come back from the environment (see
    :func:`~tracelet_core.pipeline.credentials.restore_credentials`).

    Raises:
        Exception: whatever MLflow raises when the store or the file cannot be reached.
    """
    import shutil
    import tempfile

    from tracelet_core.pipeline.credentials import restore_credentials
    from tracelet_core.pipeline.files import make_private_dir

    uri = restore_credentials({"mlflow": {"tracking_uri": location}})["mlflow"]["tracking_uri"]
    client = MlflowReader(uri).client
    make_private_dir(target.parent)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        downloaded = Path(client.download_artifacts(run_id, name, dst_path=scratch))
        shutil.move(str(downloaded), target)


def _status(status: str) -> RunStatus:
    for terminal in TERMINAL_STATUSES:
        if status == terminal:
            return terminal
    return "KILLED"


def destination(kind: str, location: str, options: dict[str, Any]) -> tuple[dict[str, Any], str | None, dict[str, str]]:
    """``tracelet migrate --to mlflow[:URI]``: the URI (else the settings') is written to and read back."""
    options["tracking_uri"] = location or options.get("tracking_uri")
    return options, f"mlflow:{options['tracking_uri'] or ''}", {}

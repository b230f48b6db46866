"""MLflow backend: experiments by name, ``log_batch`` in MLflow's chunk limits, artifacts, images.

The store is MLflow's own choice unless told otherwise: ``TRACELET_MLFLOW__TRACKING_URI``, else
``MLFLOW_TRACKING_URI``, else MLflow's default (MLflow 3: ``sqlite:///mlflow.db`` in the working
directory). Points carry the time they were logged, so re-sending a batch after a failure is
harmless: MLflow drops a point identical in key, step, timestamp and value.

MLflow's UI fields are filled from Tracelet's facts (see :mod:`.mapping`): ``mlflow.user``,
``mlflow.source.*``, and new experiments open in MLflow's "Model training" view. The metadata of
uploaded files (checkpoints: epoch, step, score, aliases) is one artifact, ``checkpoints/index.json``,
rewritten as checkpoints come and go, rather than tags per file.

What MLflow cannot take is sanitised once, with a warning: key characters outside
``[/\\w.\\- :]`` become ``_``; param values over 6000 and tag values over 8000 characters are
truncated with a marker; a param logged again with another value (MLflow params are immutable)
keeps its first value.

Opening is idempotent: every run carries the tag ``tracelet.run_id``, and a run opened without a
native id first looks for an active run of the experiment with that tag, so a delivery process
that died before recording the MLflow run id continues that run instead of making a second one.
A local SQLite store is created and migrated under :func:`~tracelet_core.locks.store_lock`: eight
runs starting at once on a new ``mlflow.db`` would otherwise race through MLflow's schema
migrations and leave it half-migrated. Errors are classified by their MLflow error code (see
:meth:`MlflowBackend.classify_error`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

from tracelet_core.collectors.git import strip_credentials
from tracelet_core.errors import ErrorKind, TrackerConfigurationError, warn_once
from tracelet_core.events import ArtifactRef, Batch, MediaItem, RunInfo, RunStatus
from tracelet_core.locks import store_lock
from tracelet_core.names import KeySanitizer, truncate
from tracelet_core.trackers.base import Backend, Capabilities, StagedFile
from tracelet_core.trackers.checkpoint_index import CHECKPOINT_INDEX, CheckpointIndex
from tracelet_core.trackers.mlflow.errors import classify, sqlite_file
from tracelet_core.trackers.mlflow.mapping import EXPERIMENT_KIND_TAG, MODEL_TRAINING, mlflow_tags

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

__all__ = ["MlflowBackend"]

# MLflow's limits (mlflow/utils/validation.py): one log_batch takes at most 1000 metrics,
# 100 params, 100 tags and 1000 entities in all.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
MAX_KEY_LENGTH = 250
RUN_ID_TAG = "tracelet.run_id"
_INVALID_KEY = re.compile(r"[^/\w.\- :]")
_INVALID_MEDIA_KEY = re.compile(r"[^a-zA-Z0-9_\-./ ]")
_T = TypeVar("_T")


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _path_safe(key: str) -> str:
    """MLflow also rejects names that change under path normalisation (``a//b``, ``/a``, ``..``)."""
    parts = [part if part not in (".", "..") else part.replace(".", "_") for part in key.split("/") if part]
    return "/".join(parts) or "_"


class MlflowBackend(Backend):
    """Sends a run to an MLflow tracking store (SQLite, a server, Databricks...)."""

    name = "mlflow"
    sdk_module = "mlflow"
    extra = "mlflow"
    capabilities = Capabilities(
        media=frozenset({"image", "text"}),
        artifacts=True,
        epoch_axis=False,
        max_key_length=MAX_KEY_LENGTH,
        max_param_length=MAX_PARAM_LENGTH,
        max_tag_length=MAX_TAG_LENGTH,
    )

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self._client: MlflowClient | None = None
        self._run_id = ""
        self._uri = ""
        self._artifact_uri = ""
        self._params: dict[str, str] = {}
        self._end_time: float | None = None
        self._index: CheckpointIndex | None = None  # read from the run's index.json when first needed
        self._keys = KeySanitizer(self.name, _INVALID_KEY, MAX_KEY_LENGTH)

    def open(self, run: RunInfo, native_id: str | None) -> str:
        """Create the MLflow run, or continue ``native_id`` (or the run tagged with this Tracelet run id).

        Raises:
            TrackerConfigurationError: the experiment is deleted.
        """
        import mlflow
        from mlflow.tracking import MlflowClient

        uri = self._uri = str(self.options.get("tracking_uri") or mlflow.get_tracking_uri())
        database = sqlite_file(uri)
        # MLflow creates and migrates a SQLite store when it first builds the client's store.
        with store_lock(database) if database is not None else contextlib.nullcontext():
            client = MlflowClient(tracking_uri=uri)
            existing = self._existing_run(client, native_id) if native_id else None
            experiment_id = existing.info.experiment_id if existing else self._experiment_id(client, run.experiment)
        existing = existing or self._tagged_run(client, experiment_id, run.run_id)
        self._end_time, self._index = run.end_time, None if existing is not None else CheckpointIndex()
        if existing is not None:
            self._params = dict(existing.data.params)
            if existing.info.status != "RUNNING":
                client.update_run(existing.info.run_id, status="RUNNING")
            self._run_id, self._artifact_uri = existing.info.run_id, existing.info.artifact_uri
        else:
            tags = {self._keys(k): truncate(v, MAX_TAG_LENGTH) for k, v in mlflow_tags(run.tags).items()}
            tags[RUN_ID_TAG] = run.run_id
            created = client.create_run(
                experiment_id, start_time=int(run.start_time * 1000), tags=tags, run_name=run.run_name
            )
            self._run_id, self._artifact_uri = created.info.run_id, created.info.artifact_uri
        self._client = client
        return self._run_id

    def _experiment_id(self, client: MlflowClient, name: str) -> str:
        """The id of the experiment ``name``, created when missing (another process may create it too)."""
        from mlflow.exceptions import MlflowException

        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            try:
                location = self.options.get("artifact_location")
                return str(client.create_experiment(name, location, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING}))
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            experiment = client.get_experiment_by_name(name)  # created meanwhile by another run
            if experiment is None:
                raise TrackerConfigurationError(f"MLflow refuses to create the experiment {name!r}.")
        if experiment.lifecycle_stage != "active":
            raise TrackerConfigurationError(
                f"The MLflow experiment {name!r} is deleted. Restore it (`mlflow experiments restore "
                f"--experiment-id {experiment.experiment_id}`) or log to another experiment name."
            )
        return str(experiment.experiment_id)

    def _existing_run(self, client: MlflowClient, native_id: str) -> Run | None:
        """The run to continue, or None (with a warning) when this store does not have it."""
        from mlflow.exceptions import MlflowException

        try:
            run = client.get_run(native_id)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        else:
            if run.info.lifecycle_stage == "active":
                return run
        warn_once(
            f"mlflow-missing-run:{native_id}",
            f"MLflow run {native_id} is not in {strip_credentials(str(client.tracking_uri))} (another store, or "
            "deleted); Tracelet continues the run in a new MLflow run.",
        )
        return None

    @staticmethod
    def _tagged_run(client: MlflowClient, experiment_id: str, run_id: str) -> Run | None:
        """An active run of the experiment already tagged with this Tracelet run id, or None."""
        quote = "'" if "'" not in run_id else '"'
        if quote in run_id:
            return None  # no quoting MLflow's filter grammar accepts; such ids are not Tracelet's own
        found = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{RUN_ID_TAG}` = {quote}{run_id}{quote}",
            max_results=1,
            order_by=["attributes.start_time DESC"],
        )
        return found[0] if found else None

    def write(self, batch: Batch) -> None:
        from mlflow.entities import Metric, Param, RunTag

        client = self._require_client()
        metrics = [
            Metric(_path_safe(self._keys(p.key)), p.value, int(p.timestamp * 1000), p.step or 0) for p in batch.metrics
        ]
        params = [Param(key, value) for key, value in self._new_params(batch.params).items()]
        tags = [RunTag(_path_safe(self._keys(key)), value) for key, value in mlflow_tags(batch.tags).items()]
        for metric_chunk in _chunks(metrics, MAX_METRICS_PER_BATCH):
            client.log_batch(self._run_id, metrics=list(metric_chunk), synchronous=True)
        for param_chunk in _chunks(params, MAX_PARAMS_TAGS_PER_BATCH):
            client.log_batch(self._run_id, params=list(param_chunk), synchronous=True)
        for tag_chunk in _chunks(tags, MAX_PARAMS_TAGS_PER_BATCH):
            client.log_batch(self._run_id, tags=list(tag_chunk), synchronous=True)
        self._params.update({p.key: p.value for p in params})

    def log_artifact(self, artifact: ArtifactRef) -> None:
        client = self._require_client()
        name = PurePosixPath(artifact.name)
        directory = str(name.parent) if str(name.parent) != "." else None
        with StagedFile(artifact.path, name.name) as staged:
            client.log_artifact(self._run_id, str(staged), artifact_path=directory)
        replaced = artifact.metadata.get("replaces")
        if replaced and replaced != artifact.name:
            self._delete_artifact(str(replaced), artifact.name)
        if artifact.metadata:
            index = self._checkpoint_index()
            index.add(artifact)
            client.log_text(self._run_id, index.to_json(), CHECKPOINT_INDEX)

    def _checkpoint_index(self) -> CheckpointIndex:
        """The run's checkpoint index: empty for a new run, else read once from its ``checkpoints/index.json``."""
        if self._index is None:
            text = None
            client = self._require_client()
            if any(f.path == CHECKPOINT_INDEX for f in client.list_artifacts(self._run_id, "checkpoints")):
                with tempfile.TemporaryDirectory(prefix="tracelet-index-") as scratch:
                    local = client.download_artifacts(self._run_id, CHECKPOINT_INDEX, scratch)
                    text = Path(local).read_text(encoding="utf-8")
            self._index = CheckpointIndex.from_json(text)
        return self._index

    def _delete_artifact(self, name: str, replaced_by: str) -> None:
        """Delete a file that a newer upload supersedes (the previous best checkpoint), where the store can.

        Never raises: the new file is in, and retrying would upload it again.
        """
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        client = self._require_client()
        try:
            get_artifact_repository(self._artifact_uri, tracking_uri=client.tracking_uri).delete_artifacts(name)
        except Exception as exc:
            warn_once(
                f"mlflow-replace:{type(exc).__name__}",
                f"MLflow keeps {name!r} although {replaced_by!r} replaces it: this artifact store did not "
                f"delete it ({type(exc).__name__}: {exc}).",
            )

    def log_media(self, item: MediaItem) -> None:
        client = self._require_client()
        if item.kind == "image" and item.path is not None:
            from PIL import Image

            key = _path_safe(_INVALID_MEDIA_KEY.sub("_", item.key))
            with Image.open(item.path) as image:
                image.load()
                client.log_image(
                    self._run_id, image, key=key, step=item.step or 0, timestamp=int(item.timestamp * 1000)
                )
        elif item.kind == "text":
            step = "" if item.step is None else f"-step{item.step:09d}"
            client.log_text(self._run_id, str(item.data.get("text", "")), f"tracelet/text/{item.key}{step}.txt")
        else:
            super().log_media(item)

    def close(self, status: RunStatus) -> None:
        client = self._require_client()
        end_time = None if self._end_time is None else int(self._end_time * 1000)
        if strip_credentials(self._uri) == self._uri:
            client.set_terminated(self._run_id, status=status, end_time=end_time)
        else:
            # Only with TRACELET_DELIVERY=thread (the delivery process gets MLflow's own credential variables
            # instead): set_terminated would print the run's URL, credentials included, to the user's terminal.
            from mlflow.entities import RunStatus as MlflowStatus
            from mlflow.utils.time import get_current_time_millis

            store = client._tracking_client.store
            ended = end_time or get_current_time_millis()
            store.update_run_info(self._run_id, MlflowStatus.from_string(status), ended, None)
        self._client = None

    @classmethod
    def prepare_delivery_process(cls, options: Mapping[str, Any]) -> None:
        """Tracelet retries failed calls itself; MLflow's own retries (7 by default, minutes of backoff) would
        only hold the worker. A user's explicit setting wins."""
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(options.get("http_timeout") or 30)))

    @classmethod
    def warm_up(cls, options: Mapping[str, Any]) -> None:
        """Import MLflow's client and its store for the tracking URI and, for a SQLite store, create or
        migrate the database now (under the store lock), so the end of a short run does not wait for it."""
        import mlflow
        from mlflow.tracking import MlflowClient

        uri = str(options.get("tracking_uri") or mlflow.get_tracking_uri())
        database = sqlite_file(uri)
        if database is not None:
            with store_lock(database):
                MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
        elif uri.startswith(("http://", "https://")):
            importlib.import_module("mlflow.store.tracking.rest_store")

    def location(self) -> str | None:
        """The tracking URI, without credentials (``http://user:pw@host`` gives ``http://host``)."""
        if self._client is None:
            return None
        return strip_credentials(str(self._client.tracking_uri))

    def classify_error(self, exc: BaseException, during: str) -> ErrorKind:
        """An MLflow error by its code, message and cause (see :func:`.errors.classify`)."""
        return classify(exc)

    def _require_client(self) -> MlflowClient:
        if self._client is None:
            raise RuntimeError("MlflowBackend used before open()")
        return self._client

    def _new_params(self, params: dict[str, str]) -> dict[str, str]:
        fresh: dict[str, str] = {}
        for raw_key, raw_value in params.items():
            key, value = _path_safe(self._keys(raw_key)), raw_value  # values fit MLflow's limits (Backend.fit)
            previous = self._params.get(key)
            if previous is None:
                fresh[key] = value
            elif previous != value:
                warn_once(
                    f"mlflow-param-changed:{key}",
                    f"MLflow params cannot change; {key!r} keeps {previous!r} (new value {value!r} is in "
                    "tracelet/config.yaml).",
                )
        return fresh

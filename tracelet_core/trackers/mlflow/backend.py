"""MLflow backend: experiments by name, ``log_batch`` in MLflow's chunk limits, artifacts, images.

The store is MLflow's own choice unless told otherwise: ``TRACELET_MLFLOW__TRACKING_URI``, else
``MLFLOW_TRACKING_URI``, else MLflow's default (MLflow 3: ``sqlite:///mlflow.db`` in the working
directory). Points carry the time they were logged, so re-sending a batch after a failure is
harmless: MLflow drops a point identical in key, step, timestamp and value.

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
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

from tracelet_core.collectors.git import strip_credentials
from tracelet_core.errors import ErrorKind, TrackerConfigurationError, warn_once
from tracelet_core.events import ArtifactRef, Batch, MediaItem, RunInfo, RunStatus
from tracelet_core.locks import store_lock
from tracelet_core.names import KeySanitizer, truncate
from tracelet_core.trackers.base import Backend, Capabilities, classify_common_error, staged_copy

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

# MLflow error codes (mlflow.protos.databricks_pb2) by what they mean for one delivery; any other
# code (INTERNAL_ERROR, TEMPORARILY_UNAVAILABLE, REQUEST_LIMIT_EXCEEDED, DEADLINE_EXCEEDED...) is
# transient. HTTP statuses arrive as codes too: 400 BAD_REQUEST, 401 UNAUTHENTICATED,
# 403 PERMISSION_DENIED, 404 ENDPOINT_NOT_FOUND, 429 RESOURCE_EXHAUSTED, 5xx INTERNAL_ERROR...
_PERMANENT_CODES = frozenset(
    {
        "BAD_REQUEST",
        "INVALID_PARAMETER_VALUE",
        "MALFORMED_REQUEST",
        "INVALID_STATE",
        "RESOURCE_ALREADY_EXISTS",
        "ALREADY_EXISTS",
        "RESOURCE_LIMIT_EXCEEDED",
        "MAX_BLOCK_SIZE_EXCEEDED",
        "MAX_LIST_SIZE_EXCEEDED",
    }
)
_CONFIGURATION_CODES = frozenset(
    {
        "UNAUTHENTICATED",
        "CUSTOMER_UNAUTHORIZED",
        "PERMISSION_DENIED",
        "RESOURCE_DOES_NOT_EXIST",  # the run or experiment was deleted for good
        "NOT_FOUND",
        "ENDPOINT_NOT_FOUND",  # a URI that is not an MLflow server (or a wrong path prefix)
        "NOT_IMPLEMENTED",
        "FEATURE_DISABLED",
        "QUOTA_EXCEEDED",
    }
)
# Messages whose code says less than they do (MLflow raises some with a generic code).
_CONFIGURATION_MESSAGES = (
    "must be in the 'active' state",  # a deleted run or experiment (INVALID_PARAMETER_VALUE)
    "out-of-date database schema",  # `mlflow db upgrade` needed (INTERNAL_ERROR)
    "readonly database",  # a SQLite file this process cannot write (TEMPORARILY_UNAVAILABLE)
)
_PERMANENT_MESSAGES = ("Invalid artifact path",)  # a name with `..` or a leading `/` (INTERNAL_ERROR)


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:`` tracking URI; None for any other store and in-memory SQLite.

    Example:
        >>> sqlite_file("sqlite:////tmp/mlflow.db"), sqlite_file("sqlite:///mlflow.db")
        (PosixPath('/tmp/mlflow.db'), PosixPath('mlflow.db'))
        >>> sqlite_file("http://127.0.0.1:5000"), sqlite_file("sqlite://")
        (None, None)
    """
    if not uri.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url  # an MLflow dependency
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(uri)
    except ArgumentError:
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from or during, innermost last (MLflow often drops ``from``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _classify_cause(exc: BaseException) -> ErrorKind | None:
    """The kind an underlying SQLAlchemy or requests error decides, or None."""
    import requests
    from sqlalchemy import exc as sql

    if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.InvalidURL):
        return ErrorKind.CONFIGURATION
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return ErrorKind.TRANSIENT
    if isinstance(exc, sql.IntegrityError | sql.DataError):
        return ErrorKind.PERMANENT  # a value the database refuses (too long, a broken constraint)
    if isinstance(exc, sql.OperationalError | sql.InterfaceError | sql.InternalError | sql.TimeoutError):
        return ErrorKind.TRANSIENT  # locked, disk I/O, connection lost, pool exhausted
    if isinstance(exc, sql.DatabaseError):
        return ErrorKind.CONFIGURATION  # "file is not a database", "database disk image is malformed"
    return None


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
        self._artifact_uri = ""
        self._params: dict[str, str] = {}
        self._keys = KeySanitizer(self.name, _INVALID_KEY, MAX_KEY_LENGTH)

    def open(self, run: RunInfo, native_id: str | None) -> str:
        """Create the MLflow run, or continue ``native_id`` (or the run tagged with this Tracelet run id).

        Raises:
            TrackerConfigurationError: the experiment is deleted.
        """
        # Tracelet retries failed calls itself; MLflow's own retries (7 by default, minutes of
        # backoff) would only hold the worker. A user's explicit setting wins.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(self.options.get("http_timeout") or 30)))
        import mlflow
        from mlflow.tracking import MlflowClient

        uri = str(self.options.get("tracking_uri") or mlflow.get_tracking_uri())
        if strip_credentials(uri) != uri:
            # Only with TRACELET_DELIVERY=thread (the delivery process gets MLflow's own credential
            # variables instead): MLflow would print the run's URL, credentials included, at its end.
            os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        database = sqlite_file(uri)
        # MLflow creates and migrates a SQLite store when it first builds the client's store.
        with store_lock(database) if database is not None else contextlib.nullcontext():
            client = MlflowClient(tracking_uri=uri)
            existing = self._existing_run(client, native_id) if native_id else None
            experiment_id = existing.info.experiment_id if existing else self._experiment_id(client, run.experiment)
        existing = existing or self._tagged_run(client, experiment_id, run.run_id)
        if existing is not None:
            self._params = dict(existing.data.params)
            if existing.info.status != "RUNNING":
                client.update_run(existing.info.run_id, status="RUNNING")
            self._run_id, self._artifact_uri = existing.info.run_id, existing.info.artifact_uri
        else:
            tags = {self._keys(k): truncate(v, MAX_TAG_LENGTH) for k, v in run.tags.items()}
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
                return str(client.create_experiment(name, artifact_location=self.options.get("artifact_location")))
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
        tags = [
            RunTag(_path_safe(self._keys(key)), self._limit(key, value, MAX_TAG_LENGTH, "tag"))
            for key, value in batch.tags.items()
        ]
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
        with staged_copy(artifact.path, name.name) as staged:
            client.log_artifact(self._run_id, str(staged), artifact_path=directory)
        if artifact.metadata:
            # Tracelet's own keys: made valid quietly (a checkpoint name has "="), lists joined.
            prefix = "tracelet.artifact." + _path_safe(_INVALID_KEY.sub("_", artifact.name))
            tags = {
                f"{prefix}.{_INVALID_KEY.sub('_', str(k))}": ",".join(map(str, v)) if isinstance(v, list) else str(v)
                for k, v in artifact.metadata.items()
            }
            self.write(Batch(tags=tags))
        replaced = artifact.metadata.get("replaces")
        if replaced and replaced != artifact.name:
            self._delete_artifact(str(replaced), artifact.name)

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
        client.set_terminated(self._run_id, status=status)
        self._client = None

    def location(self) -> str | None:
        """The tracking URI, without credentials (``http://user:pw@host`` gives ``http://host``)."""
        if self._client is None:
            return None
        return strip_credentials(str(self._client.tracking_uri))

    def classify_error(self, exc: BaseException, during: str) -> ErrorKind:
        """An MLflow error by its code, message and cause; anything else as :func:`classify_common_error`.

        Example:
            >>> from mlflow.exceptions import MlflowException
            >>> from mlflow.protos import databricks_pb2 as codes
            >>> def kind(code: int) -> str:
            ...     return MlflowBackend().classify_error(MlflowException("refused", error_code=code), "batch").value
            >>> kind(codes.INVALID_PARAMETER_VALUE), kind(codes.PERMISSION_DENIED), kind(codes.TEMPORARILY_UNAVAILABLE)
            ('permanent', 'configuration', 'transient')
        """
        from mlflow.exceptions import MlflowException

        mlflow_error = exc if isinstance(exc, MlflowException) else None
        if mlflow_error is not None:
            if any(text in mlflow_error.message for text in _CONFIGURATION_MESSAGES):
                return ErrorKind.CONFIGURATION
            if any(text in mlflow_error.message for text in _PERMANENT_MESSAGES):
                return ErrorKind.PERMANENT
        for cause in _causes(exc):  # a database or HTTP error MLflow wrapped says more than its code
            kind = _classify_cause(cause)
            if kind is not None:
                return kind
        if mlflow_error is None:
            return classify_common_error(exc)
        if mlflow_error.error_code in _CONFIGURATION_CODES:
            return ErrorKind.CONFIGURATION
        if mlflow_error.error_code in _PERMANENT_CODES:
            return ErrorKind.PERMANENT
        return ErrorKind.TRANSIENT

    def _require_client(self) -> MlflowClient:
        if self._client is None:
            raise RuntimeError("MlflowBackend used before open()")
        return self._client

    def _limit(self, key: str, value: str, limit: int, what: str) -> str:
        if len(value) > limit:
            warn_once(
                f"mlflow-long-{what}:{key}",
                f"MLflow keeps at most {limit} characters of a {what} value; {key!r} ({len(value)} characters) "
                "is truncated there (the full value is in tracelet/config.yaml).",
            )
        return truncate(value, limit)

    def _new_params(self, params: dict[str, str]) -> dict[str, str]:
        fresh: dict[str, str] = {}
        for raw_key, raw_value in params.items():
            key = _path_safe(self._keys(raw_key))
            value = self._limit(raw_key, raw_value, MAX_PARAM_LENGTH, "param")
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

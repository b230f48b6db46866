"""ClearML backend: one ClearML Task per Tracelet run, online or in offline mode.

How Tracelet's events map onto ClearML:

- Metrics become scalars. The key is split at its last ``/``: ``train/loss`` is title ``train``,
  series ``loss``; ``a/b/c`` is title ``a/b``, series ``c``; a key without ``/`` (``val_acc``) is
  both title and series. The step is the iteration. A point without a step, and a system metric
  (whose step is a sample index, not a training iteration), is plotted at the whole number of
  seconds since the run started, so a re-delivered point lands on
  the same iteration. ClearML stores NaN and ±inf as 0.0, so such points are skipped with one
  warning per key; the journal keeps them.
- Params are connected as the ``hyperparameters`` section. They arrive flattened with ``/``, which
  is exactly how ClearML stores a nested dict, so they are connected as they are (no re-nesting, no
  clash between ``a`` and ``a/b``); ``task.get_parameters_as_dict()`` gives the nested dict back.
- Tags are stored twice: every tag as a user property (key and value, filterable in the UI), and
  as a ClearML tag ``key:value`` (``key`` alone for an empty value), except Tracelet's own
  high-cardinality facts under ``git.``, ``env.`` and ``tracelet.``, which would flood the
  project's tag list. A tag whose value changes replaces its old ClearML tag.
- Files go through ``upload_artifact`` under their Tracelet name; images and texts are debug
  samples (``report_image`` / ``report_media``, history unlimited), histograms are plots.
- Re-delivery is harmless: the ClearML server keys scalar, plot and debug-sample events by
  (task, iteration, title, series), so a re-sent point overwrites itself. An offline session
  holds the duplicate events until it is imported (``Task.import_offline_session(<zip>)``), where
  they collapse the same way. For the same reason, two step-less points of one key within the
  same second keep only the later one.
- ``close`` writes the status as the user property ``tracelet.status`` (the only record in an
  offline session, whose import always marks the task completed), closes the task, then sets the
  server status: completed, failed or stopped.

What Tracelet changes in the SDK, process-wide, before ``Task.init``:

- ``sdk.development.report_use_subprocess`` is forced off. With the subprocess reporter (ClearML's
  Linux default) 10k scalars took 16 s to report and ``close()`` waited seconds to minutes for
  it; the delivery process is already off the training thread. It is set on the ``Task`` class, not through a
  generated ``CLEARML_CONFIG_FILE``, because that variable replaces the user's ``clearml.conf``
  (server and credentials) and ClearML reads its configuration once per process.
- No framework binding, argparse capture, stream capture or resource monitor (Tracelet captures
  all of these itself), no repository detection (it would describe the delivery process, not the
  training script; Tracelet records git itself), and with it no package-update request; the
  update check is also marked done in case a later release moves it.
- No random seeding (``Task.init`` would reseed the process) and no UI "abort" watchdog (it ends
  the whole delivery process with ``os._exit``).

Resuming: ``open(run, native_id)`` continues the task with ``continue_last_task`` and resets the
iteration offset ClearML adds, so steps are never renumbered. Online this needs the task on the
server. Offline it needs the session folder ``<CLEARML_CACHE_DIR>/offline/<id>`` on this machine,
not yet imported: new events are appended to it and its zip is rewritten on close. When the
session is gone, a new task is created (with a warning) and its id returned.

Opening again without a native id (a delivery process that died before the journal recorded the
task id) continues the task carrying the system tag ``tracelet.run_id:<run id>``, set right after
``Task.init``: online the server is asked for it (``Task.query_tasks``); offline, where ClearML can
look nothing up, the session folders on this machine written since the run started are read
(``task.json``). Limits: a task whose process died between ``Task.init`` and the tag (a few
milliseconds) is not found, and offline only sessions in this ``CLEARML_CACHE_DIR`` count.

What ClearML must not copy: argparse capture is off (``auto_connect_arg_parser=False``), and with
it ClearML's environment logging (``log_os_environments`` / ``CLEARML_LOG_ENVIRONMENT``), which
would copy the delivery process's environment, credentials included; only ``sys.argv[0]`` is kept.

Limits: ClearML keeps one ``Task.init`` task per process, so one ClearML run at a time per
process; closing an offline session zips the whole folder, artifacts included. The process-wide
changes above are made in Tracelet's delivery process (:meth:`ClearMLBackend.prepare_delivery_process`).
ClearML has no per-task form of them, so with ``TRACELET_DELIVERY=thread`` they, and ClearML's fork
hook (active while a task is open), apply to the training process too, and Tracelet says so once.
"""

from __future__ import annotations

import io
import itertools
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from tracelet_core.errors import (
    BackendError,
    ErrorKind,
    PermanentDeliveryError,
    TrackerConfigurationError,
    warn_once,
)
from tracelet_core.events import ArtifactRef, Batch, MediaItem, MetricPoint, RunInfo, RunStatus, is_system_metric
from tracelet_core.trackers.base import Backend, Capabilities, StagedFile
from tracelet_core.trackers.clearml.errors import classify
from tracelet_core.trackers.clearml.mapping import (
    PARAMS_SECTION,
    RUN_ID_TAG,
    STATUS_PROPERTY,
    split_metric_key,
    tag_label,
)
from tracelet_core.trackers.clearml.sdk import NO_AUTO_CONNECT, offline_from_env, prepare_sdk

if TYPE_CHECKING:
    from clearml import Task

__all__ = ["ClearMLBackend"]

_STATUS_REASON = "set by Tracelet"


class ClearMLBackend(Backend):
    """Sends a run to ClearML (a server, or an offline session folder).

    Options (``settings.clearml``): ``project`` (default: the experiment), ``offline`` (default:
    ``CLEARML_OFFLINE_MODE``), ``task_type`` (default ``training``).

    Example:
        >>> backend = ClearMLBackend({"offline": True})
        >>> info = RunInfo("r1", "digits", "baseline", {"team": "vision"}, 0.0, "/tmp/r1")
        >>> task_id = backend.open(info, None)  # doctest: +SKIP
        >>> backend.write(Batch(metrics=[MetricPoint("train/loss", 0.5, 1, 0.0)]))  # doctest: +SKIP
        >>> backend.close("FINISHED")  # doctest: +SKIP
    """

    name: ClassVar[str] = "clearml"
    sdk_module: ClassVar[str | None] = "clearml"
    extra: ClassVar[str | None] = "clearml"
    capabilities: ClassVar[Capabilities] = Capabilities(
        media=frozenset({"image", "histogram", "text"}), artifacts=True, epoch_axis=False
    )

    _sdk_prepared: ClassVar[bool] = False  # prepare_delivery_process ran in this process

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self._task: Task | None = None
        self._offline = False
        self._start_time = 0.0
        self._location: str | None = None
        self._task_closed = False

    def open(self, run: RunInfo, native_id: str | None) -> str:
        """Create the ClearML task (or continue ``native_id``) and return its id.

        Args:
            run: the run's names, tags and start time.
            native_id: the task id returned by an earlier ``open`` of this run, when resuming.

        Returns:
            The task id (``offline-<hex>`` in offline mode).

        Raises:
            TrackerConfigurationError: the task type is unknown, or ClearML has no server configured online.
        """
        from clearml import Task

        task_type = str(self.options.get("task_type") or "training")
        if task_type not in Task.TaskTypes.__members__:
            raise TrackerConfigurationError(
                f"TRACELET_CLEARML__TASK_TYPE={task_type!r} is not a ClearML task type; "
                f"allowed: {', '.join(Task.TaskTypes.__members__)}"
            )
        offline = self.options.get("offline")
        self._offline = offline_from_env() if offline is None else bool(offline)
        if not ClearMLBackend._sdk_prepared:  # delivering from a thread of the user's process
            warn_once(
                "clearml-thread",
                "ClearML's settings are process-wide: with TRACELET_DELIVERY=thread Tracelet turns off ClearML's "
                "subprocess reporter, its update check, its abort watchdog and its random seeding in this process.",
            )
            ClearMLBackend.prepare_delivery_process(self.options)
        project = str(self.options.get("project") or run.experiment)
        resume_id, task = self._init_task(Task, run, native_id, project, task_type)
        marker = RUN_ID_TAG + run.run_id
        system_tags = list(task.get_system_tags() or [])
        if marker not in system_tags:
            task.set_system_tags([*system_tags, marker])
        if resume_id:
            # continue_last_task offsets every later iteration past the last one; steps are kept as logged.
            task.set_initial_iteration(0)
        self._task = task
        self._start_time = run.start_time
        folder = task.get_offline_mode_folder() if self._offline else None
        self._location = str(folder) if folder else task.get_output_log_web_page()
        self._set_tags(run.tags)
        return str(task.id)

    @classmethod
    def prepare_delivery_process(cls, options: Mapping[str, Any]) -> None:
        """ClearML's process-wide settings (see :mod:`.sdk`), once per process."""
        from clearml import Task

        prepare_sdk(Task)
        ClearMLBackend._sdk_prepared = True

    def _init_task(
        self, task_cls: type[Task], run: RunInfo, native_id: str | None, project: str, task_type: str
    ) -> tuple[str | None, Task]:
        """``Task.init`` in this backend's mode; the task continued (or None) and the task."""
        from clearml.backend_api.session.defs import MissingConfigError

        # Offline mode is process-wide in ClearML: a failed open must not leave it switched, or the
        # reporter of another task in this process starts sending to a server that is not there.
        was_offline = task_cls.is_offline()
        try:
            task_cls.set_offline(self._offline)
            resume_id = self._resumable(native_id) or self._tagged_task(task_cls, project, run)
            task: Task = task_cls.init(
                project_name=project,
                task_name=run.run_name or run.run_id,
                task_type=task_type,
                reuse_last_task_id=False,
                continue_last_task=resume_id or False,
                auto_connect_frameworks=NO_AUTO_CONNECT,
                auto_connect_arg_parser=False,
                auto_resource_monitoring=False,
                auto_connect_streams=False,
            )
        except MissingConfigError as exc:
            task_cls.set_offline(was_offline)
            raise TrackerConfigurationError(
                f"ClearML has no server configured ({exc}). Run `clearml-init`, set CLEARML_API_HOST and "
                "credentials, or record offline with TRACELET_CLEARML__OFFLINE=true."
            ) from exc
        except BaseException:
            task_cls.set_offline(was_offline)
            raise
        if not isinstance(task, task_cls):
            raise TrackerConfigurationError(
                f"ClearML's Task.init returned {type(task).__name__}, not a task; see the delivery log"
            )
        return resume_id, task

    def _resumable(self, native_id: str | None) -> str | None:
        if not native_id or not self._offline:
            return native_id
        from clearml.config import get_offline_dir

        if (get_offline_dir(task_id=native_id) / "task.json").is_file():
            return native_id
        warn_once(
            f"clearml-resume:{native_id}",
            f"The ClearML offline session {native_id!r} is not in {get_offline_dir()} (imported, moved, or "
            "another CLEARML_CACHE_DIR); Tracelet continues the run in a new ClearML task.",
        )
        return None

    def _tagged_task(self, task_cls: type[Task], project: str, run: RunInfo) -> str | None:
        """The id of a task already tagged with this Tracelet run id (see the module docstring), or None."""
        marker = RUN_ID_TAG + run.run_id
        if not self._offline:
            found = task_cls.query_tasks(
                project_name=project, task_filter={"system_tags": [marker], "order_by": ["-last_update"]}
            )
            return str(found[0]) if found else None
        from clearml.config import get_offline_dir

        for session in Path(get_offline_dir()).glob("offline-*/task.json"):
            try:
                if session.stat().st_mtime < run.start_time - 60:  # written before this run started
                    continue
                if marker in (json.loads(session.read_text()).get("system_tags") or []):
                    return session.parent.name
            except (OSError, ValueError):
                continue  # a session being written, or removed meanwhile
        return None

    def write(self, batch: Batch) -> None:
        """Record params, tags and scalars, then wait until ClearML has written or sent them."""
        task = self._require_task()
        if batch.params:
            task.connect(dict(batch.params), name=PARAMS_SECTION)
        if batch.tags:
            self._set_tags(batch.tags)
        if batch.metrics:
            logger = task.get_logger()
            for point in batch.metrics:
                if not math.isfinite(point.value):
                    warn_once(
                        f"nonfinite:clearml:{point.key}",
                        f"ClearML stores NaN and infinite values as 0.0; Tracelet skips such points of "
                        f"{point.key!r} there (the journal keeps them).",
                    )
                    continue
                title, series = split_metric_key(point.key)
                logger.report_scalar(title, series, point.value, iteration=self._iteration(point))
        # The caller acknowledges the batch when write returns: make that true on disk / server.
        task.flush(wait_for_uploads=True)

    def _iteration(self, point: MetricPoint | MediaItem) -> int:
        if point.step is not None and not (isinstance(point, MetricPoint) and is_system_metric(point.key)):
            return point.step
        return max(0, int(point.timestamp - self._start_time))

    def _set_tags(self, tags: dict[str, str]) -> None:
        if not tags:
            return
        task = self._require_task()
        task.set_user_properties(**{key: str(value) for key, value in tags.items()})
        current = list(task.get_tags() or [])
        kept = [t for t in current if not any(t == k or t.startswith(f"{k}:") for k in tags)]
        labels = [label for k, v in tags.items() if (label := tag_label(k, str(v))) is not None]
        wanted = kept + [label for label in labels if label not in kept]
        if sorted(wanted) != sorted(current):
            task.set_tags(wanted)

    def log_artifact(self, artifact: ArtifactRef) -> None:
        """Upload a file under ``artifact.name`` and wait for the upload.

        Raises:
            PermanentDeliveryError: the file does not exist (retrying will not bring it back).
            RuntimeError: ClearML reported a failed upload (retried by the caller).
        """
        task = self._require_task()
        source = Path(artifact.path)
        if not source.exists():
            raise PermanentDeliveryError(f"Artifact file {artifact.path!r} ({artifact.name!r}) does not exist.")
        # ClearML shows metadata as strings; lists and dicts read better as JSON than as repr().
        metadata = {
            str(k): v if isinstance(v, str | int | float | bool) else json.dumps(v, default=str)
            for k, v in artifact.metadata.items()
        }
        filename = Path(artifact.name).name
        if source.is_dir() or source.name == filename:
            ok = self._upload(task, artifact.name, source, metadata)
        else:
            # ClearML names the stored file after the local one; the Tracelet name must win.
            with StagedFile(source, filename) as staged:
                ok = self._upload(task, artifact.name, staged, metadata)
        if not ok:
            raise RuntimeError(f"ClearML failed to upload the artifact {artifact.name!r} from {artifact.path!r}")

    @staticmethod
    def _upload(task: Task, name: str, path: Path, metadata: dict[str, Any]) -> bool:
        return bool(task.upload_artifact(name, artifact_object=path, metadata=metadata or None, wait_on_upload=True))

    def log_media(self, item: MediaItem) -> None:
        """Report an image or text as a debug sample, a histogram as a bar plot."""
        task = self._require_task()
        logger = task.get_logger()
        title, series = split_metric_key(item.key)
        iteration = self._iteration(item)
        if item.kind == "image":
            if item.path is None:
                raise PermanentDeliveryError(f"Image {item.key!r} at step {item.step} has no file path.")
            logger.report_image(title, series, iteration=iteration, local_path=item.path, max_image_history=-1)
        elif item.kind == "histogram":
            bins = [float(b) for b in item.data["bins"]]
            centers = [f"{(lo + hi) / 2:.6g}" for lo, hi in itertools.pairwise(bins)]
            logger.report_histogram(
                title,
                series,
                values=list(item.data["counts"]),
                iteration=iteration,
                xlabels=centers,
                xaxis="value",
                yaxis="count",
            )
        else:
            text = str(item.data.get("text", ""))
            logger.report_media(
                title,
                series,
                iteration=iteration,
                stream=io.StringIO(text),
                file_extension=".txt",
                max_history=-1,
            )
        task.flush(wait_for_uploads=True)

    def close(self, status: RunStatus) -> None:
        """Record ``status``, close the task and set its ClearML status (safe to call again on retry)."""
        task = self._task
        if task is None:
            return
        if not self._task_closed:
            task.set_user_properties(**{STATUS_PROPERTY: status})
            # close() ends the reporting threads and (online) sets a status from ClearML's own exit
            # hooks; the explicit, forced status afterwards is the one that counts.
            task.close()
            self._task_closed = True
        if not self._offline:
            if status == "FINISHED":
                task.mark_completed(ignore_errors=False, force=True)
            elif status == "FAILED":
                task.mark_failed(ignore_errors=False, force=True, status_reason=_STATUS_REASON)
            else:
                task.stopped(ignore_errors=False, force=True, status_reason=_STATUS_REASON)
        self._task = None
        self._task_closed = False

    def location(self) -> str | None:
        """The offline session folder, or the task's page on the ClearML web app."""
        return self._location

    def classify_error(self, exc: BaseException, during: str) -> ErrorKind:
        """ClearML's errors by type and status (see :func:`.errors.classify`)."""
        return classify(exc)

    def _require_task(self) -> Task:
        if self._task is None:
            raise BackendError("The ClearML backend was used before open() or after close().")
        return self._task

"""The Aim backend: one Tracelet run is one ``aim.Run`` in a local (or ``aim://``) repository.

How Tracelet's events land in Aim:

- Metrics: a key ``train/<name>``, ``val/<name>`` or ``test/<name>`` becomes the sequence ``<name>``
  with context ``{"subset": "train"|"val"|"test"}``, the same grouping Aim's own ``AimLogger``
  uses, so Aim's UI overlays train and val curves. Every other key keeps its name, with an empty
  context (``val_acc`` and ``system/cpu_percent`` stay as they are). See :func:`sequence_of`.
- ``epoch`` is Aim's native epoch axis, not a metric: each point carries the latest epoch value.
  Lightning appends ``epoch`` after the metrics of the same ``log_metrics`` call, so an ``epoch``
  point also applies to the points just before it with the same step and timestamp, even when a
  batch boundary falls between them (those points are tracked again, overwriting their step).
- Points keep the time they were logged, not the time they were delivered, so Aim's time axis is
  right although delivery comes in batches (this uses Aim's internal tracker; see ``_send``).
- Re-delivery is harmless: a point with a step overwrites that step; a point without one (system
  metrics) takes Aim's next step and is skipped when it is not newer than the sequence's last one.
- Params become the nested dict ``run["hparams"]`` (``optimizer/lr`` -> ``{"optimizer": {"lr": ..}}``)
  with ints, floats and bools restored from their strings, so Aim's param queries compare numbers.
- Tags are Aim tags ``"key:value"`` (``"key"`` when the value is empty); all tags, the Tracelet run
  id, the epoch, the checkpoint index (see :mod:`~tracelet_core.trackers.checkpoint_index`) and the
  final status are also kept under ``run["tracelet"]``.
- Files go to ``options["artifacts_uri"]``, by default ``file://<repo>/aim-artifacts/<run hash>/``;
  Aim's record of a file points at that copy, not at the temporary file it was uploaded from.
- Times: a new run starts at the Tracelet run's start, and a run copied by ``tracelet migrate`` ends
  when its source ended (see :mod:`.native`).
- Aim has no run status: a FAILED or KILLED run gets the tag ``tracelet.status:<STATUS>``; a
  FINISHED one is reported to Aim as successfully finished.
- Opening: a local repository is created (or opened) and the run made under
  :func:`~tracelet_core.locks.store_lock`, as runs starting at once on a new repository otherwise
  fail ("out of date": one process reads it half-made). Opened without a native id (a delivery
  process that died before the journal recorded the hash), the backend continues the unfinished
  run of the repository whose ``tracelet.run_id`` is this run's. Aim's index does not hold
  unfinished runs and ``aim.Run`` cannot read them read-only, so the candidates (``meta/progress``,
  touched since the run started) are read from their own chunk, read-only: milliseconds each. A
  finished run is not looked for (its id was recorded when it was opened), nor are runs of a remote
  (``aim://``) repository.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tracelet_core.errors import BackendError, ErrorKind, TrackerConfigurationError, warn_once
from tracelet_core.events import ArtifactRef, Batch, MediaItem, MetricPoint, RunInfo, RunStatus
from tracelet_core.locks import store_lock
from tracelet_core.names import KeySanitizer
from tracelet_core.trackers.aim.errors import classify
from tracelet_core.trackers.aim.mapping import (
    EPOCH_KEY,
    STATUS_TAG,
    distribution,
    sequence_of,
    tag_label,
    unflatten_params,
)
from tracelet_core.trackers.aim.native import lasting_artifact, set_creation_time, set_end_time
from tracelet_core.trackers.aim.repository import local_repo, unfinished_run
from tracelet_core.trackers.base import Backend, Capabilities
from tracelet_core.trackers.checkpoint_index import CheckpointIndex

__all__ = ["AimBackend"]

# Aim stores any name, but an empty one breaks reading the run back, and control characters
# cannot be typed into Aim's query box.
_INVALID_NAME = re.compile(r"[\x00-\x1f\x7f]")
# Runs open in this process, by Tracelet run id. The delivery worker makes a new backend for each
# attempt to open; an attempt that failed after creating its run leaves it open (and locked by this
# very process, which Aim would refuse), so the next attempt continues that run object.
_open_runs: dict[str, Any] = {}


class AimBackend(Backend):
    """Delivers a Tracelet run to Aim (``pip install "tracelet-lightning[aim]"``).

    Args:
        options: ``settings.aim`` as a dict: ``repo`` (path or ``aim://host:port``; None: Aim's
            default, the nearest ``.aim`` above the working directory, else a new one in it) and
            ``artifacts_uri`` (where files are copied; see the module docstring).

    Example:
        >>> backend = AimBackend({"repo": "/tmp/aim-demo"})
        >>> run_hash = backend.open(RunInfo("r1", "digits", None, {}, 0.0, "/tmp"), None)  # doctest: +SKIP
        >>> backend.write(Batch(metrics=[MetricPoint("train/loss", 0.5, 1, 0.0)]))  # doctest: +SKIP
        >>> backend.close("FINISHED")  # doctest: +SKIP
    """

    name = "aim"
    sdk_module = "aim"
    extra = "aim"
    capabilities = Capabilities(media=frozenset({"image", "histogram", "text"}), epoch_axis=True)

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self._run: Any = None  # aim.Run
        self._run_id = ""  # the Tracelet run id of self._run
        self._keeps_time = False
        self._resumed = False
        self._epoch: int | None = None
        self._tail: list[MetricPoint] = []
        self._hparams: dict[str, Any] = {}
        self._index = CheckpointIndex()
        self._end_time: float | None = None
        self._tags: dict[str, str] = {}
        self._last_auto_time: dict[tuple[str, str, str | None], float] = {}
        self._names = KeySanitizer(self.name, _INVALID_NAME)

    def open(self, run: RunInfo, native_id: str | None) -> str:
        """Create the Aim run, or re-open the run whose hash is ``native_id``; return its hash.

        Without ``native_id``, an unfinished run of this Tracelet run is continued (see the module
        docstring); a ``native_id`` missing from the repository is continued in a new run, with a warning.

        Raises:
            TrackerConfigurationError: the repository was made by an older Aim version.
        """
        if self._run is not None and native_id not in (None, self._run.hash):
            self._release()
        if self._run is None:  # else a retried open: keep the run the failed attempt created
            live = _open_runs.get(run.run_id)
            if live is not None and native_id in (None, live.hash):
                self._use(live, run.run_id, resumed=True)  # left open by an earlier attempt's backend
            else:
                self._start(run, native_id)
        aim_run = self._run
        self._end_time = run.end_time
        if run.run_name and not (self._resumed and aim_run.name):  # a continued run keeps its name
            aim_run.name = run.run_name
        self._write_tags(run.tags)
        return str(aim_run.hash)

    def _start(self, run: RunInfo, native_id: str | None) -> None:
        from aim.sdk.repo import Repo, RepoStatus
        from aim.sdk.utils import get_aim_repo_name

        repo = self.options.get("repo") or None
        local = local_repo(repo)
        if local is None:
            self._create(run, native_id, repo)
            return
        aim_dir = local / get_aim_repo_name()
        with store_lock(aim_dir):  # creating a repository (and its SQLite index) is not safe to race
            if Repo.check_repo_status(str(local)) == RepoStatus.UPDATE_REQUIRED:
                raise TrackerConfigurationError(
                    f"The Aim repository {str(local)!r} was made by an older Aim version, which this one "
                    "cannot write. Point TRACELET_AIM__REPO at another directory (`aim init` would "
                    "re-create this one, without its runs)."
                )
            native_id = native_id or unfinished_run(aim_dir, run.run_id, since=run.start_time - 60)
            self._create(run, native_id, str(local))

    def _create(self, run: RunInfo, native_id: str | None, repo: str | None) -> None:
        import aim
        from aim.sdk.errors import MissingRunError

        options: dict[str, Any] = {
            "repo": repo,
            "experiment": run.experiment,
            "system_tracking_interval": None,  # Tracelet's collectors measure the system
            "log_system_params": False,  # would record every env var, and needs pkg_resources
            "capture_terminal_logs": False,
        }
        try:
            aim_run = aim.Run(native_id, **options)
        except MissingRunError:
            # Retrying cannot make the run appear (deleted, another repository, a checkpoint from
            # another machine): go on in a new run rather than hold the delivery forever.
            warn_once(
                f"aim-missing-run:{native_id}",
                f"Aim run {native_id!r} is not in the Aim repository {repo or '(default)'!r} (deleted, or "
                "another repository); Tracelet continues the run in a new Aim run. Point TRACELET_AIM__REPO "
                "at the repository that holds it to continue that one.",
            )
            native_id = None
            aim_run = aim.Run(None, **options)
        aim_run["tracelet", "run_id"] = run.run_id  # first: what finds this run again (see _unfinished_run)
        if native_id is None:
            set_creation_time(aim_run, run.start_time)
        _open_runs[run.run_id] = aim_run
        self._use(aim_run, run.run_id, resumed=native_id is not None)

    def _use(self, aim_run: Any, run_id: str, resumed: bool) -> None:
        """Write into ``aim_run`` from now on, with the state it holds (tags, epoch, params)."""
        self._run, self._run_id, self._resumed = aim_run, run_id, resumed
        stored = aim_run.get("tracelet") or {}
        self._tags = dict(stored.get("tags") or {})
        self._epoch = stored.get("epoch")
        self._tail = []
        self._hparams = aim_run.get("hparams") or {}
        checkpoints = stored.get("checkpoints")
        self._index = CheckpointIndex(checkpoints if isinstance(checkpoints, dict) else None)
        self._last_auto_time.clear()
        self._set_artifacts_uri(aim_run)
        tracker_track = getattr(getattr(aim_run, "_tracker", None), "_track", None)
        self._keeps_time = tracker_track is not None and "track_time" in inspect.signature(tracker_track).parameters
        if not self._keeps_time:
            warn_once(
                "aim-track-time",
                "This Aim version does not let Tracelet set a point's time; Aim shows delivery times.",
            )

    def _set_artifacts_uri(self, aim_run: Any) -> None:
        uri = self.options.get("artifacts_uri")
        if not uri and aim_run.artifacts_uri is None and not aim_run.repo.is_remote_repo:
            uri = (Path(aim_run.repo.root_path) / "aim-artifacts").as_uri()
        if uri:
            aim_run.set_artifacts_uri(uri)

    def write(self, batch: Batch) -> None:
        """Record a batch: params into ``hparams``, tags as Aim tags, metrics as sequences."""
        self._require_run()
        if batch.params:
            self._hparams = unflatten_params(batch.params, self._hparams)
            self._run["hparams"] = self._hparams  # whole dict: Aim corrupts a leaf given children
        if batch.tags:
            self._write_tags(batch.tags)
        if batch.metrics:
            self._write_metrics(batch.metrics)

    def _write_tags(self, tags: Mapping[str, str]) -> None:
        if not tags:
            return
        aim_run = self._run
        present = set(aim_run.tags)
        for key, value in tags.items():
            old = self._tags.get(key)
            if old is not None and old != value and tag_label(key, old) in present:
                aim_run.remove_tag(tag_label(key, old))
            if tag_label(key, value) not in present:
                aim_run.add_tag(tag_label(key, value))
            self._tags[key] = value
        aim_run["tracelet", "tags"] = dict(self._tags)

    def _write_metrics(self, points: Iterable[MetricPoint]) -> None:
        # `call` gathers the points of one log_metrics call (same step and timestamp); it starts with
        # the previous batch's last call, already tracked, in case this batch opens with its epoch.
        # Epoch and tail are committed only at the end, so a retried batch is tracked the same way.
        epoch, call, pending = self._epoch, list(self._tail), False
        for point in points:
            if call and (point.step, point.timestamp) != (call[0].step, call[0].timestamp):
                if pending:
                    self._track_points(call, epoch)
                call, pending = [], False
            if point.key == EPOCH_KEY:
                if math.isfinite(point.value):
                    epoch = int(point.value)
                self._track_points(call, epoch)
                call, pending = [], False
            else:
                call.append(point)
                pending = True
        if pending:
            self._track_points(call, epoch)
        self._tail = call
        if epoch != self._epoch:
            self._run["tracelet", "epoch"] = epoch
            self._epoch = epoch

    def _track_points(self, points: list[MetricPoint], epoch: int | None) -> None:
        for point in points:
            self._track("metric", point.key, float(point.value), point.timestamp, point.step, epoch)

    def _track(self, kind: str, key: str, value: Any, when: float, step: int | None, epoch: int | None) -> None:
        name, context = sequence_of(key)
        name = self._names(name)
        sequence = (kind, name, context.get("subset"))
        if step is None and when <= self._auto_time(sequence, context):
            return  # already delivered: a step-less point has no step to overwrite
        self._send(value, when, name, step, epoch, context)
        if step is None:
            self._last_auto_time[sequence] = when

    def _send(
        self, value: Any, when: float, name: str, step: int | None, epoch: int | None, context: dict[str, str]
    ) -> None:
        if self._keeps_time:
            # Run.track stamps "now"; its worker, RunTracker._track, takes the time as an argument.
            self._run._tracker._track(value, when, name, step, epoch, context=context)
        else:
            self._run.track(value, name=name, step=step, epoch=epoch, context=context)

    def _auto_time(self, sequence: tuple[str, str, str | None], context: dict[str, str]) -> float:
        """Time of the newest point of a sequence: remembered, or read once from a resumed run."""
        known = self._last_auto_time.get(sequence)
        if known is not None:
            return known
        known = -math.inf
        if self._resumed and self._keeps_time:
            from aim.storage.context import Context

            kind, name, _ = sequence
            getter = {
                "metric": self._run.get_metric,
                "image": self._run.get_image_sequence,
                "histogram": self._run.get_distribution_sequence,
                "text": self._run.get_text_sequence,
            }[kind]
            untyped: Any = context  # Aim's AimObject type is a dict with Union keys
            stored = getter(name, Context(untyped))
            if stored is not None:
                known = max(stored.timestamps.values(), default=known)
        self._last_auto_time[sequence] = known
        return known

    def log_artifact(self, artifact: ArtifactRef) -> None:
        """Copy a file to the run's artifacts URI; checkpoint metadata goes to ``tracelet.checkpoints``."""
        aim_run = self._require_run()
        if aim_run.artifacts_uri is None:
            warn_once(
                "aim-no-artifacts-uri",
                f"The Aim repository {self.location()!r} is remote and TRACELET_AIM__ARTIFACTS_URI is "
                f"unset, so Aim cannot store files; {artifact.name!r} and later files stay local.",
            )
            return
        name = artifact.name.lstrip("/")
        aim_run.log_artifact(artifact.path, name=name, block=True)
        lasting_artifact(aim_run, name)
        if artifact.metadata:
            self._index.add(artifact)
            aim_run["tracelet", "checkpoints"] = self._index.entries  # whole: entries come and go

    def log_media(self, item: MediaItem) -> None:
        """Track an image (``aim.Image``), histogram (``aim.Distribution``) or text (``aim.Text``)."""
        import aim

        self._require_run()
        value: Any
        if item.kind == "image" and item.path is not None:
            value = aim.Image(item.path)
        elif item.kind == "histogram":
            value = distribution(item.key, item.data)
        elif item.kind == "text":
            value = aim.Text(str(item.data.get("text", "")))
        else:
            super().log_media(item)
            return
        self._track(item.kind, item.key, value, item.timestamp, item.step, self._epoch)

    def close(self, status: RunStatus) -> None:
        """Record ``status`` and close the Aim run, which releases its lock in the repository."""
        aim_run = self._run
        if aim_run is None:
            return
        aim_run["tracelet", "status"] = status
        present = set(aim_run.tags)
        for other in ("FAILED", "KILLED"):
            label = tag_label(STATUS_TAG, other)
            if other != status and label in present:
                aim_run.remove_tag(label)  # a resumed run that now ends otherwise
        if self._end_time is not None:
            set_end_time(aim_run, self._end_time)
        if status == "FINISHED":
            aim_run.report_successful_finish(block=True)
        elif tag_label(STATUS_TAG, status) not in present:
            aim_run.add_tag(tag_label(STATUS_TAG, status))
        self._release()

    def _release(self) -> None:
        aim_run, self._run = self._run, None
        if _open_runs.get(self._run_id) is aim_run:
            del _open_runs[self._run_id]
        aim_run.close()

    def _require_run(self) -> Any:
        if self._run is None:
            raise BackendError("The Aim backend received data before open() or after close().")
        return self._run

    def classify_error(self, exc: BaseException, during: str) -> ErrorKind:
        """Aim's errors by type (see :func:`.errors.classify`)."""
        return classify(exc)

    def location(self) -> str | None:
        """The repository's directory (what ``aim up --repo`` takes), or its ``aim://`` URL."""
        if self._run is not None and not self._run.repo.is_remote_repo:
            return str(self._run.repo.root_path)
        repo = self.options.get("repo")
        return str(repo) if repo else None

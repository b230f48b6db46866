"""Weights & Biases backend: one ``wandb.Run`` per Tracelet run, written from the delivery worker.

What a W&B user finds where:

- **Step axis.** A metric logged with a step is defined with
  ``define_metric(key, step_metric="trainer/global_step")`` and logged as
  ``run.log({key: value, "trainer/global_step": step})``: the layout of Lightning's ``WandbLogger``.
  ``step=`` is never passed to ``run.log``, so W&B's ``_step`` only counts rows and validation points
  at an earlier step never trip "Steps must be monotonically increasing". ``epoch`` is such a metric
  too: W&B has no epoch axis of its own, but any metric can be picked as a chart's x-axis.
- **Points without a step, and system metrics** (``system/*``, whose step is a sample index, not a
  training step) are plotted against wall-clock time: their rows carry the hidden axis
  ``tracelet/wall_time`` (seconds since the epoch). Every row's ``_timestamp`` is the
  time the point was *logged*, not delivered, so W&B's "Wall Time" axis stays right for late points.
- **Params** go to ``run.config`` under their ``/``-flattened keys. Values that are the exact text of
  an int, a finite float or a bool become that number or bool (so config filters and parallel
  coordinates work); anything else stays the string given.
- **Tags** become W&B tags ``"key:value"`` (``"key"`` when the value is empty); a new value for a key
  replaces that key's tag. W&B caps a tag at 64 characters: longer ones end in Tracelet's marker.
- **Files**: checkpoints (``*.ckpt``, or metadata with ``checkpoint``) are versions of the ``model``
  artifact ``model-<run id>`` (as ``WandbLogger`` names it) with their aliases plus ``latest``; other
  files are ``file`` artifacts ``run-<run id>-<name>``.
- **Media**: images are ``wandb.Image``, histograms ``wandb.Histogram`` (merged down to W&B's 512
  bins), texts one incremental ``wandb.Table`` per key with columns ``step`` and ``text``.
- **Times**: a new run starts when the Tracelet run started (a run copied by ``tracelet migrate``: when
  its source started). W&B computes a run's runtime itself, from its own clock, so the end of a copied
  run is kept as the summary key ``tracelet/end_time`` (seconds since the epoch).
- **Status**: ``finish(exit_code=0)`` for FINISHED, 1 otherwise; as W&B has no state a client can set
  for a killed run, the summary key ``tracelet/status`` holds FINISHED, FAILED or KILLED.
- **Re-delivery**: W&B history is append-only, so when a batch fails part way the points already
  logged are remembered (by key, step and timestamp) and skipped when the batch, or a larger one
  holding it, is delivered again. Params and tags are idempotent; a text is appended to its table
  once; W&B itself keeps one artifact version per content digest.
- **Opening again** (a delivery process that died before recording the W&B run id): the W&B id is
  derived from the Tracelet run id (:func:`wandb_run_id`) and ``init`` uses ``resume="allow"``, so a
  second ``init`` continues the same run; offline it writes a second ``offline-run-*`` directory with
  the same id, which ``wandb sync`` merges. ``WANDB_RUN_ID`` (set by sweep agents) wins.
- **What W&B does not copy**: its metadata (command line, git remote, host, SLURM variables),
  code, requirements and system metrics are off; Tracelet records these itself, secrets masked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from tracelet_core.errors import BackendError, ErrorKind, warn_once
from tracelet_core.events import ArtifactRef, Batch, MediaItem, RunInfo, RunStatus, is_system_metric
from tracelet_core.names import truncate
from tracelet_core.trackers.base import Backend, Capabilities
from tracelet_core.trackers.wandb.errors import classify
from tracelet_core.trackers.wandb.mapping import (
    GLOBAL_STEP,
    MAX_HISTOGRAM_BINS,
    STATUS_KEY,
    WALL_TIME,
    PointId,
    Row,
    config_value,
    fit_histogram,
    group_rows,
    wandb_run_id,
)

if TYPE_CHECKING:
    from wandb import Table
    from wandb.sdk.wandb_run import Run

__all__ = ["WandbBackend"]

MAX_TAG_LENGTH = 64  # W&B rejects longer tags
END_TIME_KEY = "tracelet/end_time"
_ARTIFACT_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_PROJECT_UNSAFE = re.compile(r"[/\\#?%:]")
_ALIAS_UNSAFE = re.compile(r"[/:]")


# Runs opened here and not finished yet, by W&B id. wandb-core refuses a second live run with an id
# in use ("run ID ... is in use"), so an open retried after an attempt that left its run open (or
# a new session of a run whose earlier one never finished) continues that run object.
_live_runs: dict[str, Run] = {}


def _tag_text(key: str, value: str) -> str:
    text = f"{key}:{value}" if value else key
    if len(text) > MAX_TAG_LENGTH:
        warn_once(
            "wandb:tag-length",
            f"W&B tags are at most {MAX_TAG_LENGTH} characters; the tag {text[:40]!r}... and any later "
            "long tag are truncated with a marker.",
        )
    return truncate(text, MAX_TAG_LENGTH)


def _set_start_time(wandb_run: Run, when: float) -> None:
    """Start a new W&B run at ``when`` rather than at ``wandb.init``, where that is earlier.

    ``wandb.init`` takes no start time: the run object's is set, and the run record sent again (as
    W&B's own name and tag setters send it).
    """
    interface = getattr(wandb_run, "_interface", None)
    if when >= wandb_run.start_time - 1 or interface is None or not hasattr(wandb_run, "_start_time"):
        return
    wandb_run._start_time = when
    interface.publish_run(wandb_run)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


class WandbBackend(Backend):
    """Sends a Tracelet run to Weights & Biases (online, or offline for a later ``wandb sync``).

    Args:
        options: the ``wandb`` settings section (:class:`~tracelet_core.settings.WandbOptions`) as a dict:
            ``project``, ``entity``, ``group``, ``job_type``, ``mode``, ``dir``; None lets W&B decide
            from its own ``WANDB_*`` variables.

    Example:
        >>> backend = WandbBackend({"mode": "offline"})
        >>> backend.name, backend.capabilities.max_tag_length
        ('wandb', 64)
    """

    name: ClassVar[str] = "wandb"
    sdk_module: ClassVar[str | None] = "wandb"
    extra: ClassVar[str | None] = "wandb"
    capabilities: ClassVar[Capabilities] = Capabilities(
        media=frozenset({"image", "histogram", "text"}),
        artifacts=True,
        epoch_axis=False,
        max_tag_length=MAX_TAG_LENGTH,
    )

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self._run: Run | None = None
        self._location: str | None = None
        self._defined: set[str] = set()  # W&B keys and axes already given to define_metric
        self._keys: dict[str, str] = {}  # Tracelet key -> W&B key
        self._tags: dict[str, str] = {}  # Tracelet tag key -> the W&B tag written for it
        self._tables: dict[str, Table] = {}  # text key -> its incremental table
        self._last_text: dict[str, tuple[int | None, float]] = {}  # text key -> (step, time) logged last
        self._sent: set[PointId] = set()  # points of a batch that failed part way, already logged
        self._end_time: float | None = None

    def open(self, run: RunInfo, native_id: str | None) -> str:
        """Start the W&B run, or resume ``native_id``; return the W&B run id.

        Raises:
            BackendUnavailableError: wandb is not installed.
        """
        if self._run is not None:  # a retry after open had already succeeded
            return str(self._run.id)
        self.check_available()
        import wandb

        self._tags = {key: _tag_text(key, value) for key, value in run.tags.items() if key}
        # A sweep agent sets WANDB_RUN_ID to the run the sweep expects: that one wins over the derived id.
        wanted = native_id or os.environ.get("WANDB_RUN_ID") or wandb_run_id(run.run_id)
        live = _live_runs.get(wanted)
        if live is not None:  # opened by an earlier attempt in this process that failed or was dropped
            return self._use(live)
        directory = self.options.get("dir")
        if directory:
            os.makedirs(directory, exist_ok=True)
        settings = wandb.Settings(
            console="off",  # the trainer's output is not ours to capture
            x_disable_stats=True,  # Tracelet collects system metrics itself
            # W&B's metadata holds the command line (API keys passed as flags), the git remote (tokens
            # in its URL) and SLURM variables (SLURM_JOB_COMMENT...) unmasked; Tracelet records them
            # itself, masked. Machine info would also run git in the delivery process.
            x_disable_meta=True,
            x_disable_machine_info=True,
            save_code=False,
            disable_code=True,
            disable_git=True,  # Tracelet records git as tags (credentials stripped) and the diff
            x_save_requirements=False,  # Tracelet records the packages in tracelet/environment.json
            quiet=True,  # no banner or run summary in the delivery log; warnings still reach it
        )
        wandb_run = wandb.init(
            project=self._project(run),
            entity=self.options.get("entity"),
            group=self.options.get("group"),
            job_type=self.options.get("job_type"),
            mode=self.options.get("mode"),
            dir=directory,
            name=None if native_id else run.run_name,  # a continued run keeps its name
            tags=list(self._tags.values()),
            id=wanted,
            resume="allow",
            # each backend owns its run; other runs in this process (a user's own) are left alone
            reinit="create_new",
            settings=settings,
        )
        _live_runs[str(wandb_run.id)] = wandb_run
        if not wandb_run.resumed:
            _set_start_time(wandb_run, run.start_time)
        self._end_time = run.end_time
        return self._use(wandb_run)

    def _use(self, wandb_run: Run) -> str:
        self._run = wandb_run
        self._location = wandb_run.url or (None if wandb_run.disabled else wandb_run.sync_dir)
        return str(wandb_run.id)

    def write(self, batch: Batch) -> None:
        """Log params to the config, tags to the run's tags and metric points as history rows."""
        run = self._require_run()
        if batch.params:
            run.config.update({k: config_value(v) for k, v in batch.params.items()}, allow_val_change=True)
        if batch.tags:
            self._update_tags(run, batch.tags)
        points = [replace(p, step=None) if is_system_metric(p.key) else p for p in batch.metrics]
        pending = [p for p in points if (p.key, p.step, p.timestamp) not in self._sent]
        for row in group_rows(pending):
            self._log_row(run, row)
            self._sent.update(row.points)
        self._sent.clear()

    def log_artifact(self, artifact: ArtifactRef) -> None:
        """Log the file as a new version of a W&B artifact, with its metadata and aliases."""
        import wandb

        run = self._require_run()
        metadata = {k: v for k, v in artifact.metadata.items() if k != "aliases"}
        given = artifact.metadata.get("aliases", ())
        aliases = _unique([*(_ALIAS_UNSAFE.sub("-", str(alias)) for alias in given), "latest"])
        if artifact.name.endswith(".ckpt") or "checkpoint" in artifact.metadata:
            name, kind = f"model-{run.id}", "model"
        else:
            name, kind = f"run-{run.id}-{_ARTIFACT_NAME_UNSAFE.sub('-', artifact.name)}"[:128], "file"
        native = wandb.Artifact(name, type=kind, metadata=metadata)
        native.add_file(artifact.path, name=artifact.name)  # copied to W&B's staging area now
        run.log_artifact(native, aliases=aliases)

    def log_media(self, item: MediaItem) -> None:
        """Log an image, histogram or text at its step (or wall time when it has none)."""
        import numpy as np  # a dependency of wandb
        import wandb

        run = self._require_run()
        value: Any
        if item.kind == "image" and item.path is not None:
            value = wandb.Image(item.path)
        elif item.kind == "histogram":
            counts, bins = item.data["counts"], item.data["bins"]
            if len(counts) > MAX_HISTOGRAM_BINS:
                warn_once(
                    f"wandb:histogram-bins:{item.key}",
                    f"W&B histograms hold at most {MAX_HISTOGRAM_BINS} bins; {item.key!r} has {len(counts)}, "
                    "so neighbouring bins are merged.",
                )
            counts, bins = fit_histogram(counts, bins)
            value = wandb.Histogram(np_histogram=(np.asarray(counts), np.asarray(bins)))
        elif item.kind == "text":
            self._log_text(run, item)
            return
        else:
            super().log_media(item)
            return
        self._log_row(run, Row(item.step, item.timestamp, {item.key: value}))

    def close(self, status: RunStatus) -> None:
        """Record ``status`` in the summary and finish the run (exit code 0 only for FINISHED)."""
        run = self._run
        if run is None:
            return
        run.summary[STATUS_KEY] = status
        if self._end_time is not None:
            run.summary[END_TIME_KEY] = self._end_time
        run.finish(exit_code=0 if status == "FINISHED" else 1)
        _live_runs.pop(str(run.id), None)
        self._run = None

    def location(self) -> str | None:
        """The run's URL (online) or its local directory holding ``run-<id>.wandb`` (offline)."""
        return self._location

    def classify_error(self, exc: BaseException, during: str) -> ErrorKind:
        """W&B's errors by their type and wording (see :func:`.errors.classify`)."""
        return classify(exc, during)

    def _project(self, run: RunInfo) -> str | None:
        project = self.options.get("project")
        if project:
            return str(project)
        if os.environ.get("WANDB_PROJECT"):
            return None  # wandb reads it itself
        return _PROJECT_UNSAFE.sub("-", run.experiment)[:128]

    def _require_run(self) -> Run:
        if self._run is None:
            raise BackendError("The wandb backend was used before open() or after close().")
        return self._run

    def _key(self, key: str) -> str:
        """The W&B name of a Tracelet key: keys W&B reserves (``_step``...) or uses as axes get ``user/``."""
        known = self._keys.get(key)
        if known is not None:
            return known
        safe = key
        if key.startswith("_") or key in (GLOBAL_STEP, WALL_TIME, STATUS_KEY):
            safe = f"user/{key}"
            warn_once(
                f"key:wandb:{key}",
                f"W&B reserves the key {key!r} (leading '_' or a Tracelet axis); it is recorded as {safe!r}.",
            )
        self._keys[key] = safe
        return safe

    def _log_row(self, run: Run, row: Row) -> None:
        axis = WALL_TIME if row.step is None else GLOBAL_STEP
        data: dict[str, Any] = {}
        for key, value in row.values.items():
            safe = self._key(key)
            if axis not in self._defined:
                run.define_metric(axis, hidden=axis == WALL_TIME)
                self._defined.add(axis)
            if safe not in self._defined:  # a key keeps the axis it was first logged with
                run.define_metric(safe, step_metric=axis)
                self._defined.add(safe)
            data[safe] = value
        data[axis] = row.timestamp if row.step is None else row.step
        data["_timestamp"] = row.timestamp  # W&B's wall time of the row: when it was logged
        run.log(data)

    def _update_tags(self, run: Run, tags: Mapping[str, str]) -> None:
        current = list(run.tags or ())
        for key, value in tags.items():
            if not key:
                continue
            text = _tag_text(key, value)
            old = self._tags.get(key)
            if old is not None and old != text and old in current:
                current.remove(old)
            self._tags[key] = text
            current.append(text)
        merged = tuple(_unique(current))
        if merged != tuple(run.tags or ()):
            run.tags = merged

    def _log_text(self, run: Run, item: MediaItem) -> None:
        """Append the text to the key's incremental table and log it; a re-delivered text is skipped."""
        import wandb

        identity = (item.step, item.timestamp)
        if self._last_text.get(item.key) == identity:
            return
        table = self._tables.get(item.key)
        if table is None:
            table = self._tables[item.key] = wandb.Table(columns=["step", "text"], log_mode="INCREMENTAL")
        table.add_data(item.step, str(item.data.get("text", "")))
        try:
            self._log_row(run, Row(item.step, item.timestamp, {item.key: table}))
        except BaseException:
            table.data.pop()  # not logged: the retry adds it again
            raise
        self._last_text[item.key] = identity

"""Weights & Biases backend: one ``wandb.Run`` per Tracelet run, written from the delivery worker.

What a W&B user finds where:

- **Step axis.** A metric logged with a step is defined with
  ``define_metric(key, step_metric="trainer/global_step")`` and logged as
  ``run.log({key: value, "trainer/global_step": step})``: the layout of Lightning's ``WandbLogger``.
  ``step=`` is never passed to ``run.log``, so W&B's ``_step`` only counts rows and validation points
  at an earlier step never trip "Steps must be monotonically increasing". ``epoch`` is such a metric
  too: W&B has no epoch axis of its own, but any metric can be picked as a chart's x-axis.
- **Points without a step** (``system/*``) are plotted against wall-clock time: their rows carry the
  hidden axis ``tracelet/wall_time`` (seconds since the epoch). Every row's ``_timestamp`` is the
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

import hashlib
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from tracelet_core.trackers.base import Backend, Capabilities, classify_common_error
from tracelet_core.errors import BackendError, ErrorKind, warn_once
from tracelet_core.events import ArtifactRef, Batch, MediaItem, MetricPoint, RunInfo, RunStatus
from tracelet_core.names import truncate

if TYPE_CHECKING:
    from wandb import Table
    from wandb.sdk.wandb_run import Run

__all__ = [
    "GLOBAL_STEP",
    "STATUS_KEY",
    "WALL_TIME",
    "WandbBackend",
    "config_value",
    "fit_histogram",
    "group_rows",
    "wandb_run_id",
]

GLOBAL_STEP = "trainer/global_step"
WALL_TIME = "tracelet/wall_time"
STATUS_KEY = "tracelet/status"
MAX_TAG_LENGTH = 64  # W&B rejects longer tags
MAX_HISTOGRAM_BINS = 512  # wandb.Histogram.MAX_LENGTH
_INT = re.compile(r"-?[0-9]+")
_ARTIFACT_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_PROJECT_UNSAFE = re.compile(r"[/\\#?%:]")
_ALIAS_UNSAFE = re.compile(r"[/:]")
_PLAIN_ID = re.compile(r"[a-z0-9]{1,64}")  # W&B's own ids are 8 base-36 characters
# How wandb-core words a request it gave up retrying (connection refused, 429, 5xx) or a status.
_RETRIED = ("timed out", "deadline exceeded", "while retrying", "connection refused")
_HTTP_STATUS = re.compile(r"returned error (\d{3})")


_PointId = tuple[str, int | None, float]
# Runs opened here and not finished yet, by W&B id. wandb-core refuses a second live run with an id
# in use ("run ID ... is in use"), so an open retried after an attempt that left its run open (or
# a new session of a run whose earlier one never finished) continues that run object.
_live_runs: dict[str, Run] = {}


@dataclass
class _Row:
    """One ``run.log`` call: values sharing a step (or, without a step, a timestamp)."""

    step: int | None
    timestamp: float
    values: dict[str, Any] = field(default_factory=dict)
    points: list[_PointId] = field(default_factory=list)  # (key, step, timestamp) of what it holds


def group_rows(points: Iterable[MetricPoint]) -> list[_Row]:
    """Group points into as few rows as possible without reordering any key's points.

    Points with the same step share a row; points without a step share a row when logged at the same
    time. A point opens a new row when its key is already in the row for its step, or when that row
    comes before the row holding the key's previous point.

    Example:
        >>> points = [MetricPoint(k, v, 5, v) for k, v in [("a", 1.0), ("b", 2.0), ("a", 3.0)]]
        >>> [(r.step, r.values) for r in group_rows(points)]
        [(5, {'a': 1.0, 'b': 2.0}), (5, {'a': 3.0})]
    """
    rows: list[_Row] = []
    open_rows: dict[tuple[int | None, float | None], int] = {}
    last_row_of_key: dict[str, int] = {}
    for point in points:
        group = (point.step, point.timestamp if point.step is None else None)
        index = open_rows.get(group)
        if index is None or point.key in rows[index].values or index < last_row_of_key.get(point.key, -1):
            rows.append(_Row(point.step, point.timestamp))
            index = open_rows[group] = len(rows) - 1
        row = rows[index]
        row.values[point.key] = point.value
        row.points.append((point.key, point.step, point.timestamp))
        row.timestamp = max(row.timestamp, point.timestamp)
        last_row_of_key[point.key] = index
    return rows


def config_value(text: str) -> Any:
    """A param as W&B users filter on it: the int, finite float or bool it spells exactly, else the text.

    Example:
        >>> config_value("0.001"), config_value("32"), config_value("True"), config_value("1e-3")
        (0.001, 32, True, '1e-3')
    """
    if text in ("True", "False"):
        return text == "True"
    if _INT.fullmatch(text):
        return int(text) if str(int(text)) == text else text
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) and repr(number) == text else text


def fit_histogram(counts: Sequence[float], bins: Sequence[float]) -> tuple[list[float], list[float]]:
    """Merge neighbouring bins until there are at most 512, the most ``wandb.Histogram`` takes.

    Example:
        >>> counts, bins = fit_histogram([1] * 1030, list(range(1031)))
        >>> len(counts), counts[:2], bins[:2], bins[-1]
        (344, [3, 3], [0, 3], 1030)
    """
    if len(counts) <= MAX_HISTOGRAM_BINS:
        return list(counts), list(bins)
    factor = -(-len(counts) // MAX_HISTOGRAM_BINS)
    starts = range(0, len(counts), factor)
    return [sum(counts[i : i + factor]) for i in starts], [bins[i] for i in starts] + [bins[-1]]


def wandb_run_id(run_id: str) -> str:
    """The W&B id of a Tracelet run: the same for every ``open``, so W&B continues one run.

    Tracelet's own ids (32 hex digits) are used as they are; any other id (W&B refuses ``:;,#?/'``
    and whitespace around it) is replaced by 32 hex digits of its SHA-256.

    Example:
        >>> wandb_run_id("9993a005bc9a44b68c35e0a5116922e0"), wandb_run_id("my run/1")
        ('9993a005bc9a44b68c35e0a5116922e0', '7e01178981c9c133620be1db84745253')
    """
    if _PLAIN_ID.fullmatch(run_id):
        return run_id
    return hashlib.sha256(run_id.encode()).hexdigest()[:32]


def _tag_text(key: str, value: str) -> str:
    text = f"{key}:{value}" if value else key
    if len(text) > MAX_TAG_LENGTH:
        warn_once(
            "wandb:tag-length",
            f"W&B tags are at most {MAX_TAG_LENGTH} characters; the tag {text[:40]!r}... and any later "
            "long tag are truncated with a marker.",
        )
    return truncate(text, MAX_TAG_LENGTH)


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
        self._sent: set[_PointId] = set()  # points of a batch that failed part way, already logged

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
            name=run.run_name,
            tags=list(self._tags.values()),
            id=wanted,
            resume="allow",
            # each backend owns its run; other runs in this process (a user's own) are left alone
            reinit="create_new",
            settings=settings,
        )
        _live_runs[str(wandb_run.id)] = wandb_run
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
        pending = [p for p in batch.metrics if (p.key, p.step, p.timestamp) not in self._sent]
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
        self._log_row(run, _Row(item.step, item.timestamp, {item.key: value}))

    def close(self, status: RunStatus) -> None:
        """Record ``status`` in the summary and finish the run (exit code 0 only for FINISHED)."""
        run = self._run
        if run is None:
            return
        run.summary[STATUS_KEY] = status
        run.finish(exit_code=0 if status == "FINISHED" else 1)
        _live_runs.pop(str(run.id), None)
        self._run = None

    def location(self) -> str | None:
        """The run's URL (online) or its local directory holding ``run-<id>.wandb`` (offline)."""
        return self._location

    def classify_error(self, exc: BaseException, during: str) -> ErrorKind:
        """W&B's errors: a refused key, project or entity is configuration, a server that cannot be
        reached (``CommError`` after wandb-core's own retries) transient.

        wandb-core retries what may pass (connection refused, 429, 5xx) until ``init_timeout`` and
        then says so ("Timed out while retrying", "context deadline exceeded"); any other
        ``CommError`` at start is the server's answer to the request itself ("returned error 401",
        403, an unknown entity or project), which retrying repeats.

        Example:
            >>> from wandb.errors import AuthenticationError, CommError, UsageError
            >>> backend = WandbBackend({})
            >>> [backend.classify_error(exc, "start").value for exc in (
            ...     UsageError("No API key configured. Use `wandb login` to log in."),
            ...     AuthenticationError("API key must have 40+ characters, has 5."),
            ...     CommError("Timed out while retrying: dial tcp 127.0.0.1:9: connect: connection refused"),
            ...     CommError("permission denied"))]
            ['configuration', 'configuration', 'transient', 'configuration']
        """
        from wandb.errors import AuthenticationError, CommError, UsageError, WandbCoreNotAvailableError

        if isinstance(exc, AuthenticationError | UsageError | WandbCoreNotAvailableError):
            return ErrorKind.CONFIGURATION  # no key, a malformed one, a bad project name, a finished run
        if isinstance(exc, CommError):
            status = _HTTP_STATUS.search(str(exc))
            if status:
                code = int(status[1])
                refused = 400 <= code < 500 and code not in (408, 429)
            else:
                refused = not any(text in str(exc).lower() for text in _RETRIED)
            return ErrorKind.CONFIGURATION if refused and during == "start" else ErrorKind.TRANSIENT
        return classify_common_error(exc)

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

    def _log_row(self, run: Run, row: _Row) -> None:
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
            self._log_row(run, _Row(item.step, item.timestamp, {item.key: table}))
        except BaseException:
            table.data.pop()  # not logged: the retry adds it again
            raise
        self._last_text[item.key] = identity

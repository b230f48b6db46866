"""``Run``: the experiment handle users and integrations write to.

Every ``log_*`` call appends one item to an in-memory queue and returns (see
:mod:`tracelet_core.pipeline.queue`); a writer thread checks and moves the queue into the run's
journal, and the delivery process sends the journal to the trackers (each session's opening and
end are in :mod:`tracelet_core.pipeline.recording`). Nothing a user logs makes these calls raise: an
invalid step, timestamp or value is dropped alone with one warning per key (see
:mod:`tracelet_core.pipeline.writer`), and a journal or tracker that fails is reported, never raised
into training.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from tracelet_core.active import clear_active_run, uncaught_exception
from tracelet_core.errors import JournalError, RunInUseError, TraceletError, warn_once
from tracelet_core.events import TERMINAL_STATUSES, RunStatus
from tracelet_core.inputs import artifact_name
from tracelet_core.normalize import deep_merge, flatten_params, mask_secret_params, to_plain
from tracelet_core.pipeline.files import JOURNAL_FILENAME, make_private_dir
from tracelet_core.pipeline.journal import Journal
from tracelet_core.pipeline.queue import ARTIFACT, CONFIG, MEDIA, METRICS, PARAMS, TAGS, EventQueue
from tracelet_core.pipeline.recording import Recording, check_run_free, run_directory
from tracelet_core.pipeline.report import DeliveryReport, read_report
from tracelet_core.run_names import choose_run_name
from tracelet_core.settings import TraceletSettings

__all__ = ["Run", "check_run_free", "run_directory"]

log = logging.getLogger("tracelet")
# What a failing journal raises: never passed on to training (finish() reports it instead).
_STORAGE_ERRORS = (TraceletError, sqlite3.Error, OSError)
_now = time.time  # the hot path calls it once per log call: one global lookup instead of two


class Run:
    """One tracked run. Create it with :func:`tracelet_core.start_logging`, not directly.

    Args:
        settings: the run's settings.
        run_id: an existing run's id to resume (its journal must be under ``settings.journal_dir``),
            or a new id to use; default: a new random id.
        native_ids: each backend's own run id to continue when the journal is not here (e.g. read
            from a checkpoint made on another machine); ignored for backends the journal knows.

    Example:
        >>> import tracelet_core, tempfile
        >>> with tracelet_core.start_logging(backends=[], journal_dir=tempfile.mkdtemp(),
        ...                                  system_metrics=False, git=False, environment=False) as run:
        ...     run.log_metric("loss", 0.5, step=1)
        >>> run.status
        'FINISHED'
    """

    def __init__(
        self, settings: TraceletSettings, run_id: str | None = None, native_ids: Mapping[str, str] | None = None
    ) -> None:
        self.id = run_id or uuid.uuid4().hex
        self.experiment = settings.experiment
        self.run_dir = run_directory(settings, self.id)
        self.journal_path = self.run_dir / JOURNAL_FILENAME
        self.resumed = self.journal_path.exists()
        self.name: str | None = choose_run_name(settings.run_name, self.journal_path)
        if settings.enabled and self.name != settings.run_name:
            # chosen once: the journal, `tracelet runs` and every tracker get this one name
            settings = settings.model_copy(update={"run_name": self.name})
        self.settings = settings
        self.status: str = "RUNNING"
        self._queue: EventQueue | None = None  # the recording's queue, kept here for the hot path
        self._recording: Recording | None = None
        self._collectors: Any = None
        self._config: dict[str, Any] = {}
        self._report: DeliveryReport | None = None
        self._finish_lock = threading.Lock()
        self.backends: list[str] = []
        self._native_ids = dict(native_ids or {})
        self._deferred = False

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, *, deferred: bool = False) -> Run:
        """Open the journal, start the writer, the delivery and the collectors. Called by ``start_logging``.

        With ``deferred=True`` nothing is opened yet: that happens at the run's first use (a log call,
        ``flush``, ``report`` or ``finish``). ``TraceletLogger`` starts its run this way, so that a
        checkpoint Lightning loads right after creating the logger can still name the run to continue.

        Raises:
            RunInUseError: another live process records into this run id.
            JournalError: the run's journal cannot be created (e.g. a full disk); with ``deferred``, this
                is a warning at the run's first use instead, and the run records nothing.
        """
        if not self.settings.enabled:
            self.status = "DISABLED"
            return self
        if deferred:
            # Only checked now (creating nothing); the lock is taken when the run is first used.
            check_run_free(self.id, self.run_dir)
            self._deferred = True
            return self
        recording = Recording.open(self.settings, self.id, self.run_dir, self._native_ids, resumed=self.resumed)
        self._recording, self._queue, self.backends = recording, recording.queue, recording.backends
        self._deferred = False
        if self.settings.tags:
            self.set_tags(self.settings.tags)
        self._start_collectors()
        atexit.register(self._finish_at_exit)
        return self

    def finish(self, status: RunStatus = "FINISHED", timeout: float | None = None) -> DeliveryReport:
        """End the run: flush, journal the end, and wait (up to ``timeout``) for the trackers.

        Calling it again returns the first call's report.

        Args:
            status: FINISHED, FAILED or KILLED.
            timeout: seconds to wait for acknowledgements; default ``settings.finish_timeout``.
                What is not delivered by then stays in the journal and is delivered later.

        Returns:
            What each backend received.

        Raises:
            ValueError: ``status`` is not one of FINISHED, FAILED, KILLED.
        """
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"status must be one of {', '.join(TERMINAL_STATUSES)}; got {status!r}")
        self._begin()
        with self._finish_lock:
            recording = self._recording
            if self._report is not None or recording is None:
                return self._report or DeliveryReport(self.id, self.status, str(self.journal_path), 0, ())
            atexit.unregister(self._finish_at_exit)
            if self._collectors is not None:
                self._collectors.stop()
            self._queue, self._recording = None, None
            self.status = status
            timeout = self.settings.finish_timeout if timeout is None else timeout
            self._report = recording.end(self.id, status, timeout)
            (log.info if self._report.complete else log.warning)("tracelet: %s", self._report.summary())
            clear_active_run(self)
            return self._report

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish("FAILED" if exc_type is not None and not issubclass(exc_type, GeneratorExit) else "FINISHED")

    # -- logging (hot path: enqueue only) -------------------------------------------------------

    def log_metric(self, key: str, value: Any, step: int | None = None, timestamp: float | None = None) -> None:
        """Record one metric value. ``value`` may be a float, int, bool, numeric string or 1-element tensor."""
        self.log_metrics({key: value}, step=step, timestamp=timestamp)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None, timestamp: float | None = None) -> None:
        """Record several metric values at one step. Non-numbers are skipped with one warning per key."""
        queue = self._queue if self._queue is not None else self._begin()
        if queue is None:
            self._closed_warning()
            return
        values = dict(metrics)
        for key, value in values.items():
            if type(value) is not float and hasattr(value, "detach"):
                values[key] = value.detach()  # no sync here; converted on the writer thread
        queue.put((METRICS, values, step, _now() if timestamp is None else timestamp))

    def log_params(self, params: Mapping[str, Any] | Any, *, config: bool = True) -> None:
        """Record hyperparameters: flattened with ``/`` as params, and whole as ``tracelet/config.yaml``.

        Accepts a mapping, an ``argparse.Namespace`` or a dataclass, nested to any depth.

        Args:
            params: the hyperparameters.
            config: also merge them into ``tracelet/config.yaml``; False for params that describe the
                run rather than configure it (a model's parameter count).
        """
        queue = self._queue if self._queue is not None else self._begin()
        if queue is None:
            self._closed_warning()
            return
        plain = to_plain(params)
        if not isinstance(plain, dict):
            raise TypeError(f"log_params needs a mapping, Namespace or dataclass; got {type(params).__name__}")
        plain = mask_secret_params(plain, self.settings.secret_params)
        now = time.time()
        queue.put((PARAMS, flatten_params(plain), now))
        if not config:
            return
        self._config = deep_merge(self._config, plain)
        queue.put((CONFIG, self._config, self.run_dir / "files" / "config.yaml", now))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set run tags (values become strings)."""
        queue = self._queue if self._queue is not None else self._begin()
        if queue is None:
            self._closed_warning()
            return
        queue.put((TAGS, {str(k): str(v) for k, v in tags.items()}, _now()))

    def set_tag(self, key: str, value: Any) -> None:
        """Set one run tag."""
        self.set_tags({key: value})

    def log_artifact(
        self, path: str | os.PathLike[str], name: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Upload a file, stored as ``name`` (default: the file's name) in every tracker that takes files.

        The file is hard-linked (or copied later, off the training thread) into the run directory, so it
        may be changed or deleted right after this call; that copy is deleted once every tracker has
        the file, unless ``keep_uploaded_files`` is set or the run has no tracker.

        Raises:
            FileNotFoundError: ``path`` is not an existing file.
        """
        queue = self._queue if self._queue is not None else self._begin()
        if queue is None:
            self._closed_warning()
            return
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"log_artifact needs an existing file; {str(source)!r} is not one")
        target_name = _safe_artifact_name(name, source.name)
        staged = self.run_dir / "files" / uuid.uuid4().hex[:12] / source.name
        try:
            make_private_dir(staged.parent)
            os.link(source, staged)
            copy_from = None
        except OSError:  # another file system: the writer thread copies it, off the training thread
            copy_from = str(source.resolve())
        queue.put((ARTIFACT, target_name, str(staged), dict(metadata or {}), _now(), copy_from))

    def log_image(self, key: str, image: Any, step: int | None = None, timestamp: float | None = None) -> None:
        """Record an image: a path, PIL image, numpy array / tensor (HW, HWC or CHW), matplotlib figure,
        or already-encoded PNG/GIF bytes. Encoding happens on the writer thread."""
        self._log_media("image", key, image, step, timestamp)

    def log_histogram(self, key: str, values: Any, step: int | None = None, timestamp: float | None = None) -> None:
        """Record the distribution of ``values`` (a sequence, array, tensor, or ``{"bins", "counts"}``)."""
        self._log_media("histogram", key, values, step, timestamp)

    def log_text(self, key: str, text: str, step: int | None = None, timestamp: float | None = None) -> None:
        """Record a piece of text at ``step``."""
        self._log_media("text", key, text, step, timestamp)

    def flush(self) -> None:
        """Write everything logged so far to the journal now (blocks for one small transaction).

        Normally the writer thread does this every ``flush_interval``; call it before something that
        may kill the process at once (a preemption handler, a checkpoint right before a risky step).
        """
        self._begin()
        recording = self._recording
        if recording is not None and self._queue is not None:
            recording.writer.flush()

    def restart_collectors(self, **overrides: Any) -> None:
        """Restart the periodic collectors with changed settings (``system_metrics``,
        ``system_metrics_interval``...); git and environment, which run once, are not run again."""
        from tracelet_core.collectors import start_collectors
        from tracelet_core.settings import load_settings

        if self._deferred:  # not started yet: the collectors will start with these settings
            self.settings = load_settings(self.settings, **overrides)
            return
        if self._queue is None:
            return

        first_sample = None
        if self._collectors is not None:
            self._collectors.stop()
            first_sample = self._collectors.next_sample  # the journal may not hold the last samples yet
        settings = load_settings(self.settings, git=False, environment=False, **overrides)
        self._collectors = start_collectors(self, settings, first_sample=first_sample)

    # -- state ----------------------------------------------------------------------------------

    @property
    def backend_run_ids(self) -> dict[str, str]:
        """Each backend's native id of this run (``{"mlflow": "<run id>"}``), once the backend has opened it."""
        if not self.journal_path.exists():
            return {}
        try:
            with Journal(self.journal_path) as journal:
                return {name: state.native_id for name, state in journal.deliveries().items() if state.native_id}
        except _STORAGE_ERRORS:  # unreadable right now: nothing known
            return {}

    def report(self) -> DeliveryReport:
        """The delivery state right now (``finish()`` returns the final one)."""
        if self._report is not None:
            return self._report
        self._begin()
        try:
            with Journal(self.journal_path) as journal:
                report = read_report(journal, self.id, self.status)
        except _STORAGE_ERRORS as exc:
            why = f"the journal could not be read ({type(exc).__name__}: {exc})"
            return DeliveryReport(self.id, self.status, str(self.journal_path), 0, (), problems=(why,))
        if self._recording is None:
            return report
        writer = self._recording.writer
        return dataclasses.replace(report, dropped=report.dropped + writer.dropped, lost=report.lost + writer.lost)

    @property
    def active(self) -> bool:
        """True between ``start`` and ``finish``."""
        return self._queue is not None or self._deferred

    @property
    def deferred(self) -> bool:
        """True while a run started with ``start(deferred=True)`` has not been used yet."""
        return self._deferred

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, experiment={self.experiment!r}, status={self.status!r}, backends={self.backends})"

    # -- internals ------------------------------------------------------------------------------

    def _begin(self) -> EventQueue | None:
        """Start a deferred run now (once, whichever thread comes first); the queue, or None when closed."""
        if self._deferred:
            with self._finish_lock:
                if self._deferred:
                    self._start_deferred()
        return self._queue

    def _start_deferred(self) -> None:
        """Start a deferred run at its first use, which is inside training: a failure is a warning, not an error."""
        try:
            self.start()
        except (RunInUseError, JournalError) as exc:
            self._deferred = False
            self.status = "NOT_RECORDED"
            warn_once(f"start:{self.id}", f"Tracelet records nothing for this run: {exc}")

    def _log_media(self, kind: str, key: str, obj: Any, step: int | None, timestamp: float | None) -> None:
        queue = self._queue if self._queue is not None else self._begin()
        if queue is None:
            self._closed_warning()
            return
        if hasattr(obj, "detach"):
            obj = obj.detach()
        queue.put((MEDIA, kind, key, obj, step, _now() if timestamp is None else timestamp))

    def _closed_warning(self) -> None:
        if self.status not in ("DISABLED", "NOT_RECORDED"):
            warn_once(
                f"closed:{self.id}",
                f"Run {self.id} has ended ({self.status}); later values are not recorded.",
            )

    def _start_collectors(self) -> None:
        try:
            from tracelet_core.collectors import start_collectors

            self._collectors = start_collectors(self, self.settings)
        except Exception as exc:  # collectors are extras: their failure must not stop the run
            warn_once(f"collectors:{type(exc).__name__}", f"Tracelet's collectors did not start: {exc}")

    def _finish_at_exit(self) -> None:
        try:
            self.finish("FAILED" if uncaught_exception() else "FINISHED")
        except Exception as exc:  # at interpreter exit there is no one left to raise to
            log.warning("tracelet: could not finish run %s at exit: %s", self.id, exc)


def _safe_artifact_name(name: str | None, default: str) -> str:
    """The name a file is stored under: ``name`` made relative and free of ``..`` (one warning if changed)."""
    if not name:
        return default
    try:
        safe = artifact_name(name)
    except ValueError:
        safe = default
    if safe != name:
        warn_once(
            f"artifact-name:{name}",
            f"Artifact name {name!r} would point outside the run's files; it is stored as {safe!r}.",
        )
    return safe

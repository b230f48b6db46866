"""Opt-in bridge: what a ``SummaryWriter`` writes also reaches the active Tracelet run.

For plain PyTorch loops that log with ``torch.utils.tensorboard.SummaryWriter`` or
``tensorboardX.SummaryWriter`` and should stay as they are::

    import tracelet_core
    tracelet_core.patch_tensorboard()

**Where it hooks.** Every summary a SummaryWriter writes, of any kind, passes through one method,
``FileWriter.add_event`` (the same place MLflow's autolog and ClearML hook). ``patch_tensorboard``
wraps that method on torch's and tensorboardX's ``FileWriter`` classes, so writers created before
and after the call are covered. The original runs first and writes the event file exactly as
before; the wrapper then reads the event's values and hands them to the run, which only enqueues
(plain scalars are read inline; everything else goes through
:class:`~tracelet_core.tensorboard_summaries.SummaryReplay`, whose docstring has the mapping).
``SummaryWriter.add_scalars`` is also wrapped, only to name its values ``main_tag/tag``: its
per-tag FileWriters see ``main_tag`` alone. ``unpatch_tensorboard`` puts the original functions back.

**Which run.** Values go to :func:`tracelet_core.get_active_run`. With no active run, the first
event starts one from the settings (``TRACELET_*``, ``.env``), named after the writer's log
directory unless ``TRACELET_RUN_NAME`` is set. ``unpatch_tensorboard`` (or leaving the ``with``
block) finishes a run the bridge started itself; otherwise the run ends at exit. The step is the
event's global step; the time is the event's wall time.

**Filters.** Before an event is forwarded (and before a run is looked up or started for it), each
filter given to :func:`register_event_filter` may drop it, from Tracelet only (TensorBoard's files
keep it). Integrations use this for what already reaches Tracelet another way: ``tracelet_lightning``
registers one that drops what Lightning's ``TensorBoardLogger`` writes on behalf of a Trainer that
Tracelet records itself (see ``tracelet_lightning/tensorboard.py``), so each value is recorded once.
The rules live with the integrations: this module imports and knows no framework.
"""

from __future__ import annotations

import functools
import importlib
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType, ModuleType, TracebackType
from typing import Any, Protocol

from tracelet_core.api import get_active_run, start_logging
from tracelet_core.errors import TraceletError, warn_once
from tracelet_core.run import Run
from tracelet_core.settings import load_settings
from tracelet_core.tensorboard_summaries import SummaryReplay

__all__ = [
    "EventFilter",
    "TensorBoardPatch",
    "patch_tensorboard",
    "register_event_filter",
    "unpatch_tensorboard",
    "unregister_event_filter",
]

WRITER_MODULES = ("torch.utils.tensorboard.writer", "tensorboardX.writer")

_originals: dict[tuple[type, str], Any] = {}
_patch_lock = threading.Lock()
_start_lock = threading.Lock()
_bridge_run: Run | None = None
_start_failed = False
_groups = threading.local()  # .current: (main_tag, iterator over its tags) inside add_scalars
_groups_used = False  # set once add_scalars has been called: until then the hot path skips the lookup
_event_filters: tuple[EventFilter, ...] = ()  # replaced whole, never changed in place: the hot path reads it unlocked


class EventFilter(Protocol):
    """Decides whether the bridge forwards one event to Tracelet; see :func:`register_event_filter`."""

    def __call__(self, writer: Any, event: Any, caller: FrameType, /) -> bool:
        """True to forward ``event``, False to keep it out of Tracelet.

        Args:
            writer: the ``FileWriter`` writing it (``writer.get_logdir()`` is its log directory).
            event: the ``Event`` protobuf, with at least one summary value.
            caller: the frame that called ``FileWriter.add_event`` (the SummaryWriter's own code);
                the frames above it (``caller.f_back``...) say who wrote the event.
        """


class TensorBoardPatch:
    """What :func:`patch_tensorboard` returns; as a context manager it unpatches at the end of the block.

    Leaving the block restores the state from before it: if TensorBoard was already patched when
    the block began, it stays patched.
    """

    def __init__(self, was_patched: bool) -> None:
        self._was_patched = was_patched

    def __enter__(self) -> TensorBoardPatch:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._was_patched:
            unpatch_tensorboard()

    def __repr__(self) -> str:
        return f"TensorBoardPatch(active={bool(_originals)})"


def patch_tensorboard() -> TensorBoardPatch:
    """Send everything ``SummaryWriter`` writes to the active Tracelet run as well.

    Covers ``torch.utils.tensorboard`` and ``tensorboardX`` (whichever are installed; importing
    them is part of the call), for writers created before or after it. Calling it again changes
    nothing. With ``TRACELET_ENABLED=false`` it patches nothing.

    Returns:
        A handle that, used as a context manager, undoes the patch at the end of the block.

    Raises:
        TraceletError: neither torch's TensorBoard support nor tensorboardX can be imported.
        ConfigurationError: the Tracelet settings are invalid (raised here, not in the middle of
            training when the first event would start a run).

    Example:
        >>> import tracelet_core, tempfile
        >>> from torch.utils.tensorboard import SummaryWriter
        >>> logdir = tempfile.mkdtemp()
        >>> with tracelet_core.start_logging(backends=[], journal_dir=logdir, system_metrics=False,
        ...                                  git=False, environment=False) as run:
        ...     with tracelet_core.patch_tensorboard(), SummaryWriter(logdir) as writer:
        ...         writer.add_scalar("loss", 0.5, global_step=1)  # also run.log_metric("loss", 0.5, step=1)
    """
    global _start_failed
    settings = load_settings()
    with _patch_lock:
        _start_failed = False  # a failed zero-config start is tried again after a new patch call
        was_patched = bool(_originals)
        if was_patched or not settings.enabled:
            return TensorBoardPatch(was_patched)
        modules = _writer_modules()
        if not modules:
            raise TraceletError(
                "patch_tensorboard() needs torch.utils.tensorboard or tensorboardX and can import neither; "
                'install one with: pip install "tracelet-lightning[tensorboard]"'
            )
        for module in modules:
            for class_name, attribute, wrap in _PATCH_POINTS:
                cls = getattr(module, class_name)
                original = cls.__dict__[attribute]
                setattr(cls, attribute, wrap(original))
                _originals[(cls, attribute)] = original
    return TensorBoardPatch(False)


def unpatch_tensorboard() -> None:
    """Put back the original ``SummaryWriter`` functions and finish the run the bridge started, if any.

    Safe to call when nothing is patched. A run started with ``start_logging`` is left running.
    """
    global _bridge_run
    with _patch_lock:
        for (cls, attribute), original in _originals.items():
            setattr(cls, attribute, original)
        _originals.clear()
        run, _bridge_run = _bridge_run, None
    if run is not None and run.active:
        run.finish()


def register_event_filter(event_filter: EventFilter) -> None:
    """Let ``event_filter`` keep events out of Tracelet: the bridge forwards an event only if every
    registered filter returns True for it (as with :class:`logging.Filter`, True means "pass").

    A filter is called as ``event_filter(writer, event, caller)`` (see :class:`EventFilter`) for every
    event that holds a summary, on the thread that wrote it, before a run is looked up or started for
    it, so a dropped event never starts a run either. TensorBoard's own files keep every event.
    Filters run once per event on the training thread: keep them cheap. An exception in one is
    reported as a bridge failure (one warning) and the event is not forwarded. Registering the same
    filter again changes nothing; filters stay registered across :func:`unpatch_tensorboard`.

    Args:
        event_filter: the filter; remove it with :func:`unregister_event_filter`.

    Example:
        >>> def no_debug(writer, event, caller):
        ...     return not event.summary.value[0].tag.startswith("debug/")
        >>> register_event_filter(no_debug)  # debug/... tags stay in TensorBoard only
        >>> unregister_event_filter(no_debug)
    """
    global _event_filters
    with _patch_lock:
        if event_filter not in _event_filters:
            _event_filters = (*_event_filters, event_filter)


def unregister_event_filter(event_filter: EventFilter) -> None:
    """Remove a filter given to :func:`register_event_filter`; nothing happens if it is not registered."""
    global _event_filters
    with _patch_lock:
        _event_filters = tuple(f for f in _event_filters if f != event_filter)


# -- the wrappers (hot path: on the training thread, once per event) ----------------------------


def _wrap_add_event(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def add_event(self: Any, event: Any, step: Any = None, walltime: Any = None) -> None:
        original(self, event, step, walltime)
        try:
            _forward(self, event)
        except Exception as exc:  # TensorBoard has its event; a bridge failure must not stop training
            warn_once(
                f"tensorboard-bridge:{type(exc).__name__}",
                f"Tracelet could not record a TensorBoard event ({type(exc).__name__}: {exc}); "
                "TensorBoard's own files are unaffected.",
            )

    return add_event


def _wrap_add_scalars(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def add_scalars(self: Any, main_tag: str, tag_scalar_dict: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        global _groups_used
        _groups_used = True
        outer = getattr(_groups, "current", None)
        # Both libraries write one event per tag, in the dict's order, each tagged main_tag alone.
        _groups.current = (main_tag, iter(list(tag_scalar_dict)))
        try:
            original(self, main_tag, tag_scalar_dict, *args, **kwargs)
        finally:
            _groups.current = outer

    return add_scalars


_PATCH_POINTS: tuple[tuple[str, str, Callable[[Callable[..., None]], Callable[..., None]]], ...] = (
    ("FileWriter", "add_event", _wrap_add_event),
    ("SummaryWriter", "add_scalars", _wrap_add_scalars),
)


def _forward(writer: Any, event: Any) -> None:
    # Each protobuf field read costs 0.1-0.3 µs (0.7 for WhichOneof): read only what a scalar needs.
    values = event.summary.value
    count = len(values)
    if not count:  # file version, graph, session log: no summary
        return
    if _event_filters:
        caller = sys._getframe(2)  # 0: here, 1: the add_event wrapper, 2: what called FileWriter.add_event
        for event_filter in _event_filters:
            if not event_filter(writer, event, caller):
                return
    run = get_active_run() or _start_run(writer)
    if run is None:
        return
    if count == 1:
        value = values[0]
        if value.HasField("simple_value"):  # add_scalar, add_scalars: the hot case
            tag = value.tag
            key = _group_key(tag) if _groups_used else tag
            run.log_metrics({key: value.simple_value}, step=event.step, timestamp=event.wall_time)
            return
    step, wall_time = event.step, event.wall_time
    metrics: dict[str, float] = {}
    for value in values:
        if value.HasField("simple_value"):
            metrics[_group_key(value.tag) if _groups_used else value.tag] = value.simple_value
        else:
            SummaryReplay.into_run(run).value(value, step, wall_time)
    if metrics:
        run.log_metrics(metrics, step=step, timestamp=wall_time)


def _group_key(tag: str) -> str:
    group: tuple[str, Iterator[str]] | None = getattr(_groups, "current", None)
    if group is None or group[0] != tag:
        return tag
    member = next(group[1], None)
    return tag if member is None else f"{tag}/{member}"


def _start_run(writer: Any) -> Run | None:
    """The zero-config run: started from the settings by the first event when none is active."""
    global _bridge_run, _start_failed
    if _start_failed:
        return None
    with _start_lock:
        run = get_active_run()
        if run is not None or _start_failed:
            return run
        logdir = Path(str(writer.get_logdir()))
        try:
            settings = load_settings()
            run = start_logging(settings=settings, run_name=settings.run_name or logdir.name or None)
        except Exception as exc:  # one warning; later events do not retry until patched again
            _start_failed = True
            warn_once("tensorboard-start", f"Tracelet could not start a run for TensorBoard's events: {exc}")
            return None
        run.set_tags({"tensorboard.logdir": str(logdir.resolve())})
        _bridge_run = run
        return run


def _writer_modules() -> list[ModuleType]:
    modules = []
    for name in WRITER_MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ImportError:  # not installed (torch without the tensorboard package raises this too)
            continue
    return modules

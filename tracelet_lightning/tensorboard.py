"""The TensorBoard bridge's Lightning rule: what Lightning's ``TensorBoardLogger`` writes for a Trainer
that Tracelet already records is not recorded a second time.

A ``TraceletLogger`` (or ``TraceletCallback``) already records what a Trainer logs. When the same
Trainer also has Lightning's ``TensorBoardLogger`` and :func:`tracelet_core.patch_tensorboard` is
active, the bridge would record what that logger writes on the Trainer's behalf (``log_metrics``,
``log_hyperparams``, ``log_graph`` called by Lightning) a second time. :func:`lightning_event_filter`,
registered with :func:`tracelet_core.tensorboard.register_event_filter` when ``tracelet_lightning``
is imported, drops those events from Tracelet (TensorBoard's files keep them).

It recognises that case from the call stack of the event, looked at only once Lightning's
TensorBoard logger module is loaded: a Lightning ``TensorBoardLogger`` hook is among the nearest
callers, it was called by Lightning's own code, and the Trainer found there (as ``trainer``,
``self`` or ``self.trainer``) has a logger or callback from ``tracelet_lightning`` (or a subclass of
one). Being decided per event, it holds whatever the order of the Trainer's loggers (a
TensorBoardLogger listed first writes before the TraceletLogger has started its run). Anything
else is forwarded: a Trainer with a TensorBoardLogger and no Tracelet integration (the bridge is
then its only way into the trackers), and what a LightningModule writes itself through
``self.logger.experiment.add_*`` (no Tracelet logger sees that). If Lightning's internals ever move
so that the Trainer cannot be found, values are recorded twice rather than lost.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

from tracelet_core.tensorboard import register_event_filter

__all__ = ["lightning_event_filter"]

_FABRIC_TB = "lightning.fabric.loggers.tensorboard"  # defines TensorBoardLogger.log_metrics
_FABRIC_TB_STANDALONE = "lightning_fabric.loggers.tensorboard"
_LIGHTNING_PACKAGES = ("lightning.", "lightning_fabric.", "pytorch_lightning.", "lightning_utilities.")
_LIGHTNING_HOOKS = frozenset({"log_metrics", "log_hyperparams", "log_graph"})
_HOOK_DEPTH = 6  # add_event <- add_summary <- add_scalar(s) <- [the bridge's add_scalars] <- the logger's hook
_TRAINER_DEPTH = 12  # the hook <- rank_zero_only wrappers, nested hooks <- the Lightning code holding the Trainer
_modules = sys.modules


def lightning_event_filter(writer: Any, event: Any, caller: FrameType) -> bool:
    """The bridge's :class:`~tracelet_core.tensorboard.EventFilter` for Lightning.

    Args:
        writer: the ``FileWriter`` (unused: the call stack decides).
        event: the event (unused).
        caller: the frame that called ``FileWriter.add_event``.

    Returns:
        False for an event a Lightning ``TensorBoardLogger`` writes, for Lightning, in a Trainer that
        has a Tracelet logger or callback (see the module docstring); True for every other event.

    Example:
        >>> import sys
        >>> lightning_event_filter(None, None, sys._getframe())  # not written by a TensorBoardLogger
        True
    """
    if _FABRIC_TB not in _modules and _FABRIC_TB_STANDALONE not in _modules:
        return True  # no Lightning TensorBoardLogger in this process: skip the stack walk
    return not _written_for_tracelet_trainer(caller)


def _written_for_tracelet_trainer(caller: FrameType) -> bool:
    """Whether Lightning's TensorBoardLogger is writing, for Lightning, in a Trainer that Tracelet tracks itself."""
    frame: FrameType | None = caller
    for _ in range(_HOOK_DEPTH):
        if frame is None:
            return False
        if frame.f_code.co_name in _LIGHTNING_HOOKS and _in_lightning(frame):
            return _trainer_has_tracelet(frame.f_back, frame.f_locals.get("self"))
        frame = frame.f_back
    return False


def _trainer_has_tracelet(frame: FrameType | None, tensorboard_logger: Any) -> bool:
    # Walk up through Lightning's own frames only: reaching user code first means the user called
    # the logger directly, and no Tracelet logger has seen those values.
    for _ in range(_TRAINER_DEPTH):
        if frame is None or not _in_lightning(frame):
            return False
        trainer = _trainer_in(frame.f_locals)
        if trainer is not None and any(logger is tensorboard_logger for logger in trainer.loggers):
            integrations = [*trainer.loggers, *(_attribute(trainer, "callbacks") or ())]
            return any(_from_tracelet(obj) for obj in integrations)
        frame = frame.f_back
    return False


def _from_tracelet(obj: Any) -> bool:
    # By module, not by class: any logger or callback of this package, also one subclassed elsewhere.
    return any(cls.__module__.startswith("tracelet_lightning") for cls in type(obj).__mro__)


def _in_lightning(frame: FrameType) -> bool:
    return str(frame.f_globals.get("__name__", "")).startswith(_LIGHTNING_PACKAGES)


def _trainer_in(local_vars: dict[str, Any]) -> Any:
    """The Trainer a frame holds as ``trainer``, ``self`` or ``self.trainer``, or None."""
    for holder in (local_vars.get("trainer"), local_vars.get("self")):
        for candidate in (holder, _attribute(holder, "trainer")):
            if isinstance(_attribute(candidate, "loggers"), list):
                return candidate
    return None


def _attribute(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    try:
        return getattr(obj, name, None)
    except Exception:  # e.g. LightningModule.trainer raises when the module is not attached
        return None


register_event_filter(lightning_event_filter)

"""Which checkpoints reach the trackers, under which names, and Tracelet's state inside a checkpoint.

:class:`CheckpointUploader` is called by :meth:`TraceletLogger.after_save_checkpoint` each time a
``ModelCheckpoint`` has written a file. It only looks at the callback's public attributes and the
files' ``stat``, then hands the file to :meth:`tracelet_core.Run.log_artifact`, which hard-links it
and returns: the upload itself happens in the delivery process, never on the training thread.

Names sort in training order, whatever ``ModelCheckpoint(filename=...)`` says:
``checkpoints/epoch=02-step=000300.ckpt`` (under ``checkpoints/<monitor>/`` when a Trainer has
several ``ModelCheckpoint`` callbacks). The metadata of each upload holds ``epoch``, ``step``,
``monitor``, ``score``, ``mode``, ``aliases`` (``best`` and/or ``last`` when the file was uploaded)
and ``replaces``: the earlier upload this one supersedes under the policy (the previous best for
``best``, the previous one for ``last``), which a tracker that can drop or re-point files uses.
The run's tags ``tracelet.checkpoint[.<label>].best`` / ``.last`` always name the current ones.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracelet_core.errors import warn_once
from tracelet_core.settings import CheckpointPolicy
from tracelet_lightning.resume import CheckpointRun

if TYPE_CHECKING:
    from lightning.pytorch import Trainer
    from lightning.pytorch.callbacks import ModelCheckpoint

    from tracelet_core.run import Run

__all__ = ["CALLBACK_STATE_KEY", "CheckpointUploader", "checkpoint_run_id", "read_tracelet_state"]

CALLBACK_STATE_KEY = "TraceletCallback"
_LABEL_UNSAFE = re.compile(r"[^\w.-]+")
_EPOCH_IN_NAME = re.compile(r"epoch=(\d+)")
_STEP_IN_NAME = re.compile(r"step=(\d+)")
# mtimes can be coarser than the clock (and a few ms behind it on some filesystems).
_MTIME_SLACK_NS = 2_000_000_000


@dataclass
class _CallbackState:
    """What was uploaded for one ModelCheckpoint callback."""

    label: str
    best: str | None = None
    last: str | None = None
    uploaded: set[tuple[int, int]] = field(default_factory=set)


class CheckpointUploader:
    """Uploads what a ``ModelCheckpoint`` just saved, according to ``log_checkpoints``.

    Args:
        policy: ``none``, ``last`` (the newest checkpoint), ``best`` (each new best) or ``all``.

    Example:
        >>> uploader = CheckpointUploader("best")
        >>> uploader.name_for("", epoch=2, step=300)
        'checkpoints/epoch=02-step=000300.ckpt'
    """

    def __init__(self, policy: CheckpointPolicy) -> None:
        self.policy = policy
        self._since_ns = time.time_ns() - _MTIME_SLACK_NS
        self._stats: dict[str, tuple[int, int, int]] = {}
        self._callbacks: dict[str, _CallbackState] = {}
        self._epoch_width = 2
        self._step_width = 6

    def configure(self, trainer: Trainer) -> None:
        """Size the zero padding from the Trainer's limits so names keep sorting past epoch 99 or step 999999.

        Names sort by epoch first, so within a run the epoch width is what matters; it comes from
        ``max_epochs`` (Lightning's default of 1000 gives three digits).
        """
        if trainer.max_epochs is not None and trainer.max_epochs > 0:
            self._epoch_width = max(2, len(str(trainer.max_epochs - 1)))
        if trainer.max_steps is not None and trainer.max_steps > 0:
            self._step_width = max(6, len(str(trainer.max_steps)))

    def name_for(self, label: str, epoch: int, step: int) -> str:
        """The tracker name of the checkpoint of ``epoch`` / ``step``."""
        folder = f"checkpoints/{label}/" if label else "checkpoints/"
        return f"{folder}epoch={epoch:0{self._epoch_width}d}-step={step:0{self._step_width}d}.ckpt"

    def __call__(
        self,
        run: Run,
        checkpoint_callback: ModelCheckpoint,
        trainer: Trainer | None = None,
        position: tuple[int | None, int | None] = (None, None),
    ) -> None:
        """Upload the file ``checkpoint_callback`` has just written, if the policy wants it.

        Args:
            run: the run to upload to.
            checkpoint_callback: the callback that saved (Lightning passes a weak proxy).
            trainer: the Trainer, for the epoch, step and monitored value; without it they come from
                ``position`` (the last epoch and step the logger saw) or the file name.
            position: fallback ``(epoch, step)``.
        """
        if self.policy == "none":
            return
        fresh = self._fresh_files(checkpoint_callback)
        if not fresh:
            return
        path = max(fresh, key=lambda p: self._stats[p][1])
        epoch, step = _position(path, trainer, position)
        state = self._state_for(checkpoint_callback, trainer)
        if (epoch, step) in state.uploaded:
            return  # e.g. last.ckpt written right after the top-k file of the same step
        is_best = bool(checkpoint_callback.best_model_path) and _same_file(path, checkpoint_callback.best_model_path)
        if self.policy == "best" and not is_best:
            return
        state.uploaded.add((epoch, step))
        name = self.name_for(state.label, epoch, step)
        previous = {"best": state.best, "last": state.last}.get(self.policy)
        metadata: dict[str, Any] = {
            "epoch": epoch,
            "step": step,
            "aliases": ["best", "last"] if is_best else ["last"],
            "monitor": checkpoint_callback.monitor,
            "mode": checkpoint_callback.mode,
            "score": _score(checkpoint_callback, path, trainer),
            "source": Path(path).name,
        }
        if previous and previous != name:
            metadata["replaces"] = previous
        try:
            run.log_artifact(path, name=name, metadata=metadata)
        except OSError as exc:  # e.g. removed in the meantime; a checkpoint upload must never stop training
            warn_once(f"checkpoint-upload:{type(exc).__name__}", f"Tracelet could not take checkpoint {path}: {exc}")
            return
        tag = f"tracelet.checkpoint.{state.label}" if state.label else "tracelet.checkpoint"
        tags = {f"{tag}.last": name}
        if is_best:
            state.best = name
            tags[f"{tag}.best"] = name
            if metadata["score"] is not None:
                tags[f"{tag}.best_score"] = repr(metadata["score"])
        state.last = name
        run.set_tags(tags)

    # -- internals ------------------------------------------------------------------------------

    def _fresh_files(self, callback: ModelCheckpoint) -> list[str]:
        """Files of the callback written since the last call (and during this session)."""
        candidates = {callback.best_model_path, callback.last_model_path, *callback.best_k_models}
        fresh = []
        for path in sorted(p for p in candidates if p):
            if "://" in path:
                warn_once(
                    "checkpoint-remote",
                    f"Tracelet uploads checkpoints from local disk only; {path} is left where it is.",
                )
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            signature = (st.st_ino, st.st_mtime_ns, st.st_size)
            if self._stats.get(path) != signature and st.st_mtime_ns >= self._since_ns:
                fresh.append(path)
            self._stats[path] = signature
        return fresh

    def _state_for(self, callback: ModelCheckpoint, trainer: Trainer | None) -> _CallbackState:
        key = callback.state_key
        state = self._callbacks.get(key)
        if state is not None:
            return state
        # Without the Trainer a second callback is only seen when it first saves; the first keeps its names.
        several = (trainer is not None and len(trainer.checkpoint_callbacks) > 1) or bool(self._callbacks)
        label = ""
        if several:
            base = _LABEL_UNSAFE.sub("_", callback.monitor).strip("._") if callback.monitor else "latest"
            taken = {s.label for s in self._callbacks.values()}
            label, n = base or "monitor", 2
            while label in taken:
                label, n = f"{base}-{n}", n + 1
        state = self._callbacks[key] = _CallbackState(label)
        return state


def _position(path: str, trainer: Trainer | None, fallback: tuple[int | None, int | None]) -> tuple[int, int]:
    """The epoch and global step a checkpoint was saved at."""
    if trainer is not None:
        return int(trainer.current_epoch), int(trainer.global_step)
    epoch, step = fallback
    name = Path(path).name
    if epoch is None and (match := _EPOCH_IN_NAME.search(name)):
        epoch = int(match.group(1))
    if step is None and (match := _STEP_IN_NAME.search(name)):
        step = int(match.group(1))
    return epoch or 0, step or 0


def _same_file(a: str, b: str) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def _score(callback: ModelCheckpoint, path: str, trainer: Trainer | None) -> float | None:
    """The monitored value of the checkpoint at ``path`` (a float), or None without a monitor."""
    if not callback.monitor:
        return None
    value: Any = callback.best_k_models.get(path)
    if value is None and trainer is not None:
        value = trainer.callback_metrics.get(callback.monitor)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_tracelet_state(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """Tracelet's state (run id, native ids...) inside a loaded checkpoint dict; empty if none."""
    callbacks = checkpoint.get("callbacks") or {}
    state = callbacks.get(CALLBACK_STATE_KEY) if isinstance(callbacks, Mapping) else None
    return dict(state) if isinstance(state, Mapping) else {}


def checkpoint_run_id(path: str | os.PathLike[str]) -> str | None:
    """The Tracelet run id stored in a checkpoint by :class:`~tracelet_lightning.TraceletCallback`.

    Use it to continue that run with a :class:`~tracelet_lightning.TraceletLogger` in a new process:
    ``TraceletLogger(run_id=checkpoint_run_id(path))``. The file is memory-mapped, not read whole.

    Args:
        path: a checkpoint written by a Trainer that had a ``TraceletCallback``.

    Returns:
        The run id, or None when the checkpoint holds no Tracelet state.
    """
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # an old (non-zip) checkpoint cannot be memory-mapped
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    run = CheckpointRun.from_state(read_tracelet_state(checkpoint))
    return run.run_id if run is not None else None

"""Hugging Face Transformers: ``TraceletTrainerCallback``, a ``TrainerCallback`` for ``Trainer``.

``Trainer(..., callbacks=[TraceletTrainerCallback()])`` records, on the main process only
(``state.is_world_process_zero``: one run under Accelerate/DDP):

- every dict the Trainer logs at ``state.global_step``, named as W&B's integration names them:
  ``train/loss``, ``train/learning_rate``, ``eval/loss`` (``eval_loss``), ``test/...``;
- ``TrainingArguments`` (``args/...``) and the model's config (``model_config/...``) as params, and the
  model's size (``model/parameters``, ``model/trainable_parameters``);
- checkpoints as ``log_checkpoints`` says (see :mod:`tracelet_core.integrations.transformers_checkpoints`);
- the end: FINISHED at ``on_train_end``, FAILED when training raises inside ``with callback:``
  (or, without it, when the exception ends the program).

Resuming: each checkpoint folder gets ``tracelet_run.json``; ``trainer.train(resume_from_checkpoint=...)``
continues that run (same Tracelet run id, same run in each tracker) instead of starting a new one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tracelet_core.api import start_logging
from tracelet_core.integrations._common import EndsRun, RunSource, require
from tracelet_core.integrations.transformers_checkpoints import CheckpointUploads, read_run_file, write_run_file
from tracelet_core.settings import load_settings

require("transformers", "transformers")

from transformers import TrainerCallback  # noqa: E402  (after the message-giving import check)

if TYPE_CHECKING:
    from tracelet_core.run import Run

__all__ = ["TraceletTrainerCallback", "metric_name"]

_PREFIXES = ("eval", "test")


class TraceletTrainerCallback(EndsRun, TrainerCallback):
    """Records a Hugging Face ``Trainer`` run into Tracelet.

    Args:
        run: the run to record into; default: the active run, else a new one (finished at the end).
        log_checkpoints: ``none``, ``last``, ``best`` (the Trainer's ``best_model_checkpoint``) or ``all``;
            default: the ``log_checkpoints`` setting (``TRACELET_LOG_CHECKPOINTS``).
        **start_options: arguments for :func:`tracelet_core.start_logging` when a new run is started.
    """

    def __init__(self, run: Run | None = None, *, log_checkpoints: str | None = None, **start_options: Any) -> None:
        self._source = RunSource(run, start_options)
        self._options = dict(start_options)
        self._uploads: CheckpointUploads | None = None
        self._policy = log_checkpoints
        self._ended = False

    @property
    def run(self) -> Run | None:
        """The run recorded into (None before training starts, and on processes other than the main one)."""
        return self._source.run

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        resumed = self._resumed_run(args, state)
        if resumed is not None:
            self._source.run, self._source.owned = resumed, True
        run = self._source.get()
        self._ended = False
        policy = self._policy or run.settings.log_checkpoints
        self._uploads = CheckpointUploads(policy)
        run.log_params({"args": _plain_args(args)})
        if model is not None:
            config = getattr(model, "config", None)
            if config is not None and hasattr(config, "to_dict"):
                run.log_params({"model_config": config.to_dict()})
            run.log_params(_model_size(model), config=False)

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        run = self._source.run
        if not state.is_world_process_zero or run is None or not run.active or not logs:
            return
        metrics = {
            metric_name(key): value
            for key, value in logs.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        }
        if metrics:
            run.log_metrics(metrics, step=state.global_step)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        run = self._source.run
        if not state.is_world_process_zero or run is None or not run.active:
            return
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if not os.path.isdir(folder):
            return
        write_run_file(folder, run)
        uploads = self._uploads
        if uploads is not None and uploads.wanted(folder, state.best_model_checkpoint):
            uploads.upload(run, folder, state.global_step, state.epoch, state.best_model_checkpoint)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self._end("FINISHED")

    def _resumed_run(self, args: Any, state: Any) -> Run | None:
        """The run a checkpoint being resumed from names, continued; None for a fresh training."""
        if state.global_step == 0 or self._source.run is not None:
            return None
        stored = read_run_file(os.path.join(args.output_dir, f"checkpoint-{state.global_step}"))
        if stored is None:
            return None
        settings = load_settings(journal_dir=stored.get("journal_dir"), experiment=stored.get("experiment"))
        options = {k: v for k, v in self._options.items() if k not in ("journal_dir", "experiment", "run_id")}
        return start_logging(
            settings=settings, run_id=stored["run_id"], native_ids=stored.get("backend_run_ids") or {}, **options
        )


def metric_name(key: str) -> str:
    """A Trainer log key as Tracelet records it: ``eval_loss`` -> ``eval/loss``, ``loss`` -> ``train/loss``.

    Example:
        >>> [metric_name(k) for k in ("loss", "eval_loss", "test_accuracy", "train_runtime", "eval/x")]
        ['train/loss', 'eval/loss', 'test/accuracy', 'train/train_runtime', 'eval/x']
    """
    if "/" in key:
        return key
    for prefix in _PREFIXES:
        if key.startswith(f"{prefix}_"):
            return f"{prefix}/{key[len(prefix) + 1 :]}"
    return f"train/{key}"


def _plain_args(args: Any) -> dict[str, Any]:
    values = args.to_dict() if hasattr(args, "to_dict") else dict(vars(args))
    return {key: value for key, value in values.items() if not key.startswith("_")}


def _model_size(model: Any) -> dict[str, int]:
    total = trainable = 0
    for parameter in model.parameters():
        total += parameter.numel()
        trainable += parameter.numel() if parameter.requires_grad else 0
    return {"model/parameters": total, "model/trainable_parameters": trainable}

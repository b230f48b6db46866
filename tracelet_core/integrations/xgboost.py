"""XGBoost: a ``xgboost.callback.TrainingCallback`` that records a training into a Tracelet run.

Each iteration's evaluation results become metrics ``<data>/<metric>`` (``validation/rmse``) at
step = the iteration, one ``log_metrics`` call (a queue put) per iteration. At the start: the
booster's parameters (``xgboost/...``, as XGBoost's own saved configuration states them, plus the
``params`` given here). At the end: ``best_iteration`` / ``best_score`` (when early stopping set
them), feature importances (weight, gain, cover: ``feature_importance/*.json`` and a bar chart per
kind) and the model (``model/model.ubj``); the run ends FINISHED, or FAILED when training raises
inside ``with callback:``. Works with ``xgb.train``, ``xgb.cv`` (mean and std per metric) and the
scikit-learn estimators (``XGBClassifier(callbacks=[...])``).

Example:
    >>> import tempfile, numpy as np, xgboost as xgb
    >>> data = xgb.DMatrix(np.arange(40.0).reshape(20, 2), label=np.arange(20.0))
    >>> callback = TraceletXGBoostCallback(backends=[], journal_dir=tempfile.mkdtemp(),
    ...                                    system_metrics=False, git=False, environment=False)
    >>> booster = xgb.train({"max_depth": 2}, data, 3, evals=[(data, "train")], callbacks=[callback],
    ...                     verbose_eval=False)
    >>> callback.run.status
    'FINISHED'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracelet_core.integrations._common import EndsRun, RunSource, importance_files, require, scratch_dir
from tracelet_core.normalize import flatten_params

require("xgboost", "xgboost")

from xgboost.callback import TrainingCallback  # noqa: E402  (after the message-giving import check)

if TYPE_CHECKING:
    from tracelet_core.run import Run

__all__ = ["TraceletXGBoostCallback", "booster_params", "iteration_metrics"]

IMPORTANCE_TYPES = ("weight", "gain", "cover")


class TraceletXGBoostCallback(EndsRun, TrainingCallback):
    """Records an XGBoost training: eval metrics per iteration, params, best iteration, importances, model.

    Args:
        run: the run to record into; default: the active run, else a new one (finished at the end).
        params: extra parameters to record (e.g. ``num_boost_round``), beside the booster's own.
        log_model: upload the trained model file.
        log_importance: upload feature importances and their charts.
        **start_options: arguments for :func:`tracelet_core.start_logging` when a new run is started
            (``experiment``, ``backends``, ``run_name``, ``tags``...).
    """

    def __init__(
        self,
        run: Run | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        log_model: bool = True,
        log_importance: bool = True,
        **start_options: Any,
    ) -> None:
        super().__init__()
        self._source = RunSource(run, start_options)
        self._params = dict(params or {})
        self._log_model = log_model
        self._log_importance = log_importance
        self._ended = False

    @property
    def run(self) -> Run | None:
        """The run recorded into (None before training starts)."""
        return self._source.run

    def before_training(self, model: Any) -> Any:
        run = self._source.get()
        params = booster_params(model) if hasattr(model, "save_config") else {}
        params.update({f"xgboost/{key}": value for key, value in self._params.items()})
        if params:
            run.log_params(params)
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: TrainingCallback.EvalsLog) -> bool:
        run = self._source.run
        if run is not None and evals_log:
            run.log_metrics(iteration_metrics(evals_log), step=epoch)
        return False

    def after_training(self, model: Any) -> Any:
        run = self._source.run
        if run is None or not hasattr(model, "save_model"):  # xgb.cv hands over a CVPack: no single model
            self._end("FINISHED")
            return model
        best = {key: model.attr(key) for key in ("best_iteration", "best_score")}
        run.log_metrics({key: float(value) for key, value in best.items() if value is not None}, step=None)
        with scratch_dir(run, "xgboost") as scratch:
            directory = Path(scratch)
            if self._log_importance:
                importances = {kind: _importance(model, kind) for kind in IMPORTANCE_TYPES}
                for path, name in importance_files(importances, directory, "XGBoost"):
                    run.log_artifact(path, name)
            if self._log_model:
                path = directory / "model.ubj"
                model.save_model(str(path))
                run.log_artifact(path, "model/model.ubj")
        self._end("FINISHED")
        return model


def iteration_metrics(evals_log: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """The newest value of each evaluation metric, as ``<data>/<metric>``; ``xgb.cv``'s (mean, std)
    pairs as ``<data>/<metric>-mean`` and ``-std``.

    Example:
        >>> iteration_metrics({"train": {"rmse": [0.9, 0.5]}, "test": {"auc": [(0.8, 0.01)]}})
        {'train/rmse': 0.5, 'test/auc-mean': 0.8, 'test/auc-std': 0.01}
    """
    values: dict[str, float] = {}
    for data, metrics in evals_log.items():
        for metric, history in metrics.items():
            last = history[-1]
            if isinstance(last, tuple):
                values[f"{data}/{metric}-mean"], values[f"{data}/{metric}-std"] = float(last[0]), float(last[1])
            else:
                values[f"{data}/{metric}"] = float(last)
    return values


def booster_params(booster: Any) -> dict[str, Any]:
    """The booster's training parameters as XGBoost's saved configuration states them (``xgboost/...``).

    Taken from ``Booster.save_config()``: the learner's parameters, the objective, the booster kind
    and the tree parameters, which is what ``xgb.train(params)`` set (and the defaults it left).
    """
    config = json.loads(booster.save_config())["learner"]
    picked: dict[str, Any] = {
        "learner": config.get("learner_train_param", {}),
        "generic": config.get("generic_param", {}),
        "objective": config.get("objective", {}).get("name"),
        "booster": config.get("gradient_booster", {}).get("name"),
    }
    trees = config.get("gradient_booster", {})
    for section in ("tree_train_param", "gbtree_train_param"):
        if section in trees:
            picked[section] = trees[section]
    if "updater" in trees and isinstance(trees["updater"], Mapping):
        for updater in trees["updater"].values():
            if isinstance(updater, Mapping) and "train_param" in updater:
                picked["tree"] = updater["train_param"]
    return {f"xgboost/{key}": value for key, value in flatten_params(picked).items()}


def _importance(booster: Any, kind: str) -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in booster.get_score(importance_type=kind).items()}
    except Exception:  # linear boosters and empty models have no tree importances
        return {}

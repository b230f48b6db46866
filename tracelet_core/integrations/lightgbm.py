"""LightGBM: ``TraceletLightGBMCallback``, a callback for ``lgb.train``, ``lgb.cv`` and the scikit-learn estimators.

Each iteration's evaluation results become metrics ``<data>/<metric>`` (``valid/binary_logloss``) at
step = the iteration (``lgb.cv``: ``<data>/<metric>-mean`` and ``-std``); the first iteration records
the training parameters (``lightgbm/...``). The callback runs before ``lgb.early_stopping`` (order 25
< 30), so the iteration that stops training is recorded too.

LightGBM's callbacks see iterations only, not the end of training. Use the callback as a context
manager: when the ``with`` block ends it records ``best_iteration`` / ``best_score`` (which
``lgb.train`` sets after its loop), feature importances (split and gain: ``feature_importance/*``)
and the model (``model/model.txt``), and ends the run FINISHED, or FAILED when the block raises.
Without ``with``, this happens at the last scheduled iteration (without the best iteration).

Example:
    >>> import tempfile, numpy as np, lightgbm as lgb
    >>> X = np.random.default_rng(0).normal(size=(60, 3)); y = X[:, 0] * 2
    >>> data = lgb.Dataset(X, y)
    >>> with TraceletLightGBMCallback(backends=[], journal_dir=tempfile.mkdtemp(), system_metrics=False,
    ...                               git=False, environment=False) as callback:
    ...     booster = lgb.train({"verbose": -1, "min_data_in_leaf": 5}, data, 3, valid_sets=[data],
    ...                         valid_names=["train"], callbacks=[callback])
    >>> callback.run.status
    'FINISHED'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from tracelet_core.integrations._common import EndsRun, RunSource, importance_files, require, scratch_dir

require("lightgbm", "lightgbm")

if TYPE_CHECKING:
    from tracelet_core.run import Run

__all__ = ["TraceletLightGBMCallback", "iteration_metrics"]


class TraceletLightGBMCallback(EndsRun):
    """Records a LightGBM training: eval metrics per iteration, params, best iteration, importances, model.

    Args:
        run: the run to record into; default: the active run, else a new one (finished at the end).
        log_model: upload the trained model file.
        log_importance: upload feature importances and their charts.
        **start_options: arguments for :func:`tracelet_core.start_logging` when a new run is started.
    """

    order = 25  # LightGBM runs callbacks by `order`: before early_stopping (30), after record_evaluation (20)
    before_iteration = False

    def __init__(
        self, run: Run | None = None, *, log_model: bool = True, log_importance: bool = True, **start_options: Any
    ) -> None:
        self._source = RunSource(run, start_options)
        self._log_model = log_model
        self._log_importance = log_importance
        self._model: Any = None
        self._ended = False
        self._in_context = False

    @property
    def run(self) -> Run | None:
        """The run recorded into (None before training starts)."""
        return self._source.run

    def __call__(self, env: Any) -> None:
        run = self._source.get()
        if self._model is None:
            self._model = env.model
            run.log_params({"lightgbm": dict(env.params)})
        if env.evaluation_result_list:
            run.log_metrics(iteration_metrics(env.evaluation_result_list), step=env.iteration)
        if not self._in_context and env.iteration == env.end_iteration - 1:
            self._end("FINISHED")

    def __enter__(self) -> Self:
        self._in_context = True
        return self

    def _before_end(self, status: str) -> None:
        run, model = self._source.run, self._model
        if status == "FINISHED" and run is not None and run.active and hasattr(model, "feature_importance"):
            _log_outcome(run, model, self._log_importance, self._log_model)


def iteration_metrics(results: Sequence[Sequence[Any]]) -> dict[str, float]:
    """One iteration's ``evaluation_result_list`` as metrics; ``lgb.cv``'s 5-tuples as ``-mean`` / ``-std``.

    Example:
        >>> iteration_metrics([("valid_0", "l2", 0.5, False), ("valid", "auc", 0.9, True, 0.01)])
        {'valid_0/l2': 0.5, 'valid/auc-mean': 0.9, 'valid/auc-std': 0.01}
    """
    values: dict[str, float] = {}
    for result in results:
        data, metric, value = result[0], result[1], float(result[2])
        if len(result) >= 5:
            values[f"{data}/{metric}-mean"], values[f"{data}/{metric}-std"] = value, float(result[4])
        else:
            values[f"{data}/{metric}"] = value
    return values


def _log_outcome(run: Run, booster: Any, log_importance: bool, log_model: bool) -> None:
    best: dict[str, float] = {}
    if getattr(booster, "best_iteration", 0):
        best["best_iteration"] = float(booster.best_iteration)
    scores: Mapping[str, Mapping[str, float]] = getattr(booster, "best_score", {}) or {}
    for data, metrics in scores.items():
        best.update({f"best_score/{data}/{metric}": float(value) for metric, value in metrics.items()})
    if best:
        run.log_metrics(best, step=None)
    with scratch_dir(run, "lightgbm") as scratch:
        directory = Path(scratch)
        if log_importance:
            names = booster.feature_name()
            importances = {
                kind: {name: float(value) for name, value in zip(names, booster.feature_importance(kind), strict=True)}
                for kind in ("split", "gain")
            }
            for path, name in importance_files(importances, directory, "LightGBM"):
                run.log_artifact(path, name)
        if log_model:
            path = directory / "model.txt"
            booster.save_model(str(path))
            run.log_artifact(path, "model/model.txt")

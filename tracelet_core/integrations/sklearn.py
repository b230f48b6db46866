"""scikit-learn: ``track(estimator, ...)`` records a fit, its timings and scores, and the fitted model.

Inside ``with track(estimator, validation=(X_val, y_val), scoring=["accuracy"]) as model:``,
``model.fit(X, y)`` records ``get_params(deep=True)`` as params (``sklearn/...``), ``fit_time_s``, the
asked scores on the validation data (``val/<scorer>``, with ``score_time_s``) and the fitted estimator
as ``model/model.skops`` (or ``model.joblib`` when skops is not installed); ``model.predict(X)``
records ``predict_time_s`` per call (step = call number). Everything else is the estimator's own.

A ``GridSearchCV`` / ``RandomizedSearchCV`` additionally records every candidate as a child run of
the search's run: its params, its cross-validated ``cv/mean_test_score`` / ``std`` / ``rank`` and
fit time; tagged ``tracelet.parent_run_id`` (every tracker), ``mlflow.parentRunId`` (MLflow nests
it under the search), and grouped in W&B under the search's group. The parent holds the best
candidate (``best/...`` params, ``best_score``) and ``cv_results.csv``.

Example:
    >>> import tempfile
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> with track(LogisticRegression(max_iter=200), validation=(X, y), scoring="accuracy", backends=[],
    ...            journal_dir=tempfile.mkdtemp(), system_metrics=False, git=False, environment=False) as model:
    ...     _ = model.fit(X, y)
    >>> model.run.status
    'FINISHED'
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tracelet_core.integrations._common import RunSource, require, scratch_dir
from tracelet_core.integrations.sklearn_search import log_search

if TYPE_CHECKING:
    from tracelet_core.run import Run

__all__ = ["TrackedEstimator", "track"]


def track(
    estimator: Any,
    *,
    validation: tuple[Any, Any] | None = None,
    scoring: str | Sequence[str] | None = None,
    run: Run | None = None,
    log_model: bool = True,
    max_child_runs: int = 100,
    **start_options: Any,
) -> TrackedEstimator:
    """Wrap ``estimator`` so that its fits and predictions are recorded; use it as a context manager.

    Args:
        estimator: any scikit-learn estimator, including ``GridSearchCV`` / ``RandomizedSearchCV``.
        validation: ``(X_val, y_val)`` to score the fitted estimator on.
        scoring: scorer names (``"accuracy"``, ``["f1_macro", "roc_auc_ovr"]``); default: ``estimator.score``.
        run: the run to record into; default: the active run, else a new one, finished when the
            ``with`` block ends (FAILED when it raises).
        log_model: upload the fitted estimator.
        max_child_runs: a search records at most this many candidates as child runs (all are in
            ``cv_results.csv``).
        **start_options: arguments for :func:`tracelet_core.start_logging` when a new run is started.

    Returns:
        The wrapped estimator: ``fit``/``predict``/``predict_proba``/``transform`` are recorded, every
        other attribute is the estimator's.
    """
    require("sklearn", "sklearn")
    return TrackedEstimator(estimator, validation, scoring, run, log_model, max_child_runs, start_options)


class TrackedEstimator:
    """An estimator whose ``fit`` and ``predict`` are recorded (made by :func:`track`)."""

    def __init__(
        self,
        estimator: Any,
        validation: tuple[Any, Any] | None,
        scoring: str | Sequence[str] | None,
        run: Run | None,
        log_model: bool,
        max_child_runs: int,
        start_options: Mapping[str, Any],
    ) -> None:
        self.estimator = estimator
        self._validation = validation
        self._scoring = [scoring] if isinstance(scoring, str) else list(scoring or [])
        self._log_model = log_model
        self._max_children = max_child_runs
        options = dict(start_options)
        self._search = hasattr(estimator, "param_distributions") or hasattr(estimator, "param_grid")
        if self._search and run is None:
            # A known id names the W&B group before the run starts: children join the same group.
            options.setdefault("run_id", uuid.uuid4().hex)
            options.setdefault("wandb", {"group": f"search-{options['run_id'][:8]}"})
        self._source = RunSource(run, options)
        self._predict_calls = 0
        self.child_runs: list[Run] = []  # a search's candidates, once fitted

    @property
    def run(self) -> Run | None:
        """The run recorded into (None before ``fit``)."""
        return self._source.run

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> TrackedEstimator:
        """Fit the estimator and record params, fit time, validation scores, the model and a search's candidates."""
        run = self._source.get()
        run.log_params({"sklearn": self.estimator.get_params(deep=True), "estimator": type(self.estimator).__name__})
        started = time.perf_counter()
        self.estimator.fit(X, y, **fit_params)
        run.log_metric("fit_time_s", time.perf_counter() - started, step=0)
        if self._search:
            self.child_runs = log_search(run, self.estimator, self._max_children)
        if self._validation is not None:
            self._log_scores(run, *self._validation)
        if self._log_model:
            self._upload_model(run)
        return self

    def predict(self, X: Any, **kwargs: Any) -> Any:
        """``estimator.predict``, timed (``predict_time_s``)."""
        return self._timed("predict", X, **kwargs)

    def predict_proba(self, X: Any, **kwargs: Any) -> Any:
        """``estimator.predict_proba``, timed (``predict_proba_time_s``)."""
        return self._timed("predict_proba", X, **kwargs)

    def transform(self, X: Any, **kwargs: Any) -> Any:
        """``estimator.transform``, timed (``transform_time_s``)."""
        return self._timed("transform", X, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.estimator, name)

    def __enter__(self) -> TrackedEstimator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._source.finish("FAILED" if exc_type is not None else "FINISHED")

    def _timed(self, method: str, X: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = getattr(self.estimator, method)(X, **kwargs)
        run = self._source.run
        if run is not None and run.active:
            run.log_metric(f"{method}_time_s", time.perf_counter() - started, step=self._predict_calls)
            self._predict_calls += 1
        return result

    def _log_scores(self, run: Run, X_val: Any, y_val: Any) -> None:
        from sklearn.metrics import get_scorer

        started = time.perf_counter()
        if self._scoring:
            scores = {f"val/{name}": float(get_scorer(name)(self.estimator, X_val, y_val)) for name in self._scoring}
        else:
            scores = {"val/score": float(self.estimator.score(X_val, y_val))}
        scores["score_time_s"] = time.perf_counter() - started
        run.log_metrics(scores, step=0)

    def _upload_model(self, run: Run) -> None:
        with scratch_dir(run, "sklearn") as scratch:
            try:
                import skops.io as sio

                path = Path(scratch) / "model.skops"
                sio.dump(self.estimator, path)
            except ImportError:  # skops is optional: joblib comes with scikit-learn
                import joblib

                path = Path(scratch) / "model.joblib"
                joblib.dump(self.estimator, path)
            run.log_artifact(path, f"model/{path.name}")

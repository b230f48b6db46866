"""A fitted ``GridSearchCV`` / ``RandomizedSearchCV`` as a parent run with one child run per candidate.

The children are recorded after the search has fitted, from its public ``cv_results_``; nothing in
scikit-learn is patched. They deliver on threads of this process (``delivery="thread"``): one
delivery process per candidate would cost a tracker SDK import each.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracelet_core.errors import warn_once
from tracelet_core.integrations._common import scratch_dir
from tracelet_core.run import Run

if TYPE_CHECKING:
    from tracelet_core.settings import TraceletSettings

__all__ = ["PARENT_TAG", "candidate_metrics", "log_search"]

PARENT_TAG = "tracelet.parent_run_id"
MLFLOW_PARENT_TAG = "mlflow.parentRunId"  # MLflow's UI nests a run under the run this tag names
_CV_PREFIXES = ("mean_test_", "std_test_", "rank_test_", "mean_train_", "std_train_")
_CV_TIMES = ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time")


def log_search(parent: Run, search: Any, max_children: int, parent_wait_s: float = 30.0) -> list[Run]:
    """Record a fitted search: the best candidate and ``cv_results.csv`` on ``parent``, and one child
    run per candidate (the first ``max_children``).

    Args:
        parent: the search's run.
        search: a fitted ``GridSearchCV`` / ``RandomizedSearchCV`` (anything with ``cv_results_``).
        max_children: at most this many child runs.
        parent_wait_s: how long to wait for MLflow's id of the parent (for ``mlflow.parentRunId``).

    Returns:
        The child runs, finished.
    """
    results = search.cv_results_
    if hasattr(search, "best_params_"):
        parent.log_params({"best": search.best_params_}, config=False)
        parent.log_metrics({"best_score": float(search.best_score_), "best_index": int(search.best_index_)}, step=0)
    _upload_results(parent, results)
    candidates = len(results["params"])
    if candidates > max_children:
        warn_once(
            f"sklearn-children:{parent.id}",
            f"The search has {candidates} candidates; the first {max_children} are child runs "
            "(all are in cv_results.csv). Raise max_child_runs to record more.",
        )
    tags = {PARENT_TAG: parent.id, "tracelet.search_run": parent.name or parent.id}
    mlflow_parent = _mlflow_id(parent, parent_wait_s)
    if mlflow_parent:
        tags[MLFLOW_PARENT_TAG] = mlflow_parent
    children = []
    for index in range(min(candidates, max_children)):
        child = Run(_child_settings(parent.settings, f"{parent.name or 'search'}-candidate-{index}")).start()
        child.set_tags({**tags, "tracelet.candidate_index": index})
        child.log_params({"sklearn": results["params"][index]})
        child.log_metrics(candidate_metrics(results, index), step=0)
        children.append(child)
    for child in children:  # started together: their deliveries overlap
        child.finish("FINISHED")
    return children


def candidate_metrics(results: dict[str, Any], index: int) -> dict[str, float]:
    """One candidate's cross-validation results as metrics ``cv/<column>`` (NaN scores left out).

    Example:
        >>> candidate_metrics({"mean_test_score": [0.9, 0.8], "rank_test_score": [1, 2], "params": [{}, {}]}, 1)
        {'cv/mean_test_score': 0.8, 'cv/rank_test_score': 2.0}
    """
    metrics = {}
    for column, values in results.items():
        if column.startswith(_CV_PREFIXES) or column in _CV_TIMES:
            value = float(values[index])
            if not math.isnan(value):
                metrics[f"cv/{column}"] = value
    return metrics


def _child_settings(settings: TraceletSettings, name: str) -> TraceletSettings:
    # The parent's trackers and experiment; no collectors (the parent has the machine's state).
    return settings.model_copy(
        update={
            "run_name": name,
            "tags": {},
            "delivery": "thread",
            "system_metrics": False,
            "git": False,
            "environment": False,
        }
    )


def _mlflow_id(parent: Run, wait_s: float) -> str | None:
    """MLflow's id of the parent run, once the delivery has opened it (None without MLflow or after ``wait_s``)."""
    if "mlflow" not in parent.backends:
        return None
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        native = parent.backend_run_ids.get("mlflow")
        if native:
            return native
        time.sleep(0.05)
    warn_once(
        f"sklearn-parent:{parent.id}",
        f"MLflow had not opened the search's run after {wait_s:.0f} s; its candidates are tagged "
        f"{PARENT_TAG} but not nested under it in MLflow's UI.",
    )
    return None


def _upload_results(run: Run, results: dict[str, Any]) -> None:
    columns = list(results)
    with scratch_dir(run, "sklearn-search") as scratch:
        path = Path(scratch) / "cv_results.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            for index in range(len(results["params"])):
                writer.writerow([results[column][index] for column in columns])
        run.log_artifact(path, "search/cv_results.csv")

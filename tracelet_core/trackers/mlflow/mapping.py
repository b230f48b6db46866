"""Tracelet's facts under MLflow's own names, so MLflow's UI fills its own fields.

MLflow's run page shows "Created by" from ``mlflow.user``, "Source" from ``mlflow.source.name`` and
``mlflow.source.type``, and the git commit from ``mlflow.source.git.commit``
(``mlflow/utils/mlflow_tags.py``); its experiment page opens in the "Model training" view when the
experiment's ``mlflow.experimentKind`` tag says so (MLflow 3's UI otherwise guesses, and may pick the
GenAI view).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["EXPERIMENT_KIND_TAG", "MODEL_TRAINING", "mlflow_tags"]

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"  # MLflow UI's ExperimentKind.CUSTOM_MODEL_DEVELOPMENT
SOURCE_TYPE_TAG = "mlflow.source.type"

# Facts MLflow has a field for: stored under MLflow's name only.
_RENAMED = {"env.user": "mlflow.user", "env.program": "mlflow.source.name"}
# Git facts: under MLflow's name for its UI, and under Tracelet's for searches that work in every tracker.
_COPIED = {
    "git.commit": "mlflow.source.git.commit",
    "git.branch": "mlflow.source.git.branch",
    "git.remote": "mlflow.source.git.repoURL",  # the git collector has stripped credentials
}


def mlflow_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The MLflow tags of Tracelet tags: MLflow's own system tags where MLflow has one.

    Example:
        >>> sorted(mlflow_tags({"env.program": "train.py", "git.commit": "abc", "team": "x"}).items())
        [('git.commit', 'abc'), ('mlflow.source.git.commit', 'abc'), ('mlflow.source.name', 'train.py'), \
('mlflow.source.type', 'LOCAL'), ('team', 'x')]
    """
    result: dict[str, str] = {}
    for key, value in tags.items():
        renamed = _RENAMED.get(key)
        if renamed is None:
            result[key] = value
        else:
            result[renamed] = value
        if key in _COPIED:
            result[_COPIED[key]] = value
        if key == "env.program":
            result[SOURCE_TYPE_TAG] = "LOCAL"  # a script run on this machine, as MLflow's own default says
    return result


def tracelet_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The Tracelet tags of an MLflow run's tags (the inverse of :func:`mlflow_tags`), for copies.

    MLflow's names of facts Tracelet records itself go back to Tracelet's names, so a run copied to
    another tracker holds each fact once; a run MLflow made alone keeps its git facts as ``git.*``.

    Example:
        >>> sorted(tracelet_tags({"mlflow.user": "ana", "mlflow.source.type": "LOCAL",
        ...                       "mlflow.source.git.commit": "abc", "mlflow.runName": "r", "x": "1"}).items())
        [('env.user', 'ana'), ('git.commit', 'abc'), ('x', '1')]
    """
    back = {mlflow: ours for ours, mlflow in (*_RENAMED.items(), *_COPIED.items())}
    result: dict[str, str] = {}
    for key, value in tags.items():
        if key in ("mlflow.runName", SOURCE_TYPE_TAG):
            continue
        ours = back.get(key)
        if ours is None:
            result[key] = value
        else:
            result.setdefault(ours, value)
    return result

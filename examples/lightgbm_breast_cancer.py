"""LightGBM with Tracelet: every eval metric per iteration, the params, the best iteration, feature
importances and the model, through LightGBM's callback API.

    python examples/lightgbm_breast_cancer.py

Everything it writes goes under ``.tracelet-examples/`` (see ``_outputs.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightgbm as lgb
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tracelet_core.integrations.lightgbm import TraceletLightGBMCallback

from _outputs import enter_output_dir


def main() -> None:
    enter_output_dir()
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.25, random_state=0)
    train, valid = lgb.Dataset(X_train, y_train), lgb.Dataset(X_valid, y_valid)
    params = {"objective": "binary", "metric": ["binary_logloss", "auc"], "num_leaves": 15, "verbose": -1}
    # LightGBM's callbacks see iterations only: the `with` block's end records the outcome and ends the run
    with TraceletLightGBMCallback(experiment="lightgbm-breast-cancer") as callback:
        booster = lgb.train(
            params,
            train,
            200,
            valid_sets=[valid],
            valid_names=["valid"],
            callbacks=[callback, lgb.early_stopping(10, verbose=False)],
        )
    print(f"best iteration {booster.best_iteration}; run {callback.run}")


if __name__ == "__main__":
    main()

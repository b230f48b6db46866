"""XGBoost with Tracelet: every eval metric per iteration, the booster's params, the best iteration,
feature importances (JSON and charts) and the model, through XGBoost's own callback API.

    python examples/xgboost_breast_cancer.py    # then: tracelet runs, or mlflow ui in .tracelet-examples/

Everything it writes goes under ``.tracelet-examples/`` (see ``_outputs.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import xgboost as xgb
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tracelet_core.integrations.xgboost import TraceletXGBoostCallback

from _outputs import enter_output_dir


def main() -> None:
    enter_output_dir()
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.25, random_state=0)
    train, valid = xgb.DMatrix(X_train, label=y_train), xgb.DMatrix(X_valid, label=y_valid)
    params = {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"], "max_depth": 3, "eta": 0.1}
    # `with`: a training that raises ends the run FAILED; otherwise it ends FINISHED after training
    with TraceletXGBoostCallback(experiment="xgboost-breast-cancer", params={"num_boost_round": 200}) as callback:
        booster = xgb.train(
            params,
            train,
            200,
            evals=[(train, "train"), (valid, "valid")],
            early_stopping_rounds=10,
            callbacks=[callback],
            verbose_eval=False,
        )
    print(f"best iteration {booster.best_iteration}, valid auc {booster.best_score:.4f}; run {callback.run}")


if __name__ == "__main__":
    main()

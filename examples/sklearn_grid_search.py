"""scikit-learn with Tracelet: a GridSearchCV as one run with a child run per candidate (nested in
MLflow's UI, one group in W&B), the best candidate, validation scores and the fitted model (skops).

    python examples/sklearn_grid_search.py

Everything it writes goes under ``.tracelet-examples/`` (see ``_outputs.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tracelet_core.integrations.sklearn import track

from _outputs import enter_output_dir


def main() -> None:
    enter_output_dir()
    X, y = load_digits(return_X_y=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.25, random_state=0)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), SVC()), {"svc__C": [0.1, 1, 10], "svc__gamma": ["scale", 0.001]}, cv=3
    )
    with track(
        search, validation=(X_valid, y_valid), scoring=["accuracy", "f1_macro"], experiment="digits-svc"
    ) as model:
        model.fit(X_train, y_train)
        model.predict(X_valid)
    print(f"best {search.best_params_} ({search.best_score_:.3f}); run {model.run}, {len(model.child_runs)} candidates")


if __name__ == "__main__":
    main()

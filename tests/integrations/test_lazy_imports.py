"""``import tracelet_core`` (and its integrations package) loads none of the integrated libraries."""

from __future__ import annotations

import subprocess
import sys

LIBRARIES = ("xgboost", "lightgbm", "sklearn", "transformers", "skops", "joblib", "matplotlib", "torch")


def test_importing_tracelet_core_and_its_integrations_package_imports_no_ml_library() -> None:
    code = (
        "import sys, tracelet_core, tracelet_core.integrations\n"
        f"print(sorted(m for m in {LIBRARIES!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"

"""The integration examples run and write only into ``.tracelet-examples/`` (as tests/docs/test_examples.py
checks for the Lightning examples)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNS = {
    "xgboost_breast_cancer.py": ("xgboost", []),
    "lightgbm_breast_cancer.py": ("lightgbm", []),
    "sklearn_grid_search.py": ("sklearn", []),
    "transformers_tiny_bert.py": ("transformers", ["--max-steps", "10"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("example", sorted(RUNS))
def test_an_integration_example_runs_and_writes_only_into_its_output_folder(example: str, tmp_path: Path) -> None:
    library, args = RUNS[example]
    pytest.importorskip(library)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / example), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "status='FINISHED'" in result.stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == [".tracelet-examples"]

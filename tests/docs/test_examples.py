"""The examples write everything under one git-ignored folder, ``.tracelet-examples/``, of the directory
they run from: run from a clone, they leave nothing untracked (which the next run would record as
``git.untracked``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
OUTPUT_DIR = ".tracelet-examples"

RUNS = {
    "train_digits.py": ["--epochs", "1"],
    "plain_pytorch_tensorboard.py": ["--epochs", "1"],
    "resume.py": ["--epochs", "1"],
}


@pytest.mark.slow
@pytest.mark.parametrize("example", sorted(RUNS))
def test_an_example_writes_only_into_its_output_folder(example: str, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / example), *RUNS[example]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(path.name for path in tmp_path.iterdir()) == [OUTPUT_DIR]
    assert (tmp_path / OUTPUT_DIR / ".tracelet").is_dir(), "the run's journal is in the output folder"


@pytest.mark.parametrize("path", [f"{OUTPUT_DIR}/mlflow.db", f"examples/{OUTPUT_DIR}/checkpoints/last.ckpt"])
def test_the_output_folder_is_ignored_by_git(path: str) -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, capture_output=True, text=True)
    if ignored.returncode == 128:
        pytest.skip(f"git cannot tell here: {ignored.stderr.strip()}")
    assert ignored.returncode == 0, f"{path} is not ignored: add {OUTPUT_DIR}/ to .gitignore"

"""Where the examples write: everything under one folder, ``.tracelet-examples/`` of the directory they are
run from (git-ignored in this repository).

An example moves into that folder before it trains, so Tracelet's journal (``.tracelet``), MLflow's
default store (``mlflow.db``, ``mlruns``), Aim's repository and artifacts, W&B's offline runs,
checkpoints and TensorBoard logs all land there. Run from a clone of this repository, the examples
then leave nothing untracked behind, and the next run's ``git.untracked`` tag stays 0. Your own
training script needs none of this.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

OUTPUT_DIR = ".tracelet-examples"


def enter_output_dir(path: str = OUTPUT_DIR) -> Path:
    """Create ``path`` (relative to the current directory) and make it the working directory."""
    output = Path(path).resolve()
    output.mkdir(parents=True, exist_ok=True)
    os.chdir(output)
    return output


def absolute_paths(args: Sequence[str]) -> list[str]:
    """Command-line arguments with the paths of existing files made absolute (``--config x.yaml`` and
    ``--config=x.yaml``), so that they still name the same files after :func:`enter_output_dir`."""

    def absolute(value: str) -> str:
        return str(Path(value).resolve()) if value and os.path.exists(value) else value

    result = []
    for arg in args:
        option, equals, value = arg.partition("=")
        result.append(f"{option}={absolute(value)}" if arg.startswith("--") and equals else absolute(arg))
    return result

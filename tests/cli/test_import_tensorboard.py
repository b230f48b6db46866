"""`tracelet import-tensorboard`: add_hparams folders join their run; output stays readable."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient


def test_hparams_folders_merge_into_their_run_and_the_output_is_clean(
    tmp_path: Path, tracelet: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "logs" / "baseline"))
    for step in range(5):
        writer.add_scalar("loss", 1.0 / (step + 1), step)
        writer.add_histogram("weights", np.array([0.1 * step, 0.2, 0.3]), step)
    writer.add_hparams({"lr": 0.01, "batch": 32}, {"hparam/acc": 0.8})  # a timestamped subfolder
    writer.close()
    assert len([p for p in (tmp_path / "logs" / "baseline").iterdir() if p.is_dir()]) == 1

    uri = f"sqlite:///{tmp_path / 'fresh.db'}"  # a new store: MLflow creates its tables, and says so at INFO
    result = tracelet(
        "import-tensorboard", str(tmp_path / "logs"), "-b", "mlflow", "--json", env={"MLFLOW_TRACKING_URI": uri}
    )
    assert result.returncode == 0, result.stderr
    (imported,) = json.loads(result.stdout)
    assert imported["name"] == "baseline"
    assert imported["params"] == 2 and len(imported["merged"]) == 1
    assert "Creating initial MLflow database tables" not in result.stderr
    assert "warning: The mlflow backend has no native histogram support" in result.stderr
    assert ".py:" not in result.stderr  # no Tracelet source file and line

    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("tracelet").experiment_id])
    assert run.data.params == {"lr": "0.01", "batch": "32"}
    assert (
        run.data.metrics["hparam/acc"] == pytest.approx(0.8)
        and len(client.get_metric_history(run.info.run_id, "loss")) == 5
    )

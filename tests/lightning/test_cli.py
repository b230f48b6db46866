"""LightningCLI: Tracelet configured from YAML alone, the whole config recorded, bad values caught by the parser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightning.pytorch.cli import LightningCLI
from mlflow.tracking import MlflowClient

from tests.lightning.models import TinyData, TinyModel, artifact_paths, mlflow_runs, only_run

REPO = Path(__file__).resolve().parents[2]


def config(tmp_path: Path, **logger_args: Any) -> Path:
    """A CLI config with TraceletLogger as the only logger and TraceletCallback."""
    data = {
        "seed_everything": 0,
        "trainer": {
            "max_epochs": 1,
            "log_every_n_steps": 2,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
            "logger": {
                "class_path": "tracelet_lightning.TraceletLogger",
                "init_args": {"backends": ["mlflow"], "delivery": "thread", **logger_args},
            },
            "callbacks": [
                {"class_path": "tracelet_lightning.TraceletCallback", "init_args": {"log_throughput": False}}
            ],
        },
        "model": {"hidden": 12, "lr": 0.05},
        "data": {"batch_size": 16},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def download_yaml(uri: str, run_id: str, path: str, tmp_path: Path) -> Any:
    return yaml.safe_load(Path(MlflowClient(uri).download_artifacts(run_id, path, str(tmp_path))).read_text())


def test_the_whole_config_is_recorded_and_the_next_run_in_the_same_directory_starts(
    mlflow_uri: str, tmp_path: Path
) -> None:
    path = config(tmp_path, experiment="cli")
    first = LightningCLI(TinyModel, TinyData, args=["fit", "--config", str(path)])
    # SaveConfigCallback writes config.yaml into trainer.log_dir (TraceletLogger.save_dir, shared by
    # every run) and refuses to start when it exists; Tracelet moves it into the run's own directory.
    second = LightningCLI(TinyModel, TinyData, args=["fit", "--config", str(path), "--model.hidden", "14"])

    runs = mlflow_runs(mlflow_uri, "cli")
    assert [run.data.params["model/hidden"] for run in runs] == ["12", "14"]
    for cli, run in zip((first, second), runs, strict=True):
        params = run.data.params
        assert params["trainer/max_epochs"] == "1" and params["data/batch_size"] == "16"
        assert params["trainer/logger/class_path"] == "tracelet_lightning.TraceletLogger"
        assert "hidden" not in params and "_instantiator" not in params  # the module's hparams are in the config
        recorded = download_yaml(mlflow_uri, run.info.run_id, "tracelet/config.yaml", tmp_path / run.info.run_id)
        assert recorded["model"] == {"hidden": int(params["model/hidden"]), "lr": 0.05, **_defaults()}
        assert recorded["trainer"]["logger"]["init_args"]["experiment"] == "cli"
        logger = cli.trainer.logger
        assert logger is not None and logger.log_dir is not None
        assert (Path(logger.log_dir) / "config.yaml").is_file()
    assert not (tmp_path / ".tracelet" / "config.yaml").exists()


def _defaults() -> dict[str, Any]:
    return {
        "features": 8,
        "optimizer": None,
        "fail_at_step": None,
        "param_groups": False,
        "log_media": False,
        "epoch_metric_only": False,
        "val_scores": None,
    }


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--trainer.logger=tracelet_lightning.TraceletLogger", "--trainer.logger.log_checkpoints=bestest"], "bestest"),
        (["--trainer.logger=tracelet_lightning.TraceletLogger", "--trainer.logger.delivery=pigeon"], "pigeon"),
        (["--trainer.logger=tracelet_lightning.TraceletLogger", "--trainer.logger.system_metrics=maybe"], "maybe"),
        (
            [
                "--trainer.callbacks+=tracelet_lightning.TraceletCallback",
                "--trainer.callbacks.system_metrics_interval=x",
            ],
            "system_metrics_interval",
        ),
    ],
)
def test_a_wrong_value_gets_jsonargparses_error(
    args: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        LightningCLI(TinyModel, TinyData, args=["fit", *args], run=False)
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err


@pytest.mark.slow
def test_the_cli_example_runs_as_written(mlflow_uri: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        WANDB_DIR=str(tmp_path / "wandb-dir"),
        WANDB_MODE="offline",
        WANDB_SILENT="true",
    )
    (tmp_path / "wandb-dir").mkdir()
    command = [sys.executable, str(REPO / "examples" / "lightning_cli.py"), "fit"]
    command += ["--config", str(REPO / "examples" / "config.yaml")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]

    run = only_run(mlflow_uri, "digits")
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["trainer/max_epochs"] == "3" and params["model/hidden"] == "64"
    assert params["trainer/logger/init_args/backends"] == "['mlflow', 'wandb']"
    recorded = download_yaml(mlflow_uri, run.info.run_id, "tracelet/config.yaml", tmp_path / "dl")
    assert recorded["trainer"]["callbacks"][0]["init_args"]["system_metrics_interval"] == 5
    assert {"lr/Adam", "val/loss", "perf/epoch_time_s"} <= set(run.data.metrics)
    assert any(p.startswith("checkpoints/epoch=") for p in artifact_paths(mlflow_uri, run.info.run_id))
    journals = tmp_path / ".tracelet-examples" / ".tracelet"
    assert (journals / "digits" / run.data.tags["tracelet.run_id"] / "config.yaml").is_file()

    from tests.support.wandb_reader import read_run, run_file

    (offline,) = (tmp_path / "wandb-dir" / "wandb").glob("offline-run-*")
    wandb_run = read_run(run_file(offline))
    assert [step for step, _ in wandb_run.series("val/loss")] == [22, 45, 68]
    assert wandb_run.config["trainer/max_epochs"] == 3

"""A Lightning run looks native on MLflow's run page: its name, "Created by", "Source", git commit,
few tags, system metrics drawn as lines, and an experiment in the "Model training" view."""

from __future__ import annotations

import subprocess
from pathlib import Path

import lightning.pytorch as pl
import pytest
from lightning.pytorch.callbacks import ModelCheckpoint
from mlflow.tracking import MlflowClient

from tests.lightning.models import TinyData, TinyModel, only_run, trainer_kwargs
from tests.support.aim_reader import read_run as read_aim_run
from tracelet_core.pipeline.journal import Journal
from tracelet_lightning import TraceletLogger

EPOCHS = 10


def _git_repo(path: Path) -> str:
    """Make ``path`` a git repository with one commit; its hash."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", str(path)], check=True)
    subprocess.run([*git, "-C", str(path), "commit", "-q", "--allow-empty", "-m", "start"], check=True)
    head = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    return head.stdout.strip()


def test_a_ten_epoch_fit_fills_mlflows_own_fields_with_few_tags(
    mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TRACELET_GIT", "TRACELET_ENVIRONMENT", "TRACELET_SYSTEM_METRICS"):
        monkeypatch.delenv(name)  # the defaults: all three on
    monkeypatch.setenv("TRACELET_AIM__REPO", str(tmp_path / "aim"))
    commit = _git_repo(tmp_path)
    logger = TraceletLogger(
        backends=["mlflow", "aim"], delivery="thread", log_checkpoints="all", system_metrics_interval=0.1
    )
    saver = ModelCheckpoint(monitor="val/score", mode="min", save_top_k=-1)
    trainer = pl.Trainer(**trainer_kwargs(logger=logger, callbacks=[saver], max_epochs=EPOCHS))
    trainer.fit(TinyModel(val_scores=[0.5] * EPOCHS), TinyData(samples=16))

    run = only_run(mlflow_uri)
    tags = run.data.tags
    with Journal(logger.experiment.journal_path) as journal:
        journaled_name = journal.meta().run_name
    assert journaled_name and run.info.run_name == tags["mlflow.runName"] == journaled_name == logger.experiment.name
    assert tags["mlflow.user"] and tags["mlflow.source.name"] and tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.source.git.commit"] == commit
    assert len(tags) <= 25, sorted(tags)
    client = MlflowClient(mlflow_uri)
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "system/memory_percent")]
    assert steps == list(range(len(steps))) and len(steps) >= 2  # the sample index, one line per metric
    training = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss_step")]
    assert training == sorted(set(training)) and training[-1] == EPOCHS * 2 - 1  # the global steps, as logged
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"

    aim = read_aim_run(str(tmp_path / "aim"), logger.experiment.backend_run_ids["aim"])
    assert aim.name == journaled_name
    assert len(aim.tags) <= 25, aim.tags
    assert "params" not in aim.tracelet  # params once: Aim's own hparams
    index = aim.tracelet["checkpoints"]  # one index, not a tag per checkpoint
    assert len(index) == EPOCHS and all(meta["monitor"] == "val/score" for meta in index.values())
    samples = [step for step, _, _ in aim.metrics[("system/memory_percent", ())]]
    assert samples == list(range(len(samples))) and len(samples) >= 2

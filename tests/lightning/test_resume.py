"""Resuming from a checkpoint continues the same run in the tracker: same run, same step axis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from tests.lightning.models import TinyData, TinyModel, history, mlflow_runs, only_run, trainer_kwargs
from tracelet_core.errors import TraceletWarning
from tracelet_lightning import TraceletCallback, TraceletLogger, checkpoint_run_id

REPO = Path(__file__).resolve().parents[2]


class WaitForTrackerRun(Callback):
    """Hold the first epoch's end until the tracker's run exists, so later checkpoints can name it."""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logger = trainer.logger
        assert isinstance(logger, TraceletLogger)
        deadline = time.monotonic() + 30
        while "mlflow" not in logger.experiment.backend_run_ids and time.monotonic() < deadline:
            time.sleep(0.05)


def fit(
    callbacks: list[Callback], logger: TraceletLogger | bool, epochs: int, ckpt_path: str | None = None
) -> pl.Trainer:
    trainer = pl.Trainer(**trainer_kwargs(logger=logger, callbacks=callbacks, max_epochs=epochs))
    trainer.fit(TinyModel(), TinyData(), ckpt_path=ckpt_path)
    return trainer


def assert_one_continuous_run(uri: str, experiment: str, key: str, epochs: int) -> None:
    run = only_run(uri, experiment)
    assert run.info.status == "FINISHED"
    points = [step for step, _ in history(uri, run.info.run_id, key)]
    assert points == sorted(set(points)), f"{key} steps repeat or go back: {points}"
    assert [value for _, value in history(uri, run.info.run_id, "epoch")] == [float(e) for e in range(epochs)]


@pytest.mark.slow
def test_resume_example_continues_the_same_run_in_a_new_process(mlflow_uri: str, tmp_path: Path) -> None:
    script = [sys.executable, str(REPO / "examples" / "resume.py"), "--epochs", "2"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    first = subprocess.run([*script, "--interrupt-after-epoch", "0"], env=env, capture_output=True, text=True)
    assert first.returncode == 1 and "interrupted after epoch 0" in first.stdout, first.stderr[-2000:]
    run_id = checkpoint_run_id(tmp_path / ".tracelet-examples" / "checkpoints" / "last.ckpt")
    assert run_id is not None

    second = subprocess.run(script, env=env, capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"resumed: Tracelet run {run_id}" in second.stdout

    assert_one_continuous_run(mlflow_uri, "digits-resume", "train/loss", epochs=2)
    assert only_run(mlflow_uri, "digits-resume").data.tags["tracelet.run_id"] == run_id


def test_the_checkpoint_names_the_tracelet_run_and_each_trackers_run(mlflow_uri: str, tmp_path: Path) -> None:
    logger = TraceletLogger(backends=["mlflow"], delivery="thread")
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    fit([TraceletCallback(), WaitForTrackerRun(), saver], logger, epochs=2)

    state = torch.load(saver.last_model_path, weights_only=True)["callbacks"]["TraceletCallback"]
    run = only_run(mlflow_uri)
    assert state["run_id"] == logger.version == run.data.tags["tracelet.run_id"]
    assert state["backend_run_ids"] == {"mlflow": run.info.run_id}
    assert state["journal_dir"] == logger.save_dir
    assert checkpoint_run_id(saver.last_model_path) == logger.version


def test_tracelet_logger_resumes_a_run_named_by_id(mlflow_uri: str, tmp_path: Path) -> None:
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    fit([TraceletCallback(), saver], TraceletLogger(backends=["mlflow"], delivery="thread"), epochs=1)
    last = saver.last_model_path

    run_id = checkpoint_run_id(last)
    logger = TraceletLogger(backends=["mlflow"], delivery="thread", run_id=run_id)
    fit([TraceletCallback(), ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)], logger, 3, last)

    assert_one_continuous_run(mlflow_uri, "tracelet", "train/loss_step", epochs=3)


def test_the_callback_finds_the_run_when_resumed_from_another_directory(
    mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    monkeypatch.chdir(tmp_path / "first")
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    fit([TraceletCallback(backends=["mlflow"], delivery="thread"), saver], False, epochs=1)

    monkeypatch.chdir(tmp_path / "second")  # ./.tracelet here holds no journal of that run
    callback = TraceletCallback(backends=["mlflow"], delivery="thread")
    fit([callback, ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)], False, 2, saver.last_model_path)

    assert callback.logger is not None
    assert callback.logger.settings.journal_dir == (tmp_path / "first" / ".tracelet").resolve()
    assert_one_continuous_run(mlflow_uri, "tracelet", "train/loss_step", epochs=2)


def _second_fit_with_a_new_logger(tmp_path: Path, logger: TraceletLogger) -> str:
    """A first fit with logger + callback writes a checkpoint; a new ``logger`` resumes from it.
    Returns the checkpoint's run id."""
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    fit([TraceletCallback(), saver], TraceletLogger(backends=["mlflow"], delivery="thread"), epochs=1)
    old_id = checkpoint_run_id(saver.last_model_path)
    assert old_id is not None
    switchable = logger.run is None or logger.run.deferred
    if switchable:
        context: Any = warnings.catch_warnings()
    else:
        context = pytest.warns(TraceletWarning, match=f"TraceletLogger\\(run_id='{old_id}'\\)")
    with context:
        if switchable:
            warnings.simplefilter("error", TraceletWarning)
        fit([TraceletCallback(), ModelCheckpoint(dirpath=tmp_path / "ckpt2")], logger, 2, saver.last_model_path)
    return old_id


def test_a_new_logger_with_the_callback_continues_the_checkpoints_run(mlflow_uri: str, tmp_path: Path) -> None:
    # No run_id: Lightning creates the logger's run before it loads the checkpoint; nothing was
    # recorded in it yet, so the callback switches the logger to the checkpoint's run, without a warning.
    logger = TraceletLogger(backends=["mlflow"], delivery="thread")
    assert _second_fit_with_a_new_logger(tmp_path, logger) == logger.version
    assert_one_continuous_run(mlflow_uri, "tracelet", "train/loss_step", epochs=2)


def test_checkpoints_in_the_loggers_directory_follow_it_to_the_checkpoints_run(mlflow_uri: str) -> None:
    first = TraceletLogger(backends=["mlflow"], delivery="thread")
    fit([TraceletCallback(), ModelCheckpoint(save_last=True)], first, epochs=1)
    directory = Path(first.log_dir) / "checkpoints"
    assert sorted(p.name for p in directory.iterdir()) == ["epoch=0-step=8.ckpt", "last.ckpt"]
    last = directory / "last.ckpt"

    saver = ModelCheckpoint(save_last=True)  # its default directory: the new logger's, at setup
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*dirpath has changed.*")  # ModelCheckpoint keeps its state
        fit([TraceletCallback(), saver], TraceletLogger(backends=["mlflow"], delivery="thread"), 2, str(last))

    assert Path(saver.dirpath) == directory
    assert sorted(p.name for p in directory.iterdir()) == ["epoch=1-step=16.ckpt", "last.ckpt"]
    assert [p.name for p in directory.parent.parent.iterdir()] == [first.version]  # no second run directory
    assert_one_continuous_run(mlflow_uri, "tracelet", "train/loss_step", epochs=2)


def test_a_logger_used_before_the_restore_says_how_to_continue(mlflow_uri: str, tmp_path: Path) -> None:
    logger = TraceletLogger(backends=["mlflow"], delivery="thread")
    logger.experiment.set_tags({"note": "recorded before fit"})  # this run is in use: it cannot be switched
    assert _second_fit_with_a_new_logger(tmp_path, logger) != logger.version
    assert len(mlflow_runs(mlflow_uri)) == 2

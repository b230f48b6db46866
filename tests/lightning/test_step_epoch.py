"""Steps and epochs: what reaches the tracker is what Lightning hands its loggers, with ``epoch`` once per epoch."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest

from tests.lightning.models import Spy, TinyData, TinyModel, history, only_run, trainer_kwargs
from tracelet_lightning import TraceletCallback, TraceletLogger

KEYS = ("train/loss_step", "train/loss_epoch", "val/loss", "val/acc")


def approx(points: list[tuple[int, float]]) -> list[tuple[int, object]]:
    return [(step, pytest.approx(value, rel=1e-6)) for step, value in points]


@pytest.mark.parametrize("tracked_by", ["logger", "callback"])
def test_metrics_land_on_lightnings_steps_and_epoch_once_per_epoch(mlflow_uri: str, tracked_by: str) -> None:
    spy = Spy()
    if tracked_by == "logger":
        loggers: list[pl.loggers.Logger] = [spy, TraceletLogger(backends=["mlflow"], delivery="thread")]
        callbacks: list[pl.Callback] = []
    else:
        loggers, callbacks = [spy], [TraceletCallback(backends=["mlflow"], delivery="thread")]
    trainer = pl.Trainer(
        **trainer_kwargs(
            logger=loggers,
            callbacks=callbacks,
            max_epochs=3,
            val_check_interval=0.5,  # validation twice per epoch: at steps 3 and 7 of each epoch
            num_sanity_val_steps=2,  # never recorded
        )
    )
    trainer.fit(TinyModel(), TinyData())

    run_id = only_run(mlflow_uri).info.run_id
    for key in KEYS:
        assert history(mlflow_uri, run_id, key) == approx(spy.points(key)), key
    assert [step for step, _ in history(mlflow_uri, run_id, "val/loss")] == [3, 7, 11, 15, 19, 23]
    assert [step for step, _ in history(mlflow_uri, run_id, "train/loss_epoch")] == [7, 15, 23]
    # Lightning hands `epoch` to the loggers with every call (14 times an epoch here); it is kept once per epoch
    assert len(spy.points("epoch")) > 3 * 3
    assert history(mlflow_uri, run_id, "epoch") == [(1, 0.0), (9, 1.0), (17, 2.0)]


def test_epoch_metrics_only(mlflow_uri: str) -> None:
    logger = TraceletLogger(backends=["mlflow"], delivery="thread")
    trainer = pl.Trainer(**trainer_kwargs(logger=logger, max_epochs=2, log_every_n_steps=50))
    trainer.fit(TinyModel(epoch_metric_only=True), TinyData())

    run_id = only_run(mlflow_uri).info.run_id
    assert [step for step, _ in history(mlflow_uri, run_id, "train/loss")] == [7, 15]
    assert history(mlflow_uri, run_id, "epoch") == [(7, 0.0), (15, 1.0)]


def test_epoch_is_aims_own_axis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.aim_reader import read_run

    repo = tmp_path / "aim"
    monkeypatch.setenv("TRACELET_AIM__REPO", str(repo))
    logger = TraceletLogger(backends=["aim"], delivery="thread")
    trainer = pl.Trainer(**trainer_kwargs(logger=logger, max_epochs=2))
    trainer.fit(TinyModel(), TinyData())

    assert logger.report is not None and logger.report.complete
    native = {b.name: b.native_id for b in logger.report.backends}["aim"]
    assert native is not None
    run = read_run(str(repo), native)
    names = {name for name, _ in run.metrics}
    assert "epoch" not in names
    (loss,) = [points for (name, _), points in run.metrics.items() if name.endswith("loss_step")]
    assert [(step, epoch) for step, epoch, _ in loss] == [(step, step // 8) for step in (1, 3, 5, 7, 9, 11, 13, 15)]

"""TraceletCallback: a run from one callback, with any logger or none, read back from MLflow."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import lightning.pytorch as pl
import pytest
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.loggers import CSVLogger

from tests.lightning.models import Pause, TinyData, TinyModel, artifact_paths, history, only_run, trainer_kwargs
from tracelet_core.errors import TraceletWarning
from tracelet_lightning import TraceletCallback, TraceletLogger

STEP_LOGS = [1, 3, 5, 7, 9, 11, 13, 15]  # log_every_n_steps=2 over 2 epochs of 8 steps
EPOCH_ENDS = [7, 15]  # Lightning logs epoch-end and validation metrics at the last batch's step


def steps(uri: str, run_id: str, key: str) -> list[int]:
    return [step for step, _ in history(uri, run_id, key)]


def test_callback_alone_records_metrics_hyperparameters_extras_and_status(mlflow_uri: str) -> None:
    callback = TraceletCallback(backends=["mlflow"])  # the default delivery: a separate process
    trainer = pl.Trainer(**trainer_kwargs(logger=False, callbacks=[callback]))
    model = TinyModel(optimizer={"name": "sgd", "nesterov": False})
    trainer.fit(model, TinyData(batch_size=8))

    run = only_run(mlflow_uri)
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"
    assert callback.logger is not None and run.data.tags["tracelet.run_id"] == callback.logger.version
    assert callback.logger.report is not None and callback.logger.report.complete
    # what the module logs, at Lightning's cadence and steps
    assert steps(mlflow_uri, run_id, "train/loss_step") == STEP_LOGS
    assert steps(mlflow_uri, run_id, "train/loss_epoch") == EPOCH_ENDS
    assert steps(mlflow_uri, run_id, "val/loss") == EPOCH_ENDS
    assert history(mlflow_uri, run_id, "epoch") == [(1, 0.0), (9, 1.0)]
    # hyperparameters of the module and the datamodule, nested ones flattened
    params = run.data.params
    assert params["hidden"] == "16" and params["lr"] == "0.1" and params["batch_size"] == "8"
    assert params["optimizer/name"] == "sgd" and params["optimizer/nesterov"] == "False"
    # what a Logger never sees
    assert history(mlflow_uri, run_id, "lr/SGD") == [(0, 0.1)] + [(s, 0.1) for s in STEP_LOGS]
    assert steps(mlflow_uri, run_id, "perf/epoch_time_s") == EPOCH_ENDS
    assert all(v > 0 for _, v in history(mlflow_uri, run_id, "perf/samples_per_s"))
    assert params["model_summary/total_params"] == str(sum(p.numel() for p in model.parameters()))
    assert params["model_summary/trainable_params"] == params["model_summary/total_params"]
    assert "tracelet/model_summary.txt" in artifact_paths(mlflow_uri, run_id)


def test_callback_beside_another_logger_leaves_it_as_it_was(mlflow_uri: str, tmp_path: Path) -> None:
    csv_logger = CSVLogger(tmp_path / "csv", name="", version="")
    callback = TraceletCallback(backends=["mlflow"], delivery="thread")
    trainer = pl.Trainer(**trainer_kwargs(logger=csv_logger, callbacks=[callback]))
    trainer.fit(TinyModel(), TinyData())

    assert trainer.logger is csv_logger  # the first logger, its directories and checkpoints are untouched
    assert trainer.checkpoint_callback is not None
    assert str(tmp_path / "csv") in str(trainer.checkpoint_callback.dirpath)
    with open(Path(csv_logger.log_dir) / "metrics.csv") as handle:
        csv_steps = [int(row["step"]) for row in csv.DictReader(handle) if row.get("train/loss_step")]
    run = only_run(mlflow_uri)
    assert steps(mlflow_uri, run.info.run_id, "train/loss_step") == csv_steps == STEP_LOGS


def test_callback_with_tracelet_logger_makes_one_run_and_records_nothing_twice(mlflow_uri: str) -> None:
    logger = TraceletLogger(backends=["mlflow"], delivery="thread")
    callback = TraceletCallback(backends=["mlflow"])  # ignored: the logger's run and options rule
    trainer = pl.Trainer(**trainer_kwargs(logger=logger, callbacks=[callback]))
    with pytest.warns(TraceletWarning, match="options backends are ignored"):
        trainer.fit(TinyModel(), TinyData())

    assert callback.logger is logger and trainer.loggers == [logger]
    run = only_run(mlflow_uri)
    keys = set(run.data.metrics)
    assert {"train/loss_step", "val/loss", "epoch", "lr/SGD", "perf/epoch_time_s"} <= keys
    for key in keys:
        points = steps(mlflow_uri, run.info.run_id, key)
        assert len(points) == len(set(points)), f"{key} recorded twice at a step: {points}"


def test_failure_ends_the_run_failed(mlflow_uri: str) -> None:
    callback = TraceletCallback(backends=["mlflow"], delivery="thread")
    trainer = pl.Trainer(**trainer_kwargs(logger=False, callbacks=[callback]))
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(TinyModel(fail_at_step=5), TinyData())

    run = only_run(mlflow_uri)
    assert run.info.status == "FAILED"
    assert steps(mlflow_uri, run.info.run_id, "train/loss_step") == [1, 3]


def test_learning_rate_of_every_param_group(mlflow_uri: str) -> None:
    callback = TraceletCallback(backends=["mlflow"], delivery="thread", log_model_summary=False)
    trainer = pl.Trainer(**trainer_kwargs(logger=False, callbacks=[callback], max_epochs=1))
    trainer.fit(TinyModel(lr=0.2, param_groups=True), TinyData())

    run_id = only_run(mlflow_uri).info.run_id
    assert history(mlflow_uri, run_id, "lr/SGD/body") == [(s, 0.2) for s in (0, 1, 3, 5, 7)]
    assert history(mlflow_uri, run_id, "lr/SGD/head") == [(s, pytest.approx(0.02)) for s in (0, 1, 3, 5, 7)]


def test_early_stopping_outcome_is_recorded(mlflow_uri: str) -> None:
    stopper = EarlyStopping(monitor="val/score", mode="max", patience=1)
    callback = TraceletCallback(backends=["mlflow"], delivery="thread")
    trainer = pl.Trainer(**trainer_kwargs(logger=False, callbacks=[callback, stopper], max_epochs=5))
    trainer.fit(TinyModel(val_scores=[0.9, 0.5, 0.4]), TinyData())

    tags = only_run(mlflow_uri).data.tags
    assert trainer.current_epoch == 2
    assert tags["early_stopping.monitor"] == "val/score"
    assert tags["early_stopping.stopped"] == "true"
    assert tags["early_stopping.reason"] == "patience_exhausted"
    assert tags["early_stopping.stopped_epoch"] == "1"
    assert float(tags["early_stopping.best_score"]) == pytest.approx(0.9)
    assert "early_stopping.message" in tags


def test_system_metrics_follow_the_callbacks_interval(mlflow_uri: str) -> None:
    callback = TraceletCallback(
        backends=["mlflow"], delivery="thread", system_metrics=True, system_metrics_interval=0.1
    )
    # 3 epochs of at least 0.2 s: several samples at 0.1 s however fast the machine trains.
    trainer = pl.Trainer(**trainer_kwargs(logger=False, callbacks=[callback, Pause(0.2)], max_epochs=3))
    trainer.fit(TinyModel(), TinyData())

    assert callback.logger is not None and callback.logger.settings.system_metrics_interval == 0.1
    run = only_run(mlflow_uri)
    assert len(history(mlflow_uri, run.info.run_id, "system/cpu_percent")) >= 2


def test_the_callbacks_system_metrics_options_apply_to_the_loggers_run(mlflow_uri: str) -> None:
    logger = TraceletLogger(backends=["mlflow"], delivery="thread")  # system metrics off (the test environment)
    callback = TraceletCallback(system_metrics=True, system_metrics_interval=0.1)
    trainer = pl.Trainer(**trainer_kwargs(logger=logger, callbacks=[callback, Pause(0.2)], max_epochs=3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(TinyModel(), TinyData())

    assert not [w for w in caught if "ignored" in str(w.message)]  # these options are not ignored
    run = only_run(mlflow_uri)
    assert len(history(mlflow_uri, run.info.run_id, "system/cpu_percent")) >= 2


def test_fit_then_test_is_one_run(mlflow_uri: str) -> None:
    callback = TraceletCallback(backends=["mlflow"], delivery="thread", log_model_summary=False)
    trainer = pl.Trainer(**trainer_kwargs(logger=False, callbacks=[callback], max_epochs=1))
    model, data = TinyModel(), TinyData()
    trainer.fit(model, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.test(model, data, verbose=False)

    run = only_run(mlflow_uri)
    assert run.info.status == "FINISHED"
    assert {"train/loss_step", "test/loss"} <= set(run.data.metrics)

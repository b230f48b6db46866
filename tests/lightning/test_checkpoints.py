"""Checkpoints reach the trackers from the delivery, with sortable names, scores and aliases."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import ClassVar

import lightning.pytorch as pl
import pytest
from lightning.pytorch.callbacks import ModelCheckpoint
from mlflow.tracking import MlflowClient

from tests.lightning.models import TinyData, TinyModel, artifact_paths, only_run, trainer_kwargs
from tracelet_core.events import ArtifactRef
from tracelet_core.testing import InMemoryBackend
from tracelet_lightning import TraceletCallback, TraceletLogger
from tracelet_lightning.checkpoints import CheckpointUploader

SCORES = [0.5, 0.3, 0.4]  # val/score per epoch; with mode="min" epochs 0 and 1 are each a new best


class ThreadRecordingBackend(InMemoryBackend):
    """Remembers the thread each file was uploaded from."""

    upload_threads: ClassVar[dict[str, str]] = {}

    def log_artifact(self, artifact: ArtifactRef) -> None:
        self.upload_threads[artifact.name] = threading.current_thread().name
        super().log_artifact(artifact)


def checkpoints(uri: str, run_id: str) -> list[str]:
    return [p for p in artifact_paths(uri, run_id) if p.startswith("checkpoints/") and p.endswith(".ckpt")]


def checkpoint_index(uri: str, run_id: str) -> dict[str, dict[str, object]]:
    """The run's ``checkpoints/index.json``: the metadata of each checkpoint it holds."""
    local = MlflowClient(uri).download_artifacts(run_id, "checkpoints/index.json")
    return json.loads(Path(local).read_text())["checkpoints"]


def fit(callbacks: list[pl.Callback], **logger_options: object) -> TraceletLogger:
    options: dict[str, object] = {"backends": ["mlflow"], "delivery": "thread", **logger_options}
    logger = TraceletLogger(**options)  # type: ignore[arg-type]
    trainer = pl.Trainer(**trainer_kwargs(logger=logger, callbacks=callbacks, max_epochs=3))
    trainer.fit(TinyModel(val_scores=SCORES), TinyData())
    return logger


def test_best_is_the_default_and_each_new_best_is_uploaded_with_its_score(mlflow_uri: str) -> None:
    fit([ModelCheckpoint(monitor="val/score", mode="min", save_last=True)])

    run = only_run(mlflow_uri)
    # epoch 0 was the best first; epoch 1 replaced it, in MLflow too
    assert checkpoints(mlflow_uri, run.info.run_id) == ["checkpoints/epoch=01-step=000016.ckpt"]
    tags = run.data.tags
    assert tags["tracelet.checkpoint.best"] == "checkpoints/epoch=01-step=000016.ckpt"
    assert float(tags["tracelet.checkpoint.best_score"]) == pytest.approx(0.3)
    assert not any(key.startswith("tracelet.artifact") for key in tags)
    # the metadata of each checkpoint the run holds, in one JSON file; the replaced one has left it
    index = checkpoint_index(mlflow_uri, run.info.run_id)
    assert list(index) == ["checkpoints/epoch=01-step=000016.ckpt"]
    meta = index["checkpoints/epoch=01-step=000016.ckpt"]
    assert meta["score"] == pytest.approx(0.3)
    assert meta["monitor"] == "val/score"
    assert meta["aliases"] == ["best", "last"]
    assert (meta["epoch"], meta["step"]) == (1, 16)


def test_all_from_the_environment_uploads_every_checkpoint_once(
    mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACELET_LOG_CHECKPOINTS", "all")
    logger = fit([ModelCheckpoint(monitor="val/score", mode="min", save_top_k=-1, save_last=True)])

    assert logger.settings.log_checkpoints == "all"
    names = checkpoints(mlflow_uri, only_run(mlflow_uri).info.run_id)
    # top-k file and last.ckpt of the same step are one checkpoint: uploaded once
    assert names == [f"checkpoints/epoch={e:02d}-step={8 * (e + 1):06d}.ckpt" for e in range(3)]
    assert names == sorted(names)


def test_last_uploads_the_newest_and_names_the_one_it_replaces(mlflow_uri: str) -> None:
    fit([ModelCheckpoint(monitor="val/score", mode="min", save_top_k=2)], log_checkpoints="last")

    run = only_run(mlflow_uri)
    assert checkpoints(mlflow_uri, run.info.run_id) == ["checkpoints/epoch=02-step=000024.ckpt"]
    tags = run.data.tags
    assert tags["tracelet.checkpoint.last"] == "checkpoints/epoch=02-step=000024.ckpt"
    index = checkpoint_index(mlflow_uri, run.info.run_id)
    assert list(index) == ["checkpoints/epoch=02-step=000024.ckpt"]  # the one it replaced has left
    assert index["checkpoints/epoch=02-step=000024.ckpt"]["aliases"] == ["last"]  # epoch 1 stays the best


def test_none_uploads_nothing(mlflow_uri: str) -> None:
    fit([ModelCheckpoint(monitor="val/score", mode="min")], log_checkpoints="none")

    assert checkpoints(mlflow_uri, only_run(mlflow_uri).info.run_id) == []


def test_several_model_checkpoints_each_get_a_folder(mlflow_uri: str) -> None:
    by_score = ModelCheckpoint(monitor="val/score", mode="min", filename="{epoch}-{val/score:.2f}")
    every_epoch = ModelCheckpoint(save_top_k=-1, filename="periodic-{epoch}")
    fit([by_score, every_epoch], log_checkpoints="all")

    names = checkpoints(mlflow_uri, only_run(mlflow_uri).info.run_id)
    assert names == [
        *(f"checkpoints/latest/epoch={e:02d}-step={8 * (e + 1):06d}.ckpt" for e in range(3)),
        "checkpoints/val_score/epoch=00-step=000008.ckpt",
        "checkpoints/val_score/epoch=01-step=000016.ckpt",
    ]


def test_a_failed_fit_still_uploads_the_best_checkpoint_so_far(mlflow_uri: str) -> None:
    callback = TraceletCallback(backends=["mlflow"])  # the default: a separate delivery process
    saver = ModelCheckpoint(monitor="val/score", mode="min")
    trainer = pl.Trainer(**trainer_kwargs(logger=False, callbacks=[callback, saver], max_epochs=3))
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(TinyModel(val_scores=SCORES, fail_at_step=20), TinyData())

    run = only_run(mlflow_uri)
    assert run.info.status == "FAILED"
    assert checkpoints(mlflow_uri, run.info.run_id) == ["checkpoints/epoch=01-step=000016.ckpt"]
    local = Path(MlflowClient(mlflow_uri).download_artifacts(run.info.run_id, "checkpoints/epoch=01-step=000016.ckpt"))
    assert local.read_bytes() == Path(saver.best_model_path).read_bytes()


def test_uploads_happen_off_the_training_thread() -> None:
    ThreadRecordingBackend.upload_threads.clear()
    backend = f"{__name__}:ThreadRecordingBackend"
    fit([ModelCheckpoint(save_top_k=-1)], backends=[backend], log_checkpoints="all")

    uploads = ThreadRecordingBackend.upload_threads
    assert sum(name.endswith(".ckpt") for name in uploads) == 3
    assert threading.main_thread().name not in uploads.values()


@pytest.mark.parametrize(
    ("max_epochs", "max_steps", "expected"),
    [
        (3, -1, "checkpoints/epoch=02-step=000300.ckpt"),
        (150, -1, "checkpoints/epoch=002-step=000300.ckpt"),
        (None, 12_000_000, "checkpoints/epoch=02-step=00000300.ckpt"),
    ],
)
def test_names_are_padded_to_sort_for_the_whole_run(max_epochs: int | None, max_steps: int, expected: str) -> None:
    uploader = CheckpointUploader("all")
    uploader.configure(pl.Trainer(max_epochs=max_epochs, max_steps=max_steps, logger=False))
    assert uploader.name_for("", epoch=2, step=300) == expected

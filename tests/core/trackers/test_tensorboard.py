"""The TensorBoard reader: one pass over event files, the mapping the bridge and the importer use, read
back as RunRecords (``migrate``, ``compare``) with scalars, hparams and files; media named in the notes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.core.test_tensorboard import STEPS, WALL, WRITERS, artifact_paths, log_every_kind
from tracelet_core.errors import ConfigurationError
from tracelet_core.migrate import migrate, parse_destination
from tracelet_core.settings import TraceletSettings
from tracelet_core.trackers.store import RunNotFoundError, SourceRun, open_reader
from tracelet_core.trackers.tensorboard.reader import TensorBoardReader

pytest.importorskip("tensorboard")


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    """Every summary kind from torch's SummaryWriter, in ``runs/alpha`` and the subdirectories it makes."""
    root = tmp_path / "runs"
    writer = WRITERS["torch"](str(root / "alpha"))
    log_every_kind(writer)
    writer.close()
    return root


def test_read_run_carries_scalars_params_files_and_media(logdir: Path, tmp_path: Path) -> None:
    reader = open_reader(f"tensorboard:{logdir}")
    assert isinstance(reader, TensorBoardReader)
    runs = {str(run.name): run for run in reader.list_runs()}
    assert sorted(runs) == ["alpha", "alpha/hparams", "alpha/lr_decoder", "alpha/lr_encoder"]
    assert {run.experiment for run in runs.values()} == {"runs"}
    assert runs["alpha"].key == f"tensorboard:{(logdir / 'alpha').resolve()}"

    record = reader.read_run(runs["alpha"], tmp_path / "scratch")
    loss = [(p.step, p.value, p.timestamp) for p in record.metrics if p.key == "train/loss"]
    assert loss == [(s, pytest.approx(1.0 / (s + 1)), pytest.approx(WALL + s)) for s in range(STEPS)]
    files = {artifact.name: Path(artifact.path) for artifact in record.artifacts}
    assert sorted(files) == [
        *(f"tensorboard/audio/clip/step-{s:09d}.wav" for s in range(STEPS)),
        "tensorboard/custom_scalars.json",
        *(f"tensorboard/pr_curves/pr/step-{s:09d}.json" for s in range(STEPS)),
    ]
    assert all(path.is_relative_to(tmp_path / "scratch") for path in files.values())
    assert json.loads(files["tensorboard/custom_scalars.json"].read_text())["category"][0]["title"] == "Losses"
    assert json.loads(files["tensorboard/pr_curves/pr/step-000000002.json"].read_text())["step"] == 2
    assert record.notes == []
    media = {(item.kind, item.key) for item in record.media}
    assert {("image", "figure"), ("image", "sample"), ("histogram", "weights"), ("text", "note")} <= media
    images = [item for item in record.media if item.kind == "image"]
    assert images and all(Path(item.path or "").is_relative_to(tmp_path / "scratch") for item in images)
    assert all(Path(item.path or "").read_bytes().startswith(b"\x89PNG") for item in images)

    hparams = reader.read_run(runs["alpha/hparams"], tmp_path / "scratch")
    assert hparams.params == {"lr": "0.1", "batch_size": "32", "optimizer": "adam"}
    assert [(p.key, p.value) for p in hparams.metrics] == [("hparam/accuracy", pytest.approx(0.9))]
    assert hparams.status == "FINISHED" and hparams.notes == []


def test_read_run_without_artifacts_writes_no_file(
    logdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    reader = TensorBoardReader(str(logdir))
    (alpha,) = [run for run in reader.list_runs() if run.name == "alpha"]
    assert [p.step for p in reader.metric_history(alpha, "train/loss")] == list(range(STEPS))
    without_files = reader.read_run(alpha, work, artifacts=False)
    assert without_files.artifacts == [] and not any(item.kind == "image" for item in without_files.media)
    assert list(work.iterdir()) == []


def test_migrate_copies_the_files_to_mlflow(logdir: Path, mlflow_uri: str) -> None:
    with TensorBoardReader(str(logdir)) as reader:
        outcomes = migrate(reader, parse_destination(f"mlflow:{mlflow_uri}", TraceletSettings()), experiments=["runs"])
    (alpha,) = [o for o in outcomes if o.run.name == "alpha"]
    assert alpha.action == "copied" and alpha.artifacts > 2 * STEPS + 1  # the files, and the media
    assert alpha.destination_id is not None
    paths = artifact_paths(MlflowClient(mlflow_uri), alpha.destination_id)
    assert "tensorboard/pr_curves/pr/step-000000001.json" in paths
    assert "tensorboard/custom_scalars.json" in paths


def test_a_missing_directory_or_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="nosuch"):
        TensorBoardReader(str(tmp_path / "nosuch"))
    reader = TensorBoardReader(str(tmp_path))
    assert reader.list_runs() == []
    with pytest.raises(RunNotFoundError, match="elsewhere"):
        reader.directory(SourceRun("tensorboard:x", "elsewhere", "e", "elsewhere"))

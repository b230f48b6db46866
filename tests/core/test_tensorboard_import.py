"""``import_logdir``: existing TensorBoard event files, every run under LOGDIR, round-tripped into MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import tracelet_core
from tracelet_core.tensorboard_import import ImportedRun, import_logdir

from .test_tensorboard import STEPS, WALL, WRITERS, artifact_paths, log_every_kind, read_artifact


def test_import_round_trips_every_run_into_mlflow(mlflow_uri: str, tmp_path: Path) -> None:
    logdir = tmp_path / "runs"
    writer = WRITERS["torch"](str(logdir / "alpha"))
    log_every_kind(writer)
    writer.close()
    writer = WRITERS["tensorboardX"](str(logdir / "beta"))
    for step in range(100):
        writer.add_scalar("loss", step / 100, step * 2, walltime=WALL + step)
    writer.close()
    active = tracelet_core.start_logging("mine", backends=[])

    calls: list[tuple[int, int]] = []
    imported = import_logdir(logdir, experiment="imported", backends=["mlflow"], progress=lambda *a: calls.append(a))

    assert tracelet_core.get_active_run() is active  # the import never touches the user's run
    names = ["alpha", "alpha/lr_decoder", "alpha/lr_encoder", "beta"]  # add_hparams' folder is part of alpha
    assert [run.name for run in imported] == names
    assert calls == [(done, len(names)) for done in range(len(names) + 1)]
    by_name = {run.name: run for run in imported}
    assert all(run.complete and set(run.backend_run_ids) == {"mlflow"} for run in imported)
    alpha = by_name["alpha"]
    assert (alpha.scalars, alpha.histograms, alpha.images, alpha.texts) == (STEPS + 1, STEPS, 2 * STEPS, STEPS)
    assert alpha.artifacts == 2 * STEPS + 1  # a PR curve and an audio clip per step, and the custom-scalar layout
    assert (alpha.params, alpha.merged) == (3, ("alpha/hparams",))
    assert by_name["beta"] == ImportedRun(
        name="beta",
        run_id=by_name["beta"].run_id,
        source=str(logdir / "beta"),
        backend_run_ids=by_name["beta"].backend_run_ids,
        scalars=100,
    )

    client = MlflowClient(mlflow_uri)
    experiment_id = client.get_experiment_by_name("imported").experiment_id
    runs = {run.info.run_name: run for run in client.search_runs([experiment_id])}
    assert sorted(runs) == names
    assert all(run.info.status == "FINISHED" for run in runs.values())
    assert runs["beta"].data.tags["tensorboard.imported_from"] == str((logdir / "beta").resolve())
    beta = client.get_metric_history(runs["beta"].info.run_id, "loss")
    assert [(m.step, m.value, m.timestamp) for m in beta] == [
        (s * 2, pytest.approx(s / 100), int((WALL + s) * 1000)) for s in range(100)
    ]
    alpha_id = alpha.backend_run_ids["mlflow"]
    assert [(m.step, m.timestamp) for m in client.get_metric_history(alpha_id, "train/loss")] == [
        (s, int((WALL + s) * 1000)) for s in range(STEPS)
    ]
    encoder = client.get_metric_history(runs["alpha/lr_encoder"].info.run_id, "lr")
    assert [(m.step, m.value) for m in encoder] == [(s, pytest.approx(0.1 * s)) for s in range(STEPS)]
    assert runs["alpha"].data.params == {"lr": "0.1", "batch_size": "32", "optimizer": "adam"}
    assert runs["alpha"].data.metrics["hparam/accuracy"] == pytest.approx(0.9)
    paths = artifact_paths(client, alpha_id)
    assert sum(p.startswith("images/sample+step+") and p.endswith(".png") for p in paths) == STEPS
    assert read_artifact(client, alpha_id, "tracelet/text/note-step000000001.txt", tmp_path / "dl") == "step 1"
    histogram = json.loads(read_artifact(client, alpha_id, "tracelet/media/weights/000000002.json", tmp_path / "dl"))
    assert sum(histogram["counts"]) == 50 and histogram["bins"][-1] == pytest.approx(3.0)
    assert "tensorboard/pr_curves/pr/step-000000000.json" in paths


def test_import_of_a_directory_without_event_files(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    assert import_logdir(tmp_path, backends=[], progress=lambda *a: calls.append(a)) == []
    assert calls == [(0, 0)]
    with pytest.raises(FileNotFoundError, match="nosuch"):
        import_logdir(tmp_path / "nosuch", backends=[])

"""`tracelet migrate` between real stores keeps params, tags, metric histories and files; a rerun adds nothing.

Also `tracelet import-tensorboard`, the other way into the trackers for old TensorBoard logs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from tests.support.wandb_env import offline_wandb
from tracelet_core.events import ArtifactRef, Batch, MetricPoint, RunInfo

T0 = 1_700_000_000.0
SYSTEM_TAG_PREFIXES = ("mlflow.", "tracelet.")


def _make_experiment(uri: str, tmp_path: Path) -> dict[str, str]:
    """An MLflow experiment of 3 runs, written with MLflow's own client; returns run name -> run id."""
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("digits")
    weights = tmp_path / "weights.bin"
    weights.write_bytes(bytes(range(256)))
    ids = {}
    for index, status in enumerate(["FINISHED", "FINISHED", "FAILED"]):
        name = f"seed-{index}"
        run = client.create_run(
            experiment_id, run_name=name, start_time=int(T0 * 1000) + index, tags={"team": "vision", "seed": str(index)}
        )
        run_id = run.info.run_id
        metrics = [
            Metric(key, value, int((T0 + step * 1.5) * 1000) + 7, step)
            for step in range(120)
            for key, value in (("train/loss", 1.0 / (step + 1 + index)), ("val/acc", step / 200 + index / 100))
        ]
        metrics.append(Metric("lr", 0.1, int(T0 * 1000), 0))
        client.log_batch(run_id, metrics=metrics[:1000])
        client.log_batch(run_id, metrics=metrics[1000:])
        client.log_batch(run_id, params=[Param("lr", "0.1"), Param("optimizer/name", "adam"), Param("layers", "3")])
        client.log_batch(run_id, tags=[RunTag("note", f"run {index}: a note")])
        client.log_artifact(run_id, str(weights), artifact_path="model")
        client.set_terminated(run_id, status=status)
        ids[name] = run_id
    return ids


def _snapshot(uri: str) -> dict[str, dict[str, Any]]:
    """Each run of the store by name: params, user tags, status, every metric point, and artifact files."""
    client = MlflowClient(uri)
    found = {}
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id]):
            run_id = run.info.run_id
            histories = {
                key: sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key))
                for key in run.data.metrics
            }
            tags = {k: v for k, v in run.data.tags.items() if not k.startswith(SYSTEM_TAG_PREFIXES)}
            files = {a.path for a in client.list_artifacts(run_id, "model")}
            found[run.info.run_name] = {
                "experiment": experiment.name,
                "params": run.data.params,
                "tags": tags,
                "status": run.info.status,
                "metrics": histories,
                "files": files,
                "migrated_from": run.data.tags.get("tracelet.migrated_from"),
            }
    return found


def _migrate(cli: Callable[..., Result], source: str, destination: str, *extra: str, code: int = 0) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(
        cli("migrate", "--from", source, "--to", destination, *extra, "--json", code=code).stdout
    )
    return report


def _actions(report: dict[str, Any]) -> list[str]:
    return [run["action"] for run in report["runs"]]


def test_mlflow_to_aim_and_back_keeps_everything_and_reruns_add_nothing(
    mlflow_uri: str, mlflow_template: Path, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    ids = _make_experiment(mlflow_uri, tmp_path)
    original = _snapshot(mlflow_uri)
    aim_repo = tmp_path / "aim"

    to_aim = _migrate(cli, f"mlflow:{mlflow_uri}", f"aim:{aim_repo}")
    assert _actions(to_aim) == ["copied"] * 3
    assert {r["source"] for r in to_aim["runs"]} == {f"mlflow:{i}" for i in ids.values()}
    assert all(r["points"] == 241 and r["artifacts"] == 1 for r in to_aim["runs"])
    assert _actions(_migrate(cli, f"mlflow:{mlflow_uri}", f"aim:{aim_repo}")) == ["skipped"] * 3

    shutil.copyfile(mlflow_template, tmp_path / "back.db")
    back_uri = f"sqlite:///{tmp_path / 'back.db'}"
    back = _migrate(cli, f"aim:{aim_repo}", f"mlflow:{back_uri}")
    assert _actions(back) == ["copied"] * 3
    assert _actions(_migrate(cli, f"aim:{aim_repo}", f"mlflow:{back_uri}")) == ["skipped"] * 3
    # Into the store the runs came from: each Aim run is a copy of a run already there.
    home = _migrate(cli, f"aim:{aim_repo}", f"mlflow:{mlflow_uri}")
    assert _actions(home) == ["skipped"] * 3 and all("a copy of mlflow:" in r["reason"] for r in home["runs"])

    returned = _snapshot(back_uri)
    assert set(returned) == set(original) == {"seed-0", "seed-1", "seed-2"}
    for name, before in original.items():
        after = returned[name]
        for field in ("experiment", "params", "tags", "status", "files"):
            assert after[field] == before[field], (name, field)
        assert after["metrics"] == before["metrics"], name  # point by point: step, timestamp (ms), value
        assert after["migrated_from"].startswith("aim:")
    assert len(_snapshot(mlflow_uri)) == 3


def test_dry_run_and_experiment_filter(mlflow_uri: str, tmp_path: Path, cli: Callable[..., Result]) -> None:
    _make_experiment(mlflow_uri, tmp_path)
    report = _migrate(cli, f"mlflow:{mlflow_uri}", f"aim:{tmp_path / 'aim'}", "--dry-run")
    assert _actions(report) == ["planned"] * 3 and not (tmp_path / "aim").exists()
    assert [(run["points"], run["artifacts"]) for run in report["runs"]] == [(241, 1)] * 3  # counted, not copied
    table = cli("migrate", "--from", f"mlflow:{mlflow_uri}", "--to", f"aim:{tmp_path / 'aim'}", "--dry-run").stdout
    assert "241" in table and not (tmp_path / "aim").exists()
    assert _migrate(cli, f"mlflow:{mlflow_uri}", f"aim:{tmp_path / 'aim'}", "-e", "nothing-here")["runs"] == []
    assert "No reader for 'nope:x'" in cli("migrate", "--from", "nope:x", "--to", "aim", code=2).stderr
    assert "Unknown backend 'nope'" in cli("migrate", "--from", f"mlflow:{mlflow_uri}", "--to", "nope", code=2).stderr


@pytest.fixture
def wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """W&B in offline mode, writing only under tmp_path; returns WANDB_DIR."""
    with offline_wandb(tmp_path, monkeypatch) as wandb_dir:
        yield wandb_dir


def _log_sample(backend: Any, tmp_path: Path) -> None:
    backend.open(RunInfo("tl-1", "digits", "sample", {"team": "vision"}, T0, str(tmp_path)), None)
    points = [MetricPoint("train/loss", 1.0 / (s + 1), s, T0 + s) for s in range(30)]
    points += [MetricPoint("val_acc", s / 30, s, T0 + s) for s in range(0, 30, 10)]
    backend.write(Batch(metrics=points, params={"lr": "0.001", "optimizer/name": "adam"}, tags={"stage": "a"}))
    (tmp_path / "notes.txt").write_text("notes")
    backend.log_artifact(ArtifactRef(str(tmp_path / "notes.txt"), "docs/notes.txt"))
    backend.close("FINISHED")


def _check_sample(uri: str, timestamps: bool) -> None:
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("digits").experiment_id])
    loss = sorted((m.step, m.value, m.timestamp) for m in client.get_metric_history(run.info.run_id, "train/loss"))
    assert [(s, v) for s, v, _ in loss] == [(s, 1.0 / (s + 1)) for s in range(30)]
    if timestamps:
        assert [t for _, _, t in loss] == [int((T0 + s) * 1000) for s in range(30)]
    acc = client.get_metric_history(run.info.run_id, "val_acc")
    assert sorted((m.step, m.value) for m in acc) == [(s, s / 30) for s in range(0, 30, 10)]
    assert run.data.params == {"lr": "0.001", "optimizer/name": "adam"}
    assert run.data.tags["team"] == "vision" and run.data.tags["stage"] == "a"
    assert run.info.run_name == "sample" and run.info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(run.info.run_id, "docs")] == ["docs/notes.txt"]


def test_wandb_offline_runs_migrate_to_mlflow(
    wandb_offline: Path, mlflow_uri: str, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    from tracelet_core.trackers.wandb.backend import WandbBackend

    _log_sample(WandbBackend({"mode": "offline"}), tmp_path)
    report = _migrate(cli, f"wandb-offline:{wandb_offline}", f"mlflow:{mlflow_uri}")
    assert _actions(report) == ["copied"] and report["runs"][0]["source"].startswith("wandb:")
    _check_sample(mlflow_uri, timestamps=True)
    assert _actions(_migrate(cli, f"wandb-offline:{wandb_offline}", f"mlflow:{mlflow_uri}")) == ["skipped"]


def test_clearml_offline_sessions_migrate_to_mlflow(
    mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result]
) -> None:
    from tracelet_core.trackers.clearml.backend import ClearMLBackend

    cache = tmp_path / "clearml-cache"
    (tmp_path / "clearml.conf").write_text("")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLEARML_OFFLINE_MODE", "1")
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(cache))
    monkeypatch.setenv("CLEARML_CONFIG_FILE", str(tmp_path / "clearml.conf"))
    _log_sample(ClearMLBackend({"offline": True}), tmp_path)
    report = _migrate(cli, f"clearml-offline:{cache}", f"mlflow:{mlflow_uri}")
    assert _actions(report) == ["copied"]
    assert any("report times" in note for note in report["runs"][0]["notes"])
    _check_sample(mlflow_uri, timestamps=False)  # ClearML stamps points when reported
    assert _actions(_migrate(cli, f"clearml-offline:{cache}", f"mlflow:{mlflow_uri}")) == ["skipped"]


def test_tensorboard_logdirs_migrate_with_scalars_and_hparams(
    mlflow_uri: str, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    from tensorboardX import SummaryWriter

    logdir = tmp_path / "tb"
    with SummaryWriter(str(logdir / "run-a")) as writer:
        for step in range(25):
            writer.add_scalar("loss", 1.0 / (step + 1), step, walltime=T0 + step)
        writer.add_histogram("weights", [0.1, 0.2, 0.3], 0)
        writer.add_hparams({"lr": 0.01, "layers": 3, "optimizer": "adam"}, {"hparam/score": 0.5}, name="hp")
    report = _migrate(cli, f"tensorboard:{logdir}", f"mlflow:{mlflow_uri}")
    assert sorted(r["name"] for r in report["runs"]) == ["run-a", "run-a/hp"]
    client = MlflowClient(mlflow_uri)
    runs = {r.info.run_name: r for r in client.search_runs([client.get_experiment_by_name("tb").experiment_id])}
    # The histogram is carried too (MLflow keeps it as a file, as for a live run).
    assert [a.path for a in client.list_artifacts(runs["run-a"].info.run_id, "tracelet/media/weights")]
    history = client.get_metric_history(runs["run-a"].info.run_id, "loss")
    assert sorted((m.step, m.value, m.timestamp) for m in history) == [
        (s, pytest.approx(1.0 / (s + 1)), int((T0 + s) * 1000)) for s in range(25)
    ]
    assert runs["run-a/hp"].data.params == {"lr": "0.01", "layers": "3", "optimizer": "adam"}
    assert _actions(_migrate(cli, f"tensorboard:{logdir}", f"mlflow:{mlflow_uri}")) == ["skipped"] * 2


def test_import_tensorboard_sends_a_logdir_to_the_trackers(
    mlflow_uri: str, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    from tensorboardX import SummaryWriter

    with SummaryWriter(str(tmp_path / "logs" / "baseline")) as writer:
        for step in range(10):
            writer.add_scalar("train/loss", 1.0 / (step + 1), step)
    (imported,) = json.loads(cli("import-tensorboard", str(tmp_path / "logs"), "-b", "mlflow", "--json").stdout)
    assert imported["name"] == "baseline" and imported["complete"] and imported["scalars"] == 10
    client = MlflowClient(mlflow_uri)
    history = client.get_metric_history(imported["backend_run_ids"]["mlflow"], "train/loss")
    assert sorted((m.step, m.value) for m in history) == [(s, pytest.approx(1.0 / (s + 1))) for s in range(10)]
    assert "is not a directory" in cli("import-tensorboard", "nowhere", code=2).stderr


def test_dry_run_counts_a_journal_run(cli: Callable[..., Result], tmp_path: Path) -> None:
    import tracelet_core

    run = tracelet_core.start_logging("counted", backends=[], flush_interval=0.01)
    for step in range(10):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    Path("weights.bin").write_bytes(b"\0" * 16)
    run.log_artifact("weights.bin")
    run.finish()
    report = _migrate(cli, "journal:.tracelet", f"aim:{tmp_path / 'aim'}", "--dry-run")
    ((points, files),) = [(r["points"], r["artifacts"]) for r in report["runs"]]
    assert points == 10 and files >= 1 and not (tmp_path / "aim").exists()

"""The SummaryWriter bridge: every summary kind from torch's and tensorboardX's writers reaches MLflow,
TensorBoard's own files are unchanged, the patch is idempotent and reversible, and a Trainer with both
a TraceletLogger and Lightning's TensorBoardLogger records each value once."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import tracelet_core
from tracelet_core import tensorboard as bridge
from tracelet_core.tensorboard_import import find_tensorboard_runs

tensorboardX = pytest.importorskip("tensorboardX")
torch_tensorboard = pytest.importorskip("torch.utils.tensorboard")

WALL = 1_700_000_000.0
STEPS = 3
WRITERS: dict[str, Callable[[str], Any]] = {
    "torch": lambda logdir: torch_tensorboard.SummaryWriter(logdir),
    "tensorboardX": lambda logdir: tensorboardX.SummaryWriter(logdir),
}


@pytest.fixture(autouse=True)
def unpatched() -> Iterator[None]:
    """Every test starts and ends with the original SummaryWriter classes."""
    bridge.unpatch_tensorboard()
    yield
    bridge.unpatch_tensorboard()


def _figure(step: int) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(1, 1), dpi=20)
    plt.plot([0, 1], [0, step])
    return figure


def log_every_kind(writer: Any, hparams_run: str = "hparams") -> None:
    """One of each summary kind per step, with fixed data and wall times."""
    labels = np.array([1, 0, 1, 1, 0, 1])
    predictions = np.array([0.9, 0.2, 0.6, 0.4, 0.3, 0.8])
    for step in range(STEPS):
        wall = WALL + step
        writer.add_scalar("train/loss", 1.0 / (step + 1), step, walltime=wall)
        writer.add_scalars("lr", {"encoder": 0.1 * step, "decoder": 0.2 * step}, step, walltime=wall)
        writer.add_histogram("weights", np.linspace(-1.0, 1.0, 50) * (step + 1), step, walltime=wall)
        writer.add_image("sample", np.full((3, 4, 5), step / 10.0), step, walltime=wall)
        writer.add_figure("figure", _figure(step), step, walltime=wall)
        writer.add_text("note", f"step {step}", step, walltime=wall)
        writer.add_pr_curve("pr", labels, predictions, step, walltime=wall)
        if not isinstance(writer, tensorboardX.SummaryWriter):  # tensorboardX's needs the soundfile package
            writer.add_audio("clip", np.sin(np.arange(800) / 8.0) * step / 4, step, sample_rate=8000, walltime=wall)
    writer.add_custom_scalars({"Losses": {"loss": ["Multiline", ["train/loss"]]}})
    hparams = ({"lr": 0.1, "batch_size": 32, "optimizer": "adam"}, {"hparam/accuracy": 0.9})
    if isinstance(writer, tensorboardX.SummaryWriter):
        writer.add_hparams(*hparams, name=hparams_run)
    else:
        writer.add_hparams(*hparams, run_name=hparams_run)


def artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> list[str]:
    found: list[str] = []
    for item in client.list_artifacts(run_id, path):
        found.extend(artifact_paths(client, run_id, item.path) if item.is_dir else [item.path])
    return sorted(found)


def read_artifact(client: MlflowClient, run_id: str, path: str, into: Path) -> str:
    return Path(client.download_artifacts(run_id, path, str(into))).read_text()


def single_run(client: MlflowClient, experiment: str) -> Any:
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


@pytest.mark.parametrize("library", list(WRITERS))
def test_every_summary_kind_reaches_mlflow(mlflow_uri: str, tmp_path: Path, library: str) -> None:
    run = tracelet_core.start_logging(f"tb-{library}", backends=["mlflow"], delivery="thread")
    bridge.patch_tensorboard()
    writer = WRITERS[library](str(tmp_path / "runs" / "a"))
    log_every_kind(writer)
    writer.close()
    report = run.finish()
    assert report.complete, report.summary()

    client = MlflowClient(mlflow_uri)
    native = run.backend_run_ids["mlflow"]
    history = client.get_metric_history(native, "train/loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [
        (s, pytest.approx(1.0 / (s + 1)), int((WALL + s) * 1000)) for s in range(STEPS)
    ]
    for member, factor in (("encoder", 0.1), ("decoder", 0.2)):  # add_scalars: main_tag/tag
        group = client.get_metric_history(native, f"lr/{member}")
        assert [(m.step, m.value) for m in group] == [(s, pytest.approx(factor * s)) for s in range(STEPS)]
    assert client.get_run(native).data.metrics["hparam/accuracy"] == pytest.approx(0.9)
    assert client.get_run(native).data.params == {"lr": "0.1", "batch_size": "32", "optimizer": "adam"}

    paths = artifact_paths(client, native)
    for key in ("sample", "figure"):
        assert sum(p.startswith(f"images/{key}+step+") and p.endswith(".png") for p in paths) == STEPS, paths
    assert read_artifact(client, native, "tracelet/text/note-step000000002.txt", tmp_path / "dl") == "step 2"
    histogram = json.loads(read_artifact(client, native, "tracelet/media/weights/000000001.json", tmp_path / "dl"))
    assert sum(histogram["counts"]) == 50 and histogram["bins"][0] == pytest.approx(-2.0)
    assert histogram["bins"][-1] == pytest.approx(2.0)
    pr = json.loads(read_artifact(client, native, "tensorboard/pr_curves/pr/step-000000002.json", tmp_path / "dl"))
    assert pr["step"] == 2 and len(pr["precision"]) == len(pr["recall"]) == len(pr["thresholds"]) == 127
    assert pr["true_positives"][0] == 4  # every positive is above the lowest threshold
    clips = sum(p.startswith("tensorboard/audio/clip/step-") and p.endswith(".wav") for p in paths)
    assert clips == (STEPS if library == "torch" else 0)
    layout = json.loads(read_artifact(client, native, "tensorboard/custom_scalars.json", tmp_path / "dl"))
    assert layout["category"][0]["title"] == "Losses"


def _hparams_content(acc: Any) -> dict[str, bytes]:
    """The hparams plugin's data by tag: experiment, session start and session end."""
    try:
        content = acc.PluginTagToContent("hparams")
    except KeyError:  # no add_hparams in this run
        return {}
    return dict(content)


def _event_content(logdir: Path) -> dict[str, Any]:
    """Everything EventAccumulator reads from each run under ``logdir``: tags, steps, values."""
    from tensorboard.backend.event_processing import event_accumulator

    content: dict[str, Any] = {}
    for directory in find_tensorboard_runs(logdir):
        acc = event_accumulator.EventAccumulator(
            str(directory), size_guidance=dict.fromkeys(event_accumulator.DEFAULT_SIZE_GUIDANCE, 0)
        )
        acc.Reload()
        tags = acc.Tags()
        run = directory.relative_to(logdir).as_posix()
        timed = run != "hparams"  # add_hparams takes no wall time: its metrics are written at "now"
        content[run] = {
            "tags": {k: sorted(v) if isinstance(v, list) else v for k, v in tags.items()},
            "scalars": {
                t: [(e.wall_time if timed else None, e.step, e.value) for e in acc.Scalars(t)] for t in tags["scalars"]
            },
            "histograms": {t: [(e.step, e.histogram_value) for e in acc.Histograms(t)] for t in tags["histograms"]},
            "images": {t: [(e.step, e.encoded_image_string) for e in acc.Images(t)] for t in tags["images"]},
            "audio": {t: [(e.step, e.encoded_audio_string) for e in acc.Audio(t)] for t in tags["audio"]},
            "tensors": {
                t: [(e.step, e.tensor_proto.SerializeToString()) for e in acc.Tensors(t)] for t in tags["tensors"]
            },
            "hparams": _hparams_content(acc),
        }
    return content


@pytest.mark.parametrize("library", list(WRITERS))
def test_event_files_are_the_same_with_the_patch(tmp_path: Path, library: str) -> None:
    plain = tmp_path / "plain"
    writer = WRITERS[library](str(plain))
    log_every_kind(writer)
    writer.close()

    patched = tmp_path / "patched"
    with tracelet_core.start_logging("same", backends=[]), bridge.patch_tensorboard():
        writer = WRITERS[library](str(patched))
        log_every_kind(writer)
        writer.close()

    expected, actual = _event_content(plain), _event_content(patched)
    group_dirs = ["lr/decoder", "lr/encoder"] if library == "tensorboardX" else ["lr_decoder", "lr_encoder"]
    assert sorted(actual) == [".", "hparams", *group_dirs]
    assert actual == expected
    assert len(actual["."]["scalars"]["train/loss"]) == STEPS


def test_patch_is_idempotent_and_unpatch_restores_the_original_functions() -> None:
    modules = (torch_tensorboard.writer, tensorboardX.writer)
    points = [(m.FileWriter, "add_event") for m in modules] + [(m.SummaryWriter, "add_scalars") for m in modules]
    originals = {point: point[0].__dict__[point[1]] for point in points}

    handle = bridge.patch_tensorboard()
    wrapped = {point: point[0].__dict__[point[1]] for point in points}
    assert all(wrapped[p] is not originals[p] and wrapped[p].__wrapped__ is originals[p] for p in points)
    bridge.patch_tensorboard()  # twice = once: not wrapped again
    assert all(point[0].__dict__[point[1]] is wrapped[point] for point in points)
    bridge.unpatch_tensorboard()
    assert all(point[0].__dict__[point[1]] is originals[point] for point in points)
    bridge.unpatch_tensorboard()  # nothing patched: nothing to do
    assert repr(handle) == "TensorBoardPatch(active=False)"

    with bridge.patch_tensorboard():
        assert all(point[0].__dict__[point[1]] is not originals[point] for point in points)
    assert all(point[0].__dict__[point[1]] is originals[point] for point in points)

    bridge.patch_tensorboard()
    with bridge.patch_tensorboard():  # already patched: leaving the block keeps it patched
        pass
    assert all(point[0].__dict__[point[1]] is not originals[point] for point in points)


def test_writers_before_and_after_the_patch_each_value_once(mlflow_uri: str, tmp_path: Path) -> None:
    run = tracelet_core.start_logging("once", backends=["mlflow"], delivery="thread")
    before = torch_tensorboard.SummaryWriter(str(tmp_path / "before"))
    bridge.patch_tensorboard()
    bridge.patch_tensorboard()
    after = tensorboardX.SummaryWriter(str(tmp_path / "after"))
    for step in range(3):
        before.add_scalar("before", step, step)
        after.add_scalar("after", step, step)
    bridge.unpatch_tensorboard()
    before.add_scalar("before", 99, 99)  # unpatched: TensorBoard only
    before.close()
    after.close()
    run.finish()

    client = MlflowClient(mlflow_uri)
    native = run.backend_run_ids["mlflow"]
    for key in ("before", "after"):
        assert [(m.step, m.value) for m in client.get_metric_history(native, key)] == [(s, float(s)) for s in range(3)]


def test_first_event_starts_a_run_and_unpatch_finishes_it(
    mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Zero-config, with the default delivery (a separate process)."""
    monkeypatch.setenv("TRACELET_BACKENDS", "mlflow")
    monkeypatch.setenv("TRACELET_EXPERIMENT", "zero-config")
    with bridge.patch_tensorboard():
        writer = torch_tensorboard.SummaryWriter(str(tmp_path / "runs" / "baseline"))
        for step in range(5):
            writer.add_scalar("loss", 1.0 / (step + 1), step * 10, walltime=WALL + step)
        writer.add_text("note", "hello", 0)
        writer.close()
        run = tracelet_core.get_active_run()
        assert run is not None and run.settings.delivery == "process"
    assert tracelet_core.get_active_run() is None and run.status == "FINISHED"

    client = MlflowClient(mlflow_uri)
    found = single_run(client, "zero-config")
    assert found.info.run_name == "baseline" and found.info.status == "FINISHED"
    assert found.data.tags["tensorboard.logdir"] == str((tmp_path / "runs" / "baseline").resolve())
    history = client.get_metric_history(found.info.run_id, "loss")
    assert [(m.step, m.timestamp) for m in history] == [(s * 10, int((WALL + s) * 1000)) for s in range(5)]
    assert "tracelet/text/note-step000000000.txt" in artifact_paths(client, found.info.run_id)


def test_a_bridge_failure_never_reaches_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def log_metrics(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("tracker side broke")

    monkeypatch.setattr(bridge, "get_active_run", lambda: Broken())
    bridge.patch_tensorboard()
    writer = torch_tensorboard.SummaryWriter(str(tmp_path))
    with pytest.warns(tracelet_core.TraceletWarning, match="tracker side broke") as caught:
        for step in range(3):
            writer.add_scalar("loss", step, step)
    writer.close()
    assert len(caught) == 1  # once, not once per step
    assert [e.step for e in _accumulator(tmp_path).Scalars("loss")] == [0, 1, 2]


def test_an_event_filter_keeps_events_out_of_tracelet_but_not_out_of_tensorboard(
    mlflow_uri: str, tmp_path: Path
) -> None:
    seen: list[tuple[str, str, str]] = []

    def no_debug(writer: Any, event: Any, caller: FrameType) -> bool:
        seen.append((writer.get_logdir(), caller.f_code.co_name, event.summary.value[0].tag))
        return not event.summary.value[0].tag.startswith("debug/")

    logdir = str(tmp_path / "tb")
    bridge.register_event_filter(no_debug)
    bridge.register_event_filter(no_debug)  # twice = once
    try:
        with bridge.patch_tensorboard():
            writer = torch_tensorboard.SummaryWriter(logdir)
            writer.add_scalar("debug/first", 1.0, 0)
            assert tracelet_core.get_active_run() is None  # a dropped event starts no run
            run = tracelet_core.start_logging("filtered", backends=["mlflow"], delivery="thread")
            for step in range(3):
                writer.add_scalar("loss", step, step)
                writer.add_scalar("debug/grad", step, step)
            bridge.unregister_event_filter(no_debug)
            writer.add_scalar("debug/grad", 9, 9)  # no filter any more: forwarded
            writer.close()
            run.finish()
    finally:
        bridge.unregister_event_filter(no_debug)
    bridge.unregister_event_filter(no_debug)  # not registered: nothing to do

    assert len(seen) == 7 and {(d, caller) for d, caller, _ in seen} == {(logdir, "add_summary")}
    client = MlflowClient(mlflow_uri)
    native = run.backend_run_ids["mlflow"]
    assert [m.step for m in client.get_metric_history(native, "loss")] == [0, 1, 2]
    assert [m.step for m in client.get_metric_history(native, "debug/grad")] == [9]
    assert client.get_metric_history(native, "debug/first") == []
    events = _accumulator(Path(logdir))
    assert [e.step for e in events.Scalars("debug/grad")] == [0, 1, 2, 9]
    assert [e.step for e in events.Scalars("debug/first")] == [0]


def _accumulator(logdir: Path) -> Any:
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    acc.Reload()
    return acc


def test_disabled_tracelet_patches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_ENABLED", "false")
    original = torch_tensorboard.writer.FileWriter.__dict__["add_event"]
    with bridge.patch_tensorboard():
        assert torch_tensorboard.writer.FileWriter.__dict__["add_event"] is original


def test_bad_configuration_fails_at_patch_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_BACKENDS", "nosuch")
    with pytest.raises(tracelet_core.ConfigurationError, match="TRACELET_BACKENDS"):
        bridge.patch_tensorboard()
    assert not hasattr(torch_tensorboard.writer.FileWriter.add_event, "__wrapped__")


def test_importing_the_bridge_loads_no_tensorboard() -> None:
    code = (
        "import sys, tracelet_core.tensorboard, tracelet_core.tensorboard_import; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'tensorboard', 'tensorboardX', 'numpy'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


# -- Lightning: TraceletLogger and TensorBoardLogger in one Trainer ------------------------------


@pytest.mark.parametrize("integration", ["logger first", "logger last", "callback"])
def test_trainer_with_tracelet_and_tensorboard_loggers_records_each_value_once(
    mlflow_uri: str, tmp_path: Path, integration: str
) -> None:
    pytest.importorskip("lightning")
    from lightning.pytorch.loggers import TensorBoardLogger

    from tests.lightning.tiny import TinyModel, loader, make_trainer
    from tracelet_lightning import TraceletCallback, TraceletLogger

    class WritesToTensorBoard(TinyModel):
        """Also writes to TensorBoard directly, as LightningModules do through ``self.logger.experiment``."""

        def on_train_epoch_end(self) -> None:
            tensorboard = next(lg for lg in self.loggers if isinstance(lg, TensorBoardLogger))
            tensorboard.experiment.add_scalar("direct/epoch_marker", self.current_epoch, self.global_step)

    options: dict[str, Any] = {"experiment": "both", "backends": ["mlflow"], "delivery": "thread"}
    tensorboard = TensorBoardLogger(save_dir=str(tmp_path / "tb"), name="tiny")
    if integration == "callback":  # the callback adds a TraceletLogger of its own when fit starts
        trainer = make_trainer(tensorboard)
        trainer.callbacks.append(TraceletCallback(**options))
    else:
        loggers = [TraceletLogger(**options), tensorboard]
        trainer = make_trainer(loggers if integration == "logger first" else loggers[::-1])  # type: ignore[arg-type]
    with bridge.patch_tensorboard():
        trainer.fit(WritesToTensorBoard(), loader(), loader())

    client = MlflowClient(mlflow_uri)
    found = single_run(client, "both")  # no second, zero-config run from the TensorBoard logger
    native = found.info.run_id
    assert [m.step for m in client.get_metric_history(native, "train/loss")] == list(range(16))
    assert [m.step for m in client.get_metric_history(native, "val/loss")] == [7, 15]
    assert "hp_metric" not in found.data.metrics  # TensorBoardLogger's own placeholder metric
    assert found.data.params["lr"] == "0.05"
    # written by the module itself, which no Tracelet logger sees: forwarded, once per epoch
    assert [m.step for m in client.get_metric_history(native, "direct/epoch_marker")] == [8, 16]
    # and TensorBoard still has everything
    events = _accumulator(Path(tensorboard.log_dir))
    assert [e.step for e in events.Scalars("train/loss")] == list(range(16))


def test_trainer_with_only_tensorboard_logger_reaches_tracelet_through_the_bridge(
    mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("lightning")
    from lightning.pytorch.loggers import TensorBoardLogger

    from tests.lightning.tiny import TinyModel, loader, make_trainer

    monkeypatch.setenv("TRACELET_BACKENDS", "mlflow")
    monkeypatch.setenv("TRACELET_DELIVERY", "thread")
    monkeypatch.setenv("TRACELET_EXPERIMENT", "tb-only")
    with warnings.catch_warnings(), bridge.patch_tensorboard():
        warnings.simplefilter("ignore")
        make_trainer(TensorBoardLogger(save_dir=str(tmp_path / "tb"), name="tiny")).fit(TinyModel(), loader())

    client = MlflowClient(mlflow_uri)
    found = single_run(client, "tb-only")
    assert found.info.run_name == "version_0"
    assert [m.step for m in client.get_metric_history(found.info.run_id, "train/loss")] == list(range(16))
    assert found.data.params["lr"] == "0.05"

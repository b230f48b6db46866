"""TraceletLogger in a real Trainer.fit, read back from MLflow."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from tracelet_core import ConfigurationError
from tracelet_core.pipeline.journal import Journal
from tracelet_lightning import TraceletLogger

from .tiny import Mode, Schedule, TinyModel, loader, make_trainer


def _native(logger: TraceletLogger) -> str:
    assert logger.report is not None
    return next(b.native_id for b in logger.report.backends if b.name == "mlflow")  # type: ignore[return-value]


@pytest.mark.parametrize("delivery", ["process", "thread"])
def test_fit_records_every_metric_with_lightnings_steps(mlflow_uri: str, delivery: str) -> None:
    logger = TraceletLogger(experiment="fit", backends=["mlflow"], delivery=delivery)  # type: ignore[arg-type]
    model = TinyModel(mode=Mode.FAST, schedule=Schedule(), data_dir=Path("/data"), act=torch.relu)
    make_trainer(logger).fit(model, loader(), loader())

    assert logger.report is not None and logger.report.complete
    client = MlflowClient(mlflow_uri)
    native = _native(logger)
    run = client.get_run(native)
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(native, "train/loss")] == list(range(16))
    assert [m.step for m in client.get_metric_history(native, "val/loss")] == [7, 15]
    # epoch is recorded once per change, not with every metric (Lightning issue 20902)
    assert [(m.step, m.value) for m in client.get_metric_history(native, "epoch")] == [(0, 0.0), (8, 1.0), (15, 1.0)][
        : len(client.get_metric_history(native, "epoch"))
    ]
    params = run.data.params
    assert params["lr"] == "0.05"
    assert params["mode"] == "Mode.FAST"
    assert params["schedule/warmup"] == "10" and params["schedule/gamma"] == "0.5"
    assert params["data_dir"] == "/data"
    assert params["act"].endswith("relu")
    assert run.data.tags["tracelet.run_id"] == logger.version


def test_epoch_is_recorded_once_per_epoch(mlflow_uri: str) -> None:
    logger = TraceletLogger(experiment="epochs", backends=["mlflow"], delivery="thread")
    make_trainer(logger, epochs=3).fit(TinyModel(), loader(), loader())
    history = MlflowClient(mlflow_uri).get_metric_history(_native(logger), "epoch")
    values = [m.value for m in history]
    assert values == sorted(set(values)) == [0.0, 1.0, 2.0]


def test_failing_training_step_ends_failed(mlflow_uri: str) -> None:
    logger = TraceletLogger(experiment="failing", backends=["mlflow"])
    with pytest.raises(RuntimeError, match="boom"):
        make_trainer(logger).fit(TinyModel(fail_at=5), loader())
    client = MlflowClient(mlflow_uri)
    native = _native(logger)
    assert client.get_run(native).info.status == "FAILED"
    assert [m.step for m in client.get_metric_history(native, "train/loss")] == [0, 1, 2, 3, 4]


def test_fit_then_test_is_one_run(mlflow_uri: str) -> None:
    logger = TraceletLogger(experiment="fit-test", backends=["mlflow"], delivery="thread")
    trainer = make_trainer(logger, epochs=1)
    model = TinyModel()
    trainer.fit(model, loader())
    first = _native(logger)
    trainer.validate(model, loader(), verbose=False)
    assert _native(logger) == first
    client = MlflowClient(mlflow_uri)
    assert len(client.search_runs([client.get_experiment_by_name("fit-test").experiment_id])) == 1
    assert "val/loss" in client.get_run(first).data.metrics


def test_failing_and_hanging_backends_do_not_stop_fit(mlflow_uri: str) -> None:
    from tracelet_core.testing import FAILING, HANGING, HangingBackend

    HangingBackend.hold()
    logger = TraceletLogger(experiment="outage", backends=["mlflow", FAILING, HANGING], delivery="thread")
    logger.settings.finish_timeout = 3.0
    try:
        make_trainer(logger).fit(TinyModel(), loader(), loader())
    finally:
        HangingBackend.release()
    assert logger.report is not None
    by_name = {b.name: b for b in logger.report.backends}
    assert by_name["mlflow"].complete
    assert not by_name[FAILING].complete and not by_name[HANGING].complete
    run_dir = Path(logger.log_dir)
    with Journal(run_dir / "journal.sqlite") as journal:
        assert journal.count("metric") >= 16


def test_logger_identity_and_pickling(isolated: Path) -> None:
    logger = TraceletLogger(experiment="exp/with odd:chars", backends=[])
    assert logger.name == "exp/with odd:chars"
    assert logger.save_dir == str(isolated / ".tracelet")
    assert Path(logger.log_dir).parent.parent == isolated / ".tracelet"
    _ = logger.experiment
    clone = pickle.loads(pickle.dumps(logger))
    assert clone.version == logger.version and clone.run is None
    logger.finalize("success")


def test_bad_configuration_fails_before_training(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_BACKENDS", "mlflow,nosuch")
    with pytest.raises(
        ConfigurationError, match=r"TRACELET_BACKENDS.*nosuch.*allowed: aim, clearml, mlflow, tracelet, wandb"
    ):
        TraceletLogger()


def test_works_with_no_tracker_installed(tmp_path: Path) -> None:
    """With no tracker SDK importable, the journal is the store and one notice says what to install."""
    script = tmp_path / "fit.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            for sdk in ("mlflow", "wandb", "clearml", "aim"):
                sys.modules[sdk] = None  # as if not installed
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            import lightning.pytorch as pl
            from tiny import TinyModel, loader, make_trainer
            from tracelet_lightning import TraceletLogger
            logger = TraceletLogger()
            make_trainer(logger, epochs=1).fit(TinyModel(), loader())
            print("REPORT", logger.report.summary())
            """
        )
    )
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count('pip install "tracelet-lightning[mlflow]"') == 1
    assert "events kept in the journal" in proc.stdout
    assert not (tmp_path / "mlflow.db").exists()

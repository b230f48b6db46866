"""The TensorBoard bridge's Lightning rule, registered by importing tracelet_lightning, is what keeps a
Trainer with both a TraceletLogger and a TensorBoardLogger from recording each value twice (the
Trainer-level behaviour is tested with the bridge, in tests/core/test_tensorboard.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lightning.pytorch.loggers import TensorBoardLogger
from mlflow.tracking import MlflowClient

from tests.core.test_tensorboard import single_run
from tests.lightning.tiny import TinyModel, loader, make_trainer
from tracelet_core import tensorboard as bridge
from tracelet_lightning import TraceletLogger
from tracelet_lightning.tensorboard import lightning_event_filter

pytest.importorskip("tensorboard")


@pytest.fixture
def without_the_rule() -> Iterator[None]:
    bridge.unregister_event_filter(lightning_event_filter)
    yield
    bridge.register_event_filter(lightning_event_filter)


@pytest.mark.usefixtures("without_the_rule")
def test_without_the_rule_what_the_tensorboard_logger_writes_is_recorded_twice(mlflow_uri: str, tmp_path: Path) -> None:
    tracelet = TraceletLogger(experiment="twice", backends=["mlflow"], delivery="thread")
    tensorboard = TensorBoardLogger(save_dir=str(tmp_path / "tb"), name="tiny")
    with bridge.patch_tensorboard():
        make_trainer([tracelet, tensorboard]).fit(TinyModel(), loader())  # type: ignore[arg-type]

    client = MlflowClient(mlflow_uri)
    found = single_run(client, "twice")
    # TensorBoardLogger's own placeholder metric, which only the bridge can have recorded (with the rule,
    # tests/core/test_tensorboard.py finds none). Its train/loss points are recorded again as well, but
    # MLflow merges a copy whose value and millisecond equal the original's, so their count varies.
    assert found.data.metrics["hp_metric"] == -1
    steps = [m.step for m in client.get_metric_history(found.info.run_id, "train/loss")]
    assert set(steps) == set(range(16))

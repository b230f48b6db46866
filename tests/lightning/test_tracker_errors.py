"""``TraceletLogger(on_tracker_error=...)`` in a real ``Trainer.fit`` against an MLflow URI nothing listens on."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest

from tests.support.ports import closed_port
from tests.support.waiting import wait_until
from tracelet_core.errors import TraceletWarning, TrackerConfigurationError
from tracelet_core.pipeline.contract import DeliveryState
from tracelet_lightning import TraceletCallback, TraceletLogger

from .tiny import TinyModel, loader, make_trainer


class CountingModel(TinyModel):
    """Counts its training steps; in ``on_train_end`` waits until the logger's run has met its tracker."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.steps = 0

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        self.steps += 1
        return super().training_step(batch, batch_idx)


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("TRACELET_GIVE_UP_AFTER", "0")  # the delivery process leaves once training has ended
    return uri


@pytest.mark.parametrize("through", ["logger", "callback"])
def test_raise_fails_fit_before_the_first_training_step(unreachable: str, through: str) -> None:
    model = CountingModel()
    if through == "logger":
        trainer = make_trainer(TraceletLogger(experiment="fail-fast", backends=["mlflow"], on_tracker_error="raise"))
    else:
        trainer = pl.Trainer(
            max_epochs=1,
            logger=False,
            callbacks=[TraceletCallback(backends=["mlflow"], on_tracker_error="raise")],
            enable_progress_bar=False,
            enable_checkpointing=False,
            enable_model_summary=False,
        )
    with pytest.raises(TrackerConfigurationError, match=unreachable.replace(".", r"\.")):
        trainer.fit(model, loader())
    assert model.steps == 0


def test_warn_warns_once_and_training_completes(unreachable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_FINISH_TIMEOUT", "0")
    logger = TraceletLogger(experiment="train-on", backends=["mlflow"], on_tracker_error="warn")
    model = CountingModel()

    def met_the_tracker() -> bool:
        run = logger.run
        return run is not None and run.report().backends[0].state is DeliveryState.RETRYING

    model.on_train_end = lambda: wait_until(met_the_tracker, what="a failed attempt to reach MLflow")  # type: ignore[method-assign]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_trainer(logger).fit(model, loader())
    assert model.steps == 16
    assert logger.report is not None and logger.report.status == "FINISHED"
    about_mlflow = [w for w in caught if issubclass(w.category, TraceletWarning) and "mlflow" in str(w.message)]
    assert len(about_mlflow) == 1, [str(w.message) for w in about_mlflow]
    assert "cannot be reached" in str(about_mlflow[0].message)

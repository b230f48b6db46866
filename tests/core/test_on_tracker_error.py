"""``on_tracker_error="raise"``: a run's start fails, naming the tracker, when a tracker cannot open its run."""

from __future__ import annotations

from pathlib import Path

import pytest

import tracelet_core
from tests.support.fault_backends import MISCONFIGURED
from tests.support.ports import closed_port
from tracelet_core.errors import TrackerConfigurationError
from tracelet_core.pipeline.journal import Journal
from tracelet_core.pipeline.opening import tracker_location
from tracelet_core.settings import load_settings


def test_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().on_tracker_error == "warn"
    monkeypatch.setenv("TRACELET_ON_TRACKER_ERROR", "raise")
    assert load_settings().on_tracker_error == "raise"
    monkeypatch.setenv("TRACELET_ON_TRACKER_ERROR", "explode")
    with pytest.raises(tracelet_core.ConfigurationError, match="TRACELET_ON_TRACKER_ERROR"):
        load_settings()


def test_unreachable_tracker_fails_the_start_naming_its_uri_without_credentials() -> None:
    port = closed_port()
    with pytest.raises(TrackerConfigurationError, match=rf"http://127\.0\.0\.1:{port}") as raised:
        tracelet_core.start_logging(
            "unreachable",
            backends=["mlflow"],
            mlflow={"tracking_uri": f"http://alice:s3cret@127.0.0.1:{port}"},
            on_tracker_error="raise",
        )
    assert "cannot be reached" in str(raised.value) and "s3cret" not in str(raised.value)
    assert tracelet_core.get_active_run() is None
    journal_path = next(Path(".tracelet").glob("unreachable/*/journal.sqlite"))
    with Journal(journal_path) as journal:
        assert journal.meta().status == "FAILED"


def test_misconfigured_tracker_fails_the_start_at_once() -> None:
    with pytest.raises(TrackerConfigurationError, match="no API key configured"):
        tracelet_core.start_logging("refused", backends=[MISCONFIGURED], on_tracker_error="raise", delivery="thread")


def test_reachable_tracker_starts_as_usual(mlflow_uri: str) -> None:
    run = tracelet_core.start_logging("fine", backends=["mlflow"], on_tracker_error="raise", delivery="thread")
    assert run.backend_run_ids["mlflow"]  # open before start_logging returned
    run.log_metric("loss", 0.5, step=1)
    assert run.finish().complete


def test_tracker_location_uses_the_sdk_variable_when_the_option_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://bob:pw@tracking.example:5000")
    assert tracker_location("mlflow", {"tracking_uri": None}) == "tracking_uri=http://tracking.example:5000"
    assert tracker_location("not-a-tracker", {}) == ""

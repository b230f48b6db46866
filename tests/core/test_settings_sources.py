"""Where settings come from: unknown ``TRACELET_*`` names warn, and every error names its source."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from tracelet_core import ConfigurationError, TraceletSettings, TraceletWarning, trackers
from tracelet_core.settings import INTERNAL_VARIABLES, load_settings


def _tracelet_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, TraceletWarning)]


@pytest.mark.parametrize(
    ("variable", "suggestion"),
    [
        ("TRACELET_BACKEND", "TRACELET_BACKENDS"),
        ("TRACELET_EXPERIMNT", "TRACELET_EXPERIMENT"),
        ("TRACELET_MLFLOW_TRACKING_URI", "TRACELET_MLFLOW__TRACKING_URI"),  # one underscore: not nested
        ("TRACELET_MLFLOW__TRACKINGURI", "TRACELET_MLFLOW__TRACKING_URI"),
        ("tracelet_run_nam", "TRACELET_RUN_NAME"),
    ],
)
def test_an_unknown_variable_warns_once_with_the_closest_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, suggestion: str
) -> None:
    monkeypatch.setenv(variable, "x")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_settings()
        load_settings(experiment="again")
    assert _tracelet_warnings(caught) == [
        f"{variable} (from the environment) is not a Tracelet setting and is ignored; did you mean {suggestion}?"
    ]


def test_an_unknown_dotenv_key_names_the_file(isolated: Path) -> None:
    (isolated / ".env").write_text("TRACELET_EXPERIMENT=digits\nTRACELET_BACKEND=mlflow\n")
    with pytest.warns(TraceletWarning) as caught:
        assert load_settings().experiment == "digits"
    assert [str(w.message) for w in caught] == [
        f"TRACELET_BACKEND (from .env at {Path.cwd() / '.env'}) is not a Tracelet setting and is ignored; "
        "did you mean TRACELET_BACKENDS?"
    ]


def test_an_unknown_name_with_no_close_match_still_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_QQQQQQQQQQQQQQQQ", "1")
    with pytest.warns(TraceletWarning, match="TRACELET_QQQQQQQQQQQQQQQQ .* is ignored; the configuration reference"):
        load_settings()


@pytest.mark.parametrize(
    "variable",
    [
        "TRACELET_EXPERIMENT",
        "tracelet_experiment",
        "TRACELET_MLFLOW__HTTP_TIMEOUT",
        "TRACELET_WANDB__ENTITY",
        "TRACELET_CLEARML__TASK_TYPE",
        "TRACELET_AIM__ARTIFACTS_URI",
        *sorted(INTERNAL_VARIABLES),
    ],
)
def test_settings_and_internal_variables_do_not_warn(
    monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder, variable: str
) -> None:
    monkeypatch.setenv(variable, "1")
    load_settings()
    assert _tracelet_warnings(recwarn.list) == []


def test_a_backend_section_as_json_does_not_warn(
    monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder
) -> None:
    monkeypatch.setenv("TRACELET_MLFLOW", '{"tracking_uri": "sqlite:///x.db"}')
    assert load_settings().mlflow.tracking_uri == "sqlite:///x.db"
    assert _tracelet_warnings(recwarn.list) == []


def test_a_registered_backend_options_do_not_warn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_ACME__ENDPOINT", "http://acme")
    with pytest.warns(TraceletWarning, match="TRACELET_ACME__ENDPOINT"):
        load_settings()  # no backend called acme: nobody reads the variable
    monkeypatch.setitem(trackers._registered, "acme", trackers.Tracker("acme", backend="acme_tracker:AcmeBackend"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_settings()
    assert _tracelet_warnings(caught) == []


def _error(**overrides: Any) -> str:
    with pytest.raises(ConfigurationError) as info:
        load_settings(**overrides)
    return str(info.value)


def test_an_argument_is_named_as_an_argument() -> None:
    assert _error(flush_interval=-1) == (
        "Invalid Tracelet configuration: flush_interval=-1 (argument): Input should be greater than 0"
    )
    assert "mlflow.http_timeout=0 (argument): Input should be greater than 0" in _error(mlflow={"http_timeout": 0})
    with pytest.raises(ConfigurationError, match=r"flush_interval=-1 \(argument\)"):
        load_settings(TraceletSettings(experiment="base"), flush_interval=-1)


def test_an_environment_variable_is_named_with_its_raw_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_FLUSH_INTERVAL", "abc")
    assert _error().startswith(
        "Invalid Tracelet configuration: TRACELET_FLUSH_INTERVAL='abc' (from the environment): "
        "Input should be a valid number"
    )
    monkeypatch.delenv("TRACELET_FLUSH_INTERVAL")
    monkeypatch.setenv("TRACELET_MLFLOW__HTTP_TIMEOUT", "0")
    assert "TRACELET_MLFLOW__HTTP_TIMEOUT='0' (from the environment): Input should be greater than 0" in _error()


def test_a_dotenv_value_is_named_with_the_file(isolated: Path) -> None:
    (isolated / ".env").write_text("TRACELET_BACKENDS=mlfow\n")
    assert _error() == (
        f"Invalid Tracelet configuration: TRACELET_BACKENDS='mlfow' (from .env at {Path.cwd() / '.env'}): "
        "unknown backend 'mlfow'; allowed: aim, clearml, mlflow, tracelet, wandb"
    )


def test_the_environment_beats_dotenv_in_the_message_too(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated / ".env").write_text("TRACELET_DELIVERY=thread\nTRACELET_LOG_CHECKPOINTS=often\n")
    monkeypatch.setenv("TRACELET_DELIVERY", "pigeon")
    lines = _error().splitlines()
    assert lines[0] == "Invalid Tracelet configuration:"
    assert lines[1:] == [
        f"  TRACELET_LOG_CHECKPOINTS='often' (from .env at {Path.cwd() / '.env'}): "
        "Input should be 'none', 'last', 'best' or 'all'",
        "  TRACELET_DELIVERY='pigeon' (from the environment): Input should be 'process' or 'thread'",
    ]


def test_a_backend_section_that_is_not_json_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_WANDB", "project=x")
    message = _error()
    assert "TRACELET_WANDB='project=x' (from the environment): not valid JSON" in message
    assert "TRACELET_WANDB__<OPTION>" in message


def test_an_option_inside_a_json_section_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_MLFLOW", '{"http_timeout": -1}')
    assert "TRACELET_MLFLOW='{\"http_timeout\": -1}' (from the environment): http_timeout: Input should be" in _error()

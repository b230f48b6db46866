"""TraceletSettings: sources, precedence and the messages bad values get."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracelet_core import ConfigurationError, TraceletSettings
from tracelet_core.settings import load_settings


def test_defaults() -> None:
    settings = load_settings()
    assert settings.enabled is True
    assert settings.backends is None
    assert settings.resolved_backends() == ["mlflow"]  # mlflow is installed in the dev environment
    assert settings.log_checkpoints == "best"
    assert settings.journal_dir == Path(".tracelet")


def test_environment_and_nested_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_BACKENDS", "mlflow, aim")
    monkeypatch.setenv("TRACELET_TAGS", "team=vision,owner=ada")
    monkeypatch.setenv("TRACELET_MLFLOW__TRACKING_URI", "sqlite:///x.db")
    monkeypatch.setenv("TRACELET_ENV_INCLUDE", '["CUDA_*", "SLURM_*"]')
    settings = load_settings()
    assert settings.backends == ["mlflow", "aim"]
    assert settings.tags == {"team": "vision", "owner": "ada"}
    assert settings.mlflow.tracking_uri == "sqlite:///x.db"
    assert settings.env_include == ["CUDA_*", "SLURM_*"]


def test_tags_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_TAGS", '{"a": "1, with comma"}')
    assert load_settings().tags == {"a": "1, with comma"}


def test_arguments_beat_environment_which_beats_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("TRACELET_EXPERIMENT=from-dotenv\nTRACELET_RUN_NAME=dotenv-run\n")
    assert load_settings().experiment == "from-dotenv"
    monkeypatch.setenv("TRACELET_EXPERIMENT", "from-env")
    settings = load_settings()
    assert settings.experiment == "from-env"
    assert settings.run_name == "dotenv-run"
    assert load_settings(experiment="from-argument").experiment == "from-argument"


def test_overrides_on_top_of_a_settings_object() -> None:
    base = TraceletSettings(experiment="a", backends=["mlflow"])
    merged = load_settings(base, run_name="r")
    assert (merged.experiment, merged.backends, merged.run_name) == ("a", ["mlflow"], "r")


def test_unknown_backend_names_the_variable_value_and_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_BACKENDS", "mlflow,mlfow")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert "TRACELET_BACKENDS" in message
    assert "'mlfow'" in message
    for allowed in ("aim", "clearml", "mlflow", "wandb"):
        assert allowed in message


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TRACELET_LOG_CHECKPOINTS", "sometimes", "'none', 'last', 'best' or 'all'"),
        ("TRACELET_DELIVERY", "carrier-pigeon", "'process' or 'thread'"),
        ("TRACELET_SYSTEM_METRICS_INTERVAL", "-1", "greater than 0"),
        ("TRACELET_TAGS", "novalue", "key=value"),
    ],
)
def test_bad_values_get_one_clear_message(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert variable in str(info.value)
    assert value in str(info.value)
    assert expected in str(info.value)


def test_every_field_is_described() -> None:
    for name, field in TraceletSettings.model_fields.items():
        assert field.description, name

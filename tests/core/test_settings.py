"""TraceletSettings: sources, precedence, the keywords it takes and the messages bad values get.

Unknown variables and the source named in error messages: test_settings_sources.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tracelet_core
from tracelet_core import ConfigurationError, TraceletSettings
from tracelet_core.normalize import DEFAULT_SECRET_PARAMS
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
    assert f"{variable}={value!r} (from the environment)" in str(info.value)
    assert expected in str(info.value)


def test_every_field_is_described() -> None:
    for name, field in TraceletSettings.model_fields.items():
        assert field.description, name


@pytest.mark.parametrize(
    ("keyword", "suggestion"), [("name", "run_name"), ("expriment", "experiment"), ("system_metric", "system_metrics")]
)
def test_a_misspelt_keyword_of_start_logging_is_a_type_error(keyword: str, suggestion: str) -> None:
    options: dict[str, Any] = {keyword: "x"}
    with pytest.raises(TypeError) as info:
        tracelet_core.start_logging(**options)
    message = str(info.value)
    assert message.startswith(f"start_logging() got an unexpected keyword argument {keyword!r}")
    assert f"did you mean {suggestion!r}?" in message
    allowed = message.partition("allowed: ")[2].split(", ")
    assert {"run_id", "native_ids", "settings", "journal_dir"} <= set(allowed)  # its own arguments
    assert set(TraceletSettings.model_fields) <= set(allowed)
    assert tracelet_core.get_active_run() is None


def test_several_unknown_keywords_are_named_together() -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword arguments 'name' .*, 'zzz';"):
        tracelet_core.start_logging(name="x", zzz=1)


def test_a_misspelt_keyword_of_load_settings_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"load_settings\(\) .* 'flush_intervall' \(did you mean 'flush_interval'\?\)"):
        load_settings(flush_intervall=1.0)
    with pytest.raises(TypeError, match="'run_nam'"):
        load_settings(TraceletSettings(), run_nam="r")


def test_secret_params_default_to_the_built_in_patterns() -> None:
    settings = load_settings()
    assert settings.secret_params == list(DEFAULT_SECRET_PARAMS)
    assert "*token" in settings.secret_params


@pytest.mark.parametrize(
    ("value", "expected"),
    [("*key, my_*", ["*key", "my_*"]), ('["*key", "seed"]', ["*key", "seed"]), ("", [])],
)
def test_secret_params_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]) -> None:
    monkeypatch.setenv("TRACELET_SECRET_PARAMS", value)
    assert load_settings().secret_params == expected


def test_a_misspelt_keyword_of_restart_collectors_is_a_type_error(tmp_path: Path) -> None:
    run = tracelet_core.start_logging(backends=[], journal_dir=tmp_path / "journal", delivery="thread")
    with pytest.raises(TypeError, match=r"'system_metric' \(did you mean 'system_metrics'\?\)"):
        run.restart_collectors(system_metric=True)
    assert run.finish(timeout=10).status == "FINISHED"

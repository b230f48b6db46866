"""The environment collector: versions, packages, command line, and secrets that never reach the run."""

from __future__ import annotations

import getpass
import json
import platform
import secrets
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from tracelet_core.collectors import RecordingSink, start_collectors
from tracelet_core.collectors.environment import (
    DEFAULT_ENV_INCLUDE,
    MASK,
    filter_environment,
    looks_secret,
    mask_command_line,
)
from tracelet_core.settings import TraceletSettings

ENVIRONMENT_JSON = "tracelet/environment.json"
REQUIREMENTS = "tracelet/requirements.txt"


@pytest.fixture(autouse=True)
def _no_collector_thread_left() -> Iterator[None]:
    yield
    assert not [t for t in threading.enumerate() if t.name.startswith("tracelet-collectors")]


def capture(tmp_path: Path, **settings: Any) -> RecordingSink:
    sink = RecordingSink(tmp_path / "run")
    collectors = start_collectors(sink, TraceletSettings(environment=True, git=False, system_metrics=False, **settings))
    collectors.stop(timeout=30)
    return sink


def everything_logged(sink: RecordingSink) -> str:
    files = "".join(path.read_text() for path in sink.artifacts.values())
    return repr(sink.tags) + repr(sink.params) + repr(sink.metrics) + files


@pytest.mark.parametrize(
    "include",
    [["*"], ["MY_*", "HF_*", "DB_*", "TRACKING_URI"], ["my_api_key", "hf_token", "db_password", "tracking_uri"]],
)
def test_secrets_never_reach_the_run_whatever_the_include_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, include: list[str]
) -> None:
    planted = {name: secrets.token_hex(16) for name in ("MY_API_KEY", "HF_TOKEN", "DB_PASSWORD")}
    for name, value in planted.items():
        monkeypatch.setenv(name, value)
    url_password = secrets.token_hex(16)
    monkeypatch.setenv("TRACKING_URI", f"https://alice:{url_password}@mlflow.example/")
    flag_secret, next_secret, override_secret = (secrets.token_hex(16) for _ in range(3))
    monkeypatch.setattr(
        sys,
        "argv",
        ["train.py", f"--api-key={flag_secret}", "--token", next_secret, f"db.password={override_secret}", "--lr=0.1"],
    )

    sink = capture(tmp_path, env_include=include)

    logged = everything_logged(sink)
    for value in [*planted.values(), url_password, flag_secret, next_secret, override_secret]:
        assert value not in logged
    recorded = json.loads(sink.artifacts[ENVIRONMENT_JSON].read_text())
    assert {name: recorded["env"][name] for name in planted} == dict.fromkeys(planted, MASK)
    assert recorded["env"]["TRACKING_URI"] == "https://mlflow.example/"
    assert recorded["command"]["argv"] == [
        "train.py",
        f"--api-key={MASK}",
        "--token",
        MASK,
        f"db.password={MASK}",
        "--lr=0.1",
    ]


def test_tags_name_the_interpreter_platform_and_libraries(tmp_path: Path) -> None:
    tags = capture(tmp_path).tags
    assert tags["env.python"] == platform.python_version()
    assert tags["env.platform"] == platform.platform()
    assert tags["env.hostname"]
    assert tags["env.user"] == getpass.getuser()
    assert tags["env.program"] == sys.argv[0]
    assert "env.cpu_count" not in tags  # in environment.json: a tag is for filtering runs
    assert tags["env.torch"] == metadata.version("torch")
    assert tags["env.lightning"] == metadata.version("lightning")


def test_cuda_and_cudnn_come_from_an_already_imported_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in = types.ModuleType("torch")
    stand_in.version = types.SimpleNamespace(cuda="12.4")  # type: ignore[attr-defined]
    stand_in.backends = types.SimpleNamespace(cudnn=types.SimpleNamespace(version=lambda: 90100))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", stand_in)
    tags = capture(tmp_path).tags
    assert tags["env.cuda"] == "12.4"
    assert tags["env.cudnn"] == "90100"


def test_no_cuda_tags_when_torch_is_not_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    tags = capture(tmp_path).tags
    assert "env.cuda" not in tags and "env.cudnn" not in tags


def test_packages_as_json_and_requirements(tmp_path: Path) -> None:
    sink = capture(tmp_path)
    recorded = json.loads(sink.artifacts[ENVIRONMENT_JSON].read_text())
    assert recorded["packages"]["psutil"] == metadata.version("psutil")
    assert recorded["python"]["version"] == platform.python_version()
    assert recorded["command"]["cwd"]
    lines = sink.artifacts[REQUIREMENTS].read_text().splitlines()
    assert f"psutil=={metadata.version('psutil')}" in lines
    assert f"GitPython=={metadata.version('GitPython')}" in lines
    assert all(line.startswith("#") or "==" in line for line in lines)


def test_default_include_records_training_variables_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    monkeypatch.setenv("UNRELATED_SETTING", "x")
    monkeypatch.setenv("TORCH_HUB_TOKEN", "t0k")
    recorded = json.loads(capture(tmp_path).artifacts[ENVIRONMENT_JSON].read_text())["env"]
    assert recorded["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert recorded["OMP_NUM_THREADS"] == "4"
    assert recorded["TORCH_HUB_TOKEN"] == MASK
    assert "UNRELATED_SETTING" not in recorded


def test_exclude_wins_over_include(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUN_SEED", "7")
    monkeypatch.setenv("RUN_NOTE", "hello")
    recorded = json.loads(
        capture(tmp_path, env_include=["RUN_*"], env_exclude=["*_NOTE"]).artifacts[ENVIRONMENT_JSON].read_text()
    )["env"]
    assert recorded == {"RUN_SEED": "7"}


def test_environment_off_records_nothing(tmp_path: Path) -> None:
    sink = RecordingSink(tmp_path / "run")
    start_collectors(sink, TraceletSettings(environment=False, git=False, system_metrics=False)).stop()
    assert sink.tags == {} and sink.artifacts == {}


@pytest.mark.parametrize(
    "name",
    ["MY_API_KEY", "hf_token", "Db_Password", "AWS_SECRET_ACCESS_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "AUTH"],
)
def test_secret_looking_names(name: str) -> None:
    assert looks_secret(name)


def test_values_that_look_like_connection_strings_are_masked() -> None:
    environ = {"AZURE_STORAGE": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0", "SEED": "1"}
    assert filter_environment(environ, include=["*"]) == {"AZURE_STORAGE": MASK, "SEED": "1"}


def test_glob_patterns_match_any_case() -> None:
    assert filter_environment({"Cuda_Home": "/usr/local/cuda"}, include=["CUDA_*"]) == {"Cuda_Home": "/usr/local/cuda"}
    assert filter_environment({"CUDA_HOME": "/c"}, include=["*"], exclude=["cuda_*"]) == {}


def test_default_include_is_used_when_the_list_is_empty() -> None:
    assert filter_environment({"SLURM_JOB_ID": "42", "HOME": "/root"}) == {"SLURM_JOB_ID": "42"}
    assert "SLURM_*" in DEFAULT_ENV_INCLUDE


def test_command_line_masking_keeps_ordinary_arguments() -> None:
    argv = ["fit", "--trainer.max_epochs=3", "--password", "--", "--uri", "https://u:p@h/x", "data/"]
    assert mask_command_line(argv) == [
        "fit",
        "--trainer.max_epochs=3",
        "--password",
        MASK,
        "--uri",
        "https://h/x",
        "data/",
    ]


def test_importing_and_running_collectors_loads_no_heavy_module(tmp_path: Path) -> None:
    code = f"""
import sys
import tracelet_core.collectors
heavy = ("torch", "lightning", "pynvml", "git")
assert not [m for m in heavy if m in sys.modules], [m for m in heavy if m in sys.modules]
from tracelet_core.collectors import RecordingSink, start_collectors
from tracelet_core.settings import TraceletSettings
sink = RecordingSink({str(tmp_path)!r})
start_collectors(sink, TraceletSettings(environment=True, git=False, system_metrics=False)).stop(timeout=30)
assert "env.torch" in sink.tags
assert "torch" not in sys.modules and "lightning" not in sys.modules, "versions come from metadata"
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[3], timeout=60)

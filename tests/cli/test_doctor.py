"""`tracelet doctor`: where each setting came from, and whether each configured backend can work."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import types
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import pytest
from click.testing import Result

from tests.support.mlflow_server import free_port


def _settings(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {row["name"]: (row["value"], row["source"]) for row in report["settings"]}


def test_unreachable_mlflow_server_fails_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, tracelet: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    port = free_port()  # nothing listens there
    uri = f"http://alice:s3cret@127.0.0.1:{port}"
    done = tracelet("doctor", env={"TRACELET_BACKENDS": "mlflow", "TRACELET_MLFLOW__TRACKING_URI": uri})
    assert done.returncode == 1
    assert f"MLflow tracking server http://127.0.0.1:{port} does not answer" in done.stdout
    assert f"mlflow server --host 127.0.0.1 --port {port}" in done.stdout
    assert "TRACELET_MLFLOW__TRACKING_URI" in done.stdout and "tracelet sync" in done.stdout
    assert "s3cret" not in done.stdout + done.stderr  # credentials never shown


def test_settings_sources_and_a_working_sqlite_store(
    mlflow_uri: str, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result]
) -> None:
    Path(".env").write_text("TRACELET_RUN_NAME=from-dotenv\nTRACELET_FLUSH_INTERVAL=0.5\n")
    monkeypatch.setenv("TRACELET_BACKENDS", "mlflow")
    monkeypatch.setenv("TRACELET_WANDB__PROJECT", "proj")
    monkeypatch.setenv("TRACELET_TAGS", "api_token=abc123,team=vision")
    report = json.loads(cli("doctor", "--experiment", "digits", "--json").stdout)
    settings = _settings(report)
    assert settings["experiment"] == ("digits", "argument")
    assert settings["backends"] == ("mlflow", "env TRACELET_BACKENDS")
    assert settings["run_name"] == ("from-dotenv", ".env TRACELET_RUN_NAME")
    assert settings["flush_interval"] == ("0.5", ".env TRACELET_FLUSH_INTERVAL")
    assert settings["wandb.project"] == ("proj", "env TRACELET_WANDB__PROJECT")
    assert settings["mlflow.tracking_uri"] == (mlflow_uri, "env MLFLOW_TRACKING_URI (the SDK's own)")
    assert settings["give_up_after"] == ("300.0", "default")
    assert settings["tags"][0] == "api_token=***,team=vision"
    assert report["ok"] is True
    (mlflow,) = report["backends"]
    assert mlflow["level"] == "ok" and mlflow["details"]["version"] and "writable" in mlflow["summary"]
    assert {c["name"] for c in report["system"]} == {"journal", "gpu", "git"}
    text = cli("doctor").stdout
    assert "Everything configured can work" in text and "mlflow" in text


def test_each_backend_says_what_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/clearml.conf, no ~/.netrc
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("TRACELET_AIM__REPO", str(tmp_path / "aim"))
    report = json.loads(cli("doctor", "--backends", "aim,wandb,clearml", "--json", code=1).stdout)
    checks = {c["name"]: c for c in report["backends"]}
    assert checks["aim"]["level"] == "ok" and "will be created" in checks["aim"]["summary"]
    assert checks["wandb"]["level"] == "error" and "wandb login" in checks["wandb"]["fix"]
    assert checks["clearml"]["level"] == "error" and "TRACELET_CLEARML__OFFLINE=true" in checks["clearml"]["fix"]

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("TRACELET_CLEARML__OFFLINE", "true")
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(tmp_path / "clearml"))
    report = json.loads(cli("doctor", "--backends", "aim,wandb,clearml", "--json").stdout)
    assert {c["name"]: c["level"] for c in report["backends"]} == {"aim": "ok", "wandb": "ok", "clearml": "ok"}


def test_bad_configuration_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result]
) -> None:
    monkeypatch.setenv("TRACELET_FLUSH_INTERVAL", "soon")
    assert "TRACELET_FLUSH_INTERVAL='soon'" in cli("doctor", code=2).stderr
    monkeypatch.delenv("TRACELET_FLUSH_INTERVAL")
    assert "backends='nope' (argument): unknown backend 'nope'" in cli("doctor", "--backends", "nope", code=2).stderr


class _StandInNVML(types.ModuleType):
    """The ``pynvml`` calls doctor makes, for a machine with two GPUs (this one has none)."""

    class NVMLError(Exception):
        pass

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.shut_down = False

    def nvmlInit(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:
        return f"NVIDIA H100 #{handle}"

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54"

    def nvmlShutdown(self) -> None:
        self.shut_down = True


def test_gpus_are_listed_with_the_driver(monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result]) -> None:
    nvml = _StandInNVML()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    report = json.loads(cli("doctor", "--backends", "aim", "--json").stdout)
    gpu = next(c for c in report["system"] if c["name"] == "gpu")
    assert gpu["level"] == "ok" and gpu["details"]["count"] == 2 and gpu["details"]["driver"] == "550.54"
    assert "NVIDIA H100 #1" in gpu["summary"] and nvml.shut_down


SECRET = "s3cret@Xyzzy42"  # an "@" too: percent-encoded in a URI
ENCODED = quote(SECRET, safe="")


class _BasicAuthMlflow(BaseHTTPRequestHandler):
    """The two calls doctor makes to an MLflow server, behind basic auth (alice / SECRET)."""

    expected = "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        if self.headers.get("Authorization") != self.expected:
            self._answer(401, b"You are not authenticated.", {"WWW-Authenticate": 'Basic realm="mlflow"'})
        elif self.path == "/health":
            self._answer(200, b"OK")
        elif self.path.startswith("/api/2.0/mlflow/experiments/search"):
            self._answer(200, b'{"experiments": []}')
        else:
            self._answer(404, b"")

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows stderr of failures
        pass


@pytest.fixture
def auth_server() -> Iterator[int]:
    """An MLflow stand-in on 127.0.0.1 that answers only with alice's password; yields its port."""
    _BasicAuthMlflow.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BasicAuthMlflow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize(
    "variables",
    [
        {"MLFLOW_TRACKING_URI": f"http://alice:{ENCODED}@127.0.0.1:{{port}}"},
        {"TRACELET_MLFLOW__TRACKING_URI": f"http://alice:{ENCODED}@127.0.0.1:{{port}}/"},
        {
            "MLFLOW_TRACKING_URI": "http://127.0.0.1:{port}",
            "MLFLOW_TRACKING_USERNAME": "alice",
            "MLFLOW_TRACKING_PASSWORD": SECRET,
        },
    ],
    ids=["sdk-variable", "tracelet-variable", "mlflow-credential-variables"],
)
def test_a_server_behind_basic_auth_is_called_with_the_credentials_and_never_shows_them(
    variables: dict[str, str], auth_server: int, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result]
) -> None:
    monkeypatch.setenv("TRACELET_BACKENDS", "mlflow")
    for name, value in variables.items():
        monkeypatch.setenv(name, value.format(port=auth_server))
    report = cli("doctor", "--json")
    (mlflow,) = json.loads(report.stdout)["backends"]
    assert mlflow["level"] == "ok", mlflow
    assert mlflow["summary"].startswith(f"http://127.0.0.1:{auth_server}") and mlflow["summary"].endswith(" answers")
    assert _BasicAuthMlflow.seen and all(auth == _BasicAuthMlflow.expected for _, auth in _BasicAuthMlflow.seen)
    table = cli("doctor")
    assert "Everything configured can work" in table.stdout
    for output in (report.stdout, report.stderr, table.stdout, table.stderr):
        assert "Xyzzy42" not in output  # neither the password nor its encoded form


def test_wrong_credentials_are_reported_without_showing_them(
    auth_server: int, tracelet: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    uri = f"http://alice:wrong-{ENCODED}@127.0.0.1:{auth_server}"
    done = tracelet("doctor", env={"TRACELET_BACKENDS": "mlflow", "MLFLOW_TRACKING_URI": uri})
    assert done.returncode == 1
    assert f"http://127.0.0.1:{auth_server} refuses the credentials given (HTTP 401)" in done.stdout
    assert "MLFLOW_TRACKING_PASSWORD" in done.stdout
    assert "Xyzzy42" not in done.stdout + done.stderr

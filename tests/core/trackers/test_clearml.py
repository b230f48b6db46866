"""The ClearML backend against the real SDK in offline mode, read back from the session folder.

No network: every test runs under a guard that refuses (and records) any connection or name
lookup that is not local, and fails the test if one was tried.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tracelet_core
from tests.support.clearml_reader import OfflineSession, read_session, session_folder
from tests.support.http_stub import always, closed_port, http_stub
from tracelet_core import errors
from tracelet_core.errors import BackendError, ErrorKind, TraceletWarning
from tracelet_core.events import ArtifactRef, Batch, MediaItem, MetricPoint, RunInfo
from tracelet_core.trackers.clearml.backend import ClearMLBackend
from tracelet_core.trackers.clearml.mapping import PARAMS_SECTION, RUN_ID_TAG, STATUS_PROPERTY, split_metric_key

pytest.importorskip("clearml")

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "", None}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Refuse and record every non-loopback connection or DNS lookup; fail the test if any was tried."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOCAL_HOSTS:
            attempts.append(address)
            raise OSError(f"network disabled in tests: {address!r}")
        return real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in LOCAL_HOSTS:
            attempts.append(("getaddrinfo", host))
            raise socket.gaierror(f"network disabled in tests: {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
    assert attempts == [], f"ClearML tried to reach the network: {attempts}"


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated ClearML environment in offline mode; returns CLEARML_CACHE_DIR."""
    cache = tmp_path / "clearml-cache"
    config = tmp_path / "clearml.conf"
    config.write_text("")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLEARML_OFFLINE_MODE", "1")
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(cache))
    monkeypatch.setenv("CLEARML_CONFIG_FILE", str(config))
    monkeypatch.setattr(errors, "_seen", set())  # warn_once state, per test
    return cache


def run_info(tmp_path: Path, **overrides: Any) -> RunInfo:
    fields: dict[str, Any] = {
        "run_id": "run-1",
        "experiment": "digits",
        "run_name": "baseline",
        "tags": {},
        "start_time": time.time(),
        "run_dir": str(tmp_path),
    }
    fields.update(overrides)
    return RunInfo(**fields)


def finished_session(cache_dir: Path, task_id: str) -> OfflineSession:
    return read_session(session_folder(cache_dir, task_id))


def test_importing_the_module_does_not_import_clearml() -> None:
    code = "import sys, tracelet_core.trackers.clearml.backend; sys.exit('clearml' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_capabilities_and_names() -> None:
    assert (ClearMLBackend.name, ClearMLBackend.sdk_module, ClearMLBackend.extra) == ("clearml",) * 3
    assert ClearMLBackend.capabilities.media == {"image", "histogram", "text"}
    assert ClearMLBackend.capabilities.artifacts
    ClearMLBackend.check_available()


@given(st.text(min_size=1, max_size=30))
def test_split_metric_key_keeps_the_whole_key(key: str) -> None:
    title, series = split_metric_key(key)
    assert title
    assert series
    assert (title, series) == (key, key) or f"{title}/{series}" == key
    assert "/" not in series or (title, series) == (key, key)


def test_every_scalar_point_comes_back(cache_dir: Path, tmp_path: Path) -> None:
    keys = {"train/loss": ("train", "loss"), "val_acc": ("val_acc", "val_acc"), "a/b/c": ("a/b", "c")}
    backend = ClearMLBackend({})
    run = run_info(tmp_path, start_time=1_000.0)
    task_id = backend.open(run, None)
    for start in range(0, 200, 25):  # 8 batches of 25 steps × 3 metrics
        points = [
            MetricPoint(key, i * 1_000 + step * 0.5, step, 1_000.0 + step)
            for step in range(start, start + 25)
            for i, key in enumerate(keys)
        ]
        backend.write(Batch(metrics=points))
    backend.write(Batch(metrics=[MetricPoint("system/cpu_percent", 12.5, None, 1_042.7)]))
    backend.close("FINISHED")

    scalars = finished_session(cache_dir, task_id).scalars()
    for i, (key, title_series) in enumerate(keys.items()):
        assert scalars[title_series] == [(step, i * 1_000 + step * 0.5) for step in range(200)], key
    # no step: plotted at whole seconds since the run started
    assert scalars[("system", "cpu_percent")] == [(42, 12.5)]


def test_redelivering_a_batch_changes_nothing_once_imported(cache_dir: Path, tmp_path: Path) -> None:
    batch = Batch(metrics=[MetricPoint("train/loss", 1.0 / (s + 1), s, 10.0 + s) for s in range(50)])
    backend = ClearMLBackend({})
    task_id = backend.open(run_info(tmp_path), None)
    backend.write(batch)
    backend.write(batch)  # the caller retried after a failure it could not attribute
    backend.close("FINISHED")

    session = finished_session(cache_dir, task_id)
    assert len(session.scalars()[("train", "loss")]) == 100  # the offline file keeps both copies
    assert session.latest_scalars() == {("train", "loss"): {s: 1.0 / (s + 1) for s in range(50)}}


def test_nan_and_inf_are_skipped_with_one_warning(cache_dir: Path, tmp_path: Path) -> None:
    backend = ClearMLBackend({})
    task_id = backend.open(run_info(tmp_path), None)
    values = [1.0, float("nan"), float("inf"), 2.0, float("-inf"), float("nan")]
    with pytest.warns(TraceletWarning, match="NaN and infinite") as caught:
        backend.write(Batch(metrics=[MetricPoint("loss", v, step, 0.0) for step, v in enumerate(values)]))
    backend.close("FINISHED")

    assert len([w for w in caught if issubclass(w.category, TraceletWarning)]) == 1
    assert finished_session(cache_dir, task_id).scalars()[("loss", "loss")] == [(0, 1.0), (3, 2.0)]


def test_params_tags_and_task_fields(cache_dir: Path, tmp_path: Path) -> None:
    backend = ClearMLBackend({"project": "vision-team", "task_type": "testing"})
    run = run_info(tmp_path, tags={"team": "vision", "baseline": "", "git.commit": "0123abcd"})
    task_id = backend.open(run, None)
    backend.write(Batch(params={"optimizer/lr": "0.001", "optimizer/betas": "[0.9, 0.99]", "epochs": "3"}))
    backend.write(Batch(params={"a": "1", "a/b": "2", "epochs": "4"}, tags={"team": "nlp", "env.torch": "2.13"}))
    backend.close("FINISHED")

    session = finished_session(cache_dir, task_id)
    assert (session.task["name"], session.task["project_name"], session.task["type"]) == (
        "baseline",
        "vision-team",
        "testing",
    )
    assert session.params(PARAMS_SECTION) == {
        "optimizer/lr": "0.001",
        "optimizer/betas": "[0.9, 0.99]",
        "epochs": "4",
        "a": "1",
        "a/b": "2",
    }
    assert sorted(session.tags) == ["baseline", "team:nlp"]  # git./env. stay properties only
    assert session.user_properties == {
        "team": "nlp",
        "baseline": "",
        "git.commit": "0123abcd",
        "env.torch": "2.13",
        STATUS_PROPERTY: "FINISHED",
    }


def test_task_name_defaults_to_the_run_id(cache_dir: Path, tmp_path: Path) -> None:
    backend = ClearMLBackend({})
    task_id = backend.open(run_info(tmp_path, run_name=None, run_id="r-77"), None)
    backend.close("FINISHED")
    session = finished_session(cache_dir, task_id)
    assert (session.task["name"], session.task["project_name"]) == ("r-77", "digits")


def test_artifacts_are_stored_under_their_tracelet_name(cache_dir: Path, tmp_path: Path) -> None:
    staged = tmp_path / "stage-9f2c.tmp"
    staged.write_text("lr: 0.001\n")
    ckpt = tmp_path / "epoch=1.ckpt"
    ckpt.write_bytes(b"\x00weights" * 100)
    backend = ClearMLBackend({})
    task_id = backend.open(run_info(tmp_path), None)
    backend.log_artifact(ArtifactRef(str(staged), "tracelet/config.yaml"))
    backend.log_artifact(ArtifactRef(str(ckpt), "checkpoints/epoch=1.ckpt", {"score": 0.91, "aliases": ["best"]}))
    with pytest.raises(BackendError, match="does not exist"):
        backend.log_artifact(ArtifactRef(str(tmp_path / "gone.bin"), "gone.bin"))
    backend.close("FINISHED")

    artifacts = finished_session(cache_dir, task_id).artifacts()
    assert set(artifacts) == {"tracelet/config.yaml", "checkpoints/epoch=1.ckpt"}
    config = artifacts["tracelet/config.yaml"]["path"]
    assert (config.name, config.read_text()) == ("config.yaml", "lr: 0.001\n")
    assert artifacts["checkpoints/epoch=1.ckpt"]["path"].read_bytes() == ckpt.read_bytes()
    assert artifacts["checkpoints/epoch=1.ckpt"]["metadata"] == {"score": "0.91", "aliases": '["best"]'}
    assert staged.exists()  # sources are never deleted
    assert ckpt.exists()


def test_images_histograms_and_texts(cache_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    image = tmp_path / "sample.png"
    Image.new("RGB", (4, 4), (255, 0, 0)).save(image)
    backend = ClearMLBackend({})
    task_id = backend.open(run_info(tmp_path, start_time=500.0), None)
    backend.log_media(MediaItem("image", "val/samples", 3, 503.0, path=str(image)))
    backend.log_media(MediaItem("image", "val/samples", 4, 504.0, path=str(image)))
    backend.log_media(MediaItem("image", "snapshot", None, 510.4, path=str(image)))
    histogram = {"bins": [0.0, 0.5, 1.0, 1.5], "counts": [3, 7, 2]}
    backend.log_media(MediaItem("histogram", "weights/layer1", 5, 505.0, data=histogram))
    backend.log_media(MediaItem("text", "notes", 6, 506.0, data={"text": "first epoch done"}))
    backend.close("FINISHED")

    session = finished_session(cache_dir, task_id)
    samples = {
        (e["metric"], e["variant"], e["iter"]): Path(e["url"]) for e in session.events_of("training_debug_image")
    }
    assert set(samples) == {
        ("val", "samples", 3),
        ("val", "samples", 4),
        ("snapshot", "snapshot", 10),
        ("notes", "notes", 6),
    }
    assert samples[("val", "samples", 3)] != samples[("val", "samples", 4)]  # history is not overwritten
    assert samples[("val", "samples", 4)].read_bytes() == image.read_bytes()
    assert samples[("notes", "notes", 6)].read_text() == "first epoch done"
    (plot,) = session.plots()
    assert (plot["metric"], plot["variant"], plot["iter"]) == ("weights", "layer1", 5)
    (bars,) = plot["figure"]["data"]
    assert bars["y"] == [3, 7, 2]
    assert [float(x) for x in bars["x"]] == [0.25, 0.75, 1.25]


@pytest.mark.parametrize("status", ["FINISHED", "FAILED", "KILLED"])
def test_close_records_the_status_quickly(cache_dir: Path, tmp_path: Path, status: Any) -> None:
    backend = ClearMLBackend({})
    task_id = backend.open(run_info(tmp_path), None)
    assert backend.location() == str(session_folder(cache_dir, task_id))
    backend.write(Batch(metrics=[MetricPoint("loss", float(s), s, 0.0) for s in range(100)]))
    started = time.perf_counter()
    backend.close(status)
    assert time.perf_counter() - started < 2.0
    backend.close(status)  # a retried close is harmless

    session = finished_session(cache_dir, task_id)
    assert session.user_properties[STATUS_PROPERTY] == status
    assert {"task.json", "metrics.jsonl"} <= session.zip_names()


def test_ten_thousand_scalars_close_without_hanging(cache_dir: Path, tmp_path: Path) -> None:
    backend = ClearMLBackend({})
    task_id = backend.open(run_info(tmp_path), None)
    started = time.perf_counter()
    for start in range(0, 10_000, 1_000):
        backend.write(
            Batch(metrics=[MetricPoint("train/loss", 1.0 / (s + 1), s, 0.0) for s in range(start, start + 1_000)])
        )
    # With ClearML's subprocess reporter (its Linux default) these writes take ~16 s and close ~6 s.
    assert time.perf_counter() - started < 5.0
    started = time.perf_counter()
    backend.close("FINISHED")
    assert time.perf_counter() - started < 2.0
    assert len(finished_session(cache_dir, task_id).scalars()[("train", "loss")]) == 10_000


def test_resume_continues_the_same_task_without_renumbering(cache_dir: Path, tmp_path: Path) -> None:
    run = run_info(tmp_path, tags={"team": "vision"})
    first = ClearMLBackend({})
    task_id = first.open(run, None)
    first.write(Batch(metrics=[MetricPoint("loss", float(s), s, 0.0) for s in range(10)], params={"lr": "0.1"}))
    first.close("KILLED")

    second = ClearMLBackend({})
    assert second.open(run, task_id) == task_id
    second.write(Batch(metrics=[MetricPoint("loss", float(s), s, 0.0) for s in range(10, 20)]))
    second.close("FINISHED")

    session = finished_session(cache_dir, task_id)
    assert session.scalars()[("loss", "loss")] == [(s, float(s)) for s in range(20)]
    assert session.params(PARAMS_SECTION) == {"lr": "0.1"}
    assert session.tags == ["team:vision"]
    assert session.user_properties[STATUS_PROPERTY] == "FINISHED"


def test_resume_of_a_missing_offline_session_starts_a_new_task(cache_dir: Path, tmp_path: Path) -> None:
    gone = "offline-0123456789abcdef0123456789abcdef"
    backend = ClearMLBackend({})
    with pytest.warns(TraceletWarning, match="new ClearML task"):
        task_id = backend.open(run_info(tmp_path), gone)
    backend.close("FINISHED")
    assert task_id != gone
    assert finished_session(cache_dir, task_id).task["name"] == "baseline"


def test_offline_option_beats_the_environment(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLEARML_OFFLINE_MODE")
    backend = ClearMLBackend({"offline": True})
    task_id = backend.open(run_info(tmp_path), None)
    backend.close("FINISHED")
    assert finished_session(cache_dir, task_id).task_id == task_id

    monkeypatch.setenv("CLEARML_OFFLINE_MODE", "1")
    with pytest.raises(BackendError, match="no server configured"):  # online, and no server set up
        ClearMLBackend({"offline": False}).open(run_info(tmp_path), None)


def test_bad_task_type_and_use_before_open(cache_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="TASK_TYPE='trainig'"):
        ClearMLBackend({"task_type": "trainig"}).open(run_info(tmp_path), None)
    with pytest.raises(BackendError, match="before open"):
        ClearMLBackend({}).write(Batch(params={"a": "1"}))


_DIES_AFTER_OPEN = """
import os, signal, time
from tracelet_core.trackers.clearml.backend import ClearMLBackend
from tracelet_core.events import Batch, MetricPoint, RunInfo

backend = ClearMLBackend({})
print(backend.open(RunInfo("run-1", "digits", "baseline", {}, time.time(), "."), None), flush=True)
backend.write(Batch(metrics=[MetricPoint("loss", float(s), s, 0.0) for s in range(5)]))
os.kill(os.getpid(), signal.SIGKILL)  # before the journal could record the task id
"""


def _python(code: str, online: bool = False, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new process. ClearML's ``set_offline`` leaves ``TRAINS_OFFLINE_MODE`` in this
    process's environment, so that is never passed on; an online one inherits no ClearML variable."""
    dropped = ("CLEARML_", "TRAINS_") if online else ("TRAINS_",)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    environ.update(PYTHONPATH=str(Path(tracelet_core.__file__).parents[1]), **env)
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=120)


def test_opening_again_finds_the_offline_session_of_a_delivery_process_that_died(
    cache_dir: Path, tmp_path: Path
) -> None:
    died = _python(_DIES_AFTER_OPEN)
    task_id = died.stdout.strip().splitlines()[-1]  # ClearML prints its own lines first
    assert task_id.startswith("offline-"), died.stderr
    other = ClearMLBackend({})
    other_id = other.open(run_info(tmp_path, run_id="run-2"), None)  # another run: another task
    other.close("FINISHED")

    backend = ClearMLBackend({})
    assert backend.open(run_info(tmp_path), None) == task_id
    backend.write(Batch(metrics=[MetricPoint("loss", float(s), s, 0.0) for s in range(5, 10)]))
    backend.close("FINISHED")
    session = finished_session(cache_dir, task_id)
    assert session.scalars()[("loss", "loss")] == [(s, float(s)) for s in range(10)]
    assert RUN_ID_TAG + "run-1" in session.task["system_tags"]
    assert other_id != task_id
    assert sorted(p.name for p in (cache_dir / "offline").iterdir() if p.is_dir()) == sorted([task_id, other_id])


def test_no_secret_from_the_command_line_or_environment_reaches_the_session(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py", "--api-key=SECRET1", "--lr", "0.1"])
    monkeypatch.setenv("SLURM_JOB_COMMENT", "password=SECRET2")
    monkeypatch.setenv("CLEARML_LOG_ENVIRONMENT", "*")  # a user's ClearML setting: log every variable
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-key")
    parser.add_argument("--lr")
    parser.parse_args()  # the training script parsed its arguments before Tracelet started
    backend = ClearMLBackend({})
    task_id = backend.open(run_info(tmp_path), None)
    backend.write(Batch(metrics=[MetricPoint("loss", 1.0, 1, 0.0)], params={"lr": "0.1"}))
    backend.close("FINISHED")

    session = finished_session(cache_dir, task_id)
    files = [p for p in cache_dir.rglob("*") if p.is_file()]
    contents = {str(p): p.read_bytes() for p in files if p.suffix != ".zip"}
    for archive in (p for p in files if p.suffix == ".zip"):
        with zipfile.ZipFile(archive) as opened:
            contents.update({f"{archive}:{name}": opened.read(name) for name in opened.namelist()})
    assert any(name.endswith("task.json") for name in contents) and session.params(PARAMS_SECTION) == {"lr": "0.1"}
    leaks = [(name, secret) for name, data in contents.items() for secret in (b"SECRET1", b"SECRET2") if secret in data]
    assert leaks == []


_OPEN_ONLINE = """
import json, time
from tracelet_core.trackers.clearml.backend import ClearMLBackend
from tracelet_core.events import RunInfo

backend = ClearMLBackend({"offline": False})
try:
    backend.open(RunInfo("run-1", "digits", "baseline", {}, time.time(), "."), None)
except Exception as exc:
    print(json.dumps([type(exc).__name__, str(exc), backend.classify_error(exc, "start").value]))
"""


def _online(tmp_path: Path, host: str) -> dict[str, str]:
    """The environment of a ClearML process talking to ``host`` on 127.0.0.1 with made-up credentials.

    No ClearML-side retries (240 by default: minutes against a closed port); Tracelet retries itself.
    """
    config = tmp_path / "clearml.conf"
    config.write_text("api { http { retries { total: 0, connect: 0, read: 0, redirect: 0, status: 0 } } }")
    env = dict.fromkeys(["CLEARML_API_HOST", "CLEARML_WEB_HOST", "CLEARML_FILES_HOST"], host)
    env.update(HOME=str(tmp_path), CLEARML_CONFIG_FILE=str(config), CLEARML_CACHE_DIR=str(tmp_path / "cache"))
    return env | {"CLEARML_API_ACCESS_KEY": "K" * 20, "CLEARML_API_SECRET_KEY": "S" * 40}


@pytest.mark.slow
def test_online_start_errors_are_classified(tmp_path: Path) -> None:
    """Each in its own process: ClearML reads its configuration once per process."""

    def start(host: str) -> list[str]:
        done = _python(_OPEN_ONLINE, online=True, **_online(tmp_path, host))
        assert done.stdout, done.stderr
        return list(json.loads(done.stdout.strip().splitlines()[-1]))

    refused = {"meta": {"result_code": 401, "result_msg": "Unauthorized (invalid credentials)"}}
    with http_stub(always(401, refused)) as url:
        assert start(url)[::2] == ["LoginError", "configuration"]
    started = time.monotonic()
    assert start(f"http://127.0.0.1:{closed_port()}")[::2] == ["LoginError", "transient"]
    assert time.monotonic() - started < 30


_FIND_ONLINE = """
import time
from clearml import Task
from tracelet_core.trackers.clearml.backend import ClearMLBackend
from tracelet_core.events import RunInfo

backend = ClearMLBackend({"offline": False})
backend._offline = False
for run_id in ("run-1", "run-2"):
    print(backend._tagged_task(Task, "digits", RunInfo(run_id, "digits", None, {}, time.time(), ".")))
"""


def _clearml_server(method: str, path: str, body: bytes) -> tuple[int, object]:
    """The three calls of ClearML's task lookup: log in, find the project, find tasks by system tag."""
    action = path.split("?")[0].rsplit("/", 1)[-1]
    claims = {"exp": int(time.time()) + 3600, "iat": int(time.time()), "identity": {"user": "u", "company": "c"}}
    header = {"alg": "HS256", "typ": "JWT"}  # ClearML reads the token's expiry; nothing checks the signature
    token = [base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=") for part in (header, claims)]
    data: dict[str, object] = {
        "auth.login": {"token": ".".join([*token, "c2ln"])},
        "projects.get_all": {"projects": [{"id": "project-1", "name": "digits"}]},
        "tasks.get_all": {"tasks": [{"id": "task-1"}] if RUN_ID_TAG + "run-1" in body.decode() else []},
    }
    return 200, {"meta": {"result_code": 200, "result_msg": "OK"}, "data": data.get(action, {})}


@pytest.mark.slow
def test_online_lookup_asks_the_server_for_the_task_tagged_with_the_run_id(tmp_path: Path) -> None:
    with http_stub(_clearml_server) as url:
        done = _python(_FIND_ONLINE, online=True, **_online(tmp_path, url))
    assert done.stdout.split() == ["task-1", "None"], done.stderr


def test_errors_are_classified(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clearml.backend_api.session.callresult import CallResult
    from clearml.backend_api.session.response import ResponseMeta
    from clearml.backend_interface.session import SendError

    backend = ClearMLBackend({})
    with pytest.raises(BackendError) as bad_type:
        ClearMLBackend({"task_type": "trainig"}).open(run_info(tmp_path), None)
    monkeypatch.delenv("CLEARML_OFFLINE_MODE")
    with pytest.raises(BackendError) as no_server:
        ClearMLBackend({"offline": False}).open(run_info(tmp_path), None)
    task_id = backend.open(run_info(tmp_path), None)
    with pytest.raises(BackendError) as gone:
        backend.log_artifact(ArtifactRef(str(tmp_path / "gone.bin"), "gone.bin"))
    backend.close("FINISHED")
    assert task_id.startswith("offline-")

    def sent(status: int) -> SendError:  # what ClearML raises for a request the server answered with `status`
        return SendError(CallResult(meta=ResponseMeta.from_raw_data(status_code=status, text="refused")), "failed")

    kinds = {
        "unknown task type": backend.classify_error(bad_type.value, "start"),
        "no server configured": backend.classify_error(no_server.value, "start"),
        "artifact file gone": backend.classify_error(gone.value, "artifact"),
        "403": backend.classify_error(sent(403), "batch"),
        "400": backend.classify_error(sent(400), "batch"),
        "500": backend.classify_error(sent(500), "batch"),
        "connection": backend.classify_error(ConnectionError("refused"), "batch"),
    }
    assert kinds == {
        "unknown task type": ErrorKind.CONFIGURATION,
        "no server configured": ErrorKind.CONFIGURATION,
        "artifact file gone": ErrorKind.PERMANENT,
        "403": ErrorKind.CONFIGURATION,
        "400": ErrorKind.PERMANENT,
        "500": ErrorKind.TRANSIENT,
        "connection": ErrorKind.TRANSIENT,
    }

"""The MLflow backend against real stores: SQLite, and `mlflow server` on 127.0.0.1 (stopped and restarted)."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

import tracelet_core
from tests.support.http_stub import always, closed_port, http_stub
from tests.support.mlflow_server import MlflowServer
from tracelet_core.errors import ErrorKind, TrackerConfigurationError
from tracelet_core.events import ArtifactRef, Batch, MediaItem, MetricPoint, RunInfo
from tracelet_core.trackers.mlflow.backend import MlflowBackend

PERMANENT, TRANSIENT, CONFIGURATION = ErrorKind.PERMANENT, ErrorKind.TRANSIENT, ErrorKind.CONFIGURATION


@pytest.fixture(autouse=True)
def _as_in_the_delivery_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend runs in Tracelet's delivery process, which turns MLflow's own request retries off."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


def test_the_delivery_process_turns_mlflows_retries_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT")
    MlflowBackend.prepare_delivery_process({"http_timeout": 7})
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0" and os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"


def _info(tmp_path: Path, run_id: str = "r1") -> RunInfo:
    return RunInfo(run_id, "exp", "my-run", {"team": "vision"}, time.time(), str(tmp_path))


def test_backend_writes_what_mlflow_reads_back(mlflow_uri: str, tmp_path: Path) -> None:
    backend = MlflowBackend({"tracking_uri": mlflow_uri})
    native = backend.open(_info(tmp_path), None)
    points = [MetricPoint("train/loss", 1.0 / (s + 1), s, 1000.0 + s) for s in range(2500)]
    backend.write(Batch(metrics=points, params={f"p{i}": str(i) for i in range(250)}, tags={"stage": "a"}))
    backend.write(Batch(metrics=points[:10]))  # re-delivery after a failure: no duplicates
    (tmp_path / "weights.bin").write_bytes(b"\x00" * 10)
    backend.log_artifact(ArtifactRef(str(tmp_path / "weights.bin"), "models/best.bin", {"score": 0.9}))
    backend.close("FINISHED")

    client = MlflowClient(mlflow_uri)
    run = client.get_run(native)
    history = client.get_metric_history(native, "train/loss")
    assert [(m.step, m.value) for m in history] == [(p.step, p.value) for p in points]
    assert len(run.data.params) == 250
    assert run.data.tags["team"] == "vision" and run.data.tags["stage"] == "a"
    assert run.data.tags["tracelet.run_id"] == "r1"
    assert not any(key.startswith("tracelet.artifact") for key in run.data.tags)  # metadata: one JSON file
    index = json.loads(Path(client.download_artifacts(native, "checkpoints/index.json")).read_text())
    assert index == {"checkpoints": {"models/best.bin": {"score": 0.9}}}
    assert run.info.run_name == "my-run"
    assert run.info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(native, "models")] == ["models/best.bin"]


def test_resume_reopens_the_same_run(mlflow_uri: str, tmp_path: Path) -> None:
    first = MlflowBackend({"tracking_uri": mlflow_uri})
    native = first.open(_info(tmp_path), None)
    first.write(Batch(metrics=[MetricPoint("x", 1.0, 1, 1.0)], params={"lr": "0.1"}))
    first.close("KILLED")
    second = MlflowBackend({"tracking_uri": mlflow_uri})
    assert second.open(_info(tmp_path), native) == native
    with pytest.warns(tracelet_core.TraceletWarning, match="params cannot change"):
        second.write(Batch(metrics=[MetricPoint("x", 2.0, 2, 2.0)], params={"lr": "0.2"}))
    second.close("FINISHED")
    client = MlflowClient(mlflow_uri)
    assert [m.step for m in client.get_metric_history(native, "x")] == [1, 2]
    assert client.get_run(native).data.params["lr"] == "0.1"
    assert client.get_run(native).info.status == "FINISHED"


def test_media(mlflow_uri: str, tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    image_path = tmp_path / "img.png"
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(image_path)
    backend = MlflowBackend({"tracking_uri": mlflow_uri})
    native = backend.open(_info(tmp_path), None)
    backend.log_media(MediaItem("image", "samples", 3, 1.0, str(image_path)))
    backend.log_media(MediaItem("text", "notes", 1, 1.0, None, {"text": "hello"}))
    with pytest.warns(tracelet_core.TraceletWarning, match="no native histogram"):
        backend.log_media(MediaItem("histogram", "w", 1, 1.0, None, {"bins": [0, 1], "counts": [3]}))
    backend.close("FINISHED")
    client = MlflowClient(mlflow_uri)
    names = {a.path for a in client.list_artifacts(native, "tracelet/text")}
    assert names == {"tracelet/text/notes-step000000001.txt"}
    assert any(a.path == "images" for a in client.list_artifacts(native))
    assert client.list_artifacts(native, "tracelet/media/w")


def test_bad_input_is_sanitised_once_and_nothing_else_is_lost(mlflow_uri: str) -> None:
    import torch

    with pytest.warns(tracelet_core.TraceletWarning) as caught:
        run = tracelet_core.start_logging("bad-input", backends=["mlflow"])
        run.log_params(
            {
                "long": "x" * 10_000,
                "nested": {"deep": {"er": [1, 2]}},
                "path": Path("/tmp"),
                "fn": len,
                "bad key?": 1,
                "ünïcode key": "ok",
            }
        )
        for step in range(3):
            run.log_metrics(
                {
                    "loss": float("nan") if step == 1 else 0.5,
                    "inf": float("inf"),
                    "tensor": torch.tensor(0.25),
                    "string": "0.75",
                    "text": "not a number",
                    "none": None,
                    "with space": 1.0,
                    "weird@key#1": 2.0,
                    "a//b/": 3.0,
                },
                step=step,
            )
        report = run.finish()
    assert report.complete
    messages = [str(w.message) for w in caught]
    assert sum("'text'" in m for m in messages) == 1
    assert sum("'none'" in m for m in messages) == 1
    assert sum("weird@key#1" in m for m in messages) == 1
    assert any("6000 characters" in m for m in messages)

    client = MlflowClient(mlflow_uri)
    native = run.backend_run_ids["mlflow"]
    data = client.get_run(native).data
    assert [m.step for m in client.get_metric_history(native, "loss")] == [0, 1, 2]
    assert math.isnan(client.get_metric_history(native, "loss")[1].value)
    assert client.get_metric_history(native, "inf")[0].value > 1e300
    assert [m.value for m in client.get_metric_history(native, "tensor")] == [0.25] * 3
    assert [m.value for m in client.get_metric_history(native, "string")] == [0.75] * 3
    assert "text" not in data.metrics and "none" not in data.metrics
    assert {"with space", "weird_key_1", "a/b"} <= set(data.metrics)
    assert len(data.params["long"]) == 6000 and data.params["long"].endswith("chars]")
    assert data.params["nested/deep/er"] == "[1, 2]"
    assert data.params["fn"] == "builtins.len"
    assert data.params["bad key_"] == "1"
    assert data.params["ünïcode key"] == "ok"
    config = Path(client.download_artifacts(native, "tracelet/config.yaml")).read_text()
    assert "x" * 10_000 in config  # the full value survives in the config artifact


def _raised(call: Callable[[], object]) -> Exception:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - any error: its classification is under test
        call()
    return caught.value


def test_open_without_native_id_continues_the_run_tagged_with_the_tracelet_run_id(
    mlflow_uri: str, tmp_path: Path
) -> None:
    """The delivery process died after MLflow created the run, before the journal recorded its id."""
    first = MlflowBackend({"tracking_uri": mlflow_uri})
    native = first.open(_info(tmp_path), None)
    first.write(Batch(metrics=[MetricPoint("x", 1.0, 1, 1.0)], params={"lr": "0.1"}))
    second = MlflowBackend({"tracking_uri": mlflow_uri})
    assert second.open(_info(tmp_path), None) == native
    with pytest.warns(tracelet_core.TraceletWarning, match="params cannot change"):  # it knows the params
        second.write(Batch(metrics=[MetricPoint("x", 2.0, 2, 2.0)], params={"lr": "0.2"}))
    second.close("FINISHED")
    other = MlflowBackend({"tracking_uri": mlflow_uri})
    other_native = other.open(_info(tmp_path, run_id="r2"), None)
    other.close("FINISHED")

    client = MlflowClient(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("exp").experiment_id])
    assert sorted(r.info.run_id for r in runs) == sorted([native, other_native])
    assert [m.step for m in client.get_metric_history(native, "x")] == [1, 2]
    assert client.get_run(native).info.status == "FINISHED"


def test_a_deleted_run_is_not_continued(mlflow_uri: str, tmp_path: Path) -> None:
    first = MlflowBackend({"tracking_uri": mlflow_uri})
    native = first.open(_info(tmp_path), None)
    MlflowClient(mlflow_uri).delete_run(native)
    with pytest.warns(tracelet_core.TraceletWarning, match="continues the run in a new MLflow run"):
        resumed = MlflowBackend({"tracking_uri": mlflow_uri}).open(_info(tmp_path), native)
    assert resumed != native
    assert MlflowBackend({"tracking_uri": mlflow_uri}).open(_info(tmp_path), None) == resumed  # by its tag


def test_errors_of_a_sqlite_store_are_classified(mlflow_uri: str, tmp_path: Path) -> None:
    backend = MlflowBackend({"tracking_uri": mlflow_uri})
    native = backend.open(_info(tmp_path), None)
    client = MlflowClient(mlflow_uri)
    client.log_param(native, "lr", "0.1")
    (tmp_path / "f.bin").write_bytes(b"x")
    refused = {
        "key over 250 characters": _raised(lambda: client.log_batch(native, metrics=[Metric("k" * 300, 1.0, 0, 0)])),
        "param changed": _raised(lambda: client.log_batch(native, params=[Param("lr", "0.2")])),
        "artifact outside the run": _raised(
            lambda: backend.log_artifact(ArtifactRef(str(tmp_path / "f.bin"), "../outside.bin"))
        ),
        "artifact file gone": _raised(lambda: backend.log_artifact(ArtifactRef(str(tmp_path / "gone"), "gone"))),
    }
    assert {what: backend.classify_error(exc, "batch") for what, exc in refused.items()} == dict.fromkeys(
        refused, PERMANENT
    )

    client.delete_run(native)
    deleted_run = _raised(lambda: backend.write(Batch(metrics=[MetricPoint("x", 1.0, 1, 1.0)])))
    assert backend.classify_error(deleted_run, "batch") is CONFIGURATION  # every later event would fail too
    client.delete_experiment(client.get_experiment_by_name("exp").experiment_id)
    reopened = MlflowBackend({"tracking_uri": mlflow_uri})
    deleted_experiment = _raised(lambda: reopened.open(_info(tmp_path, run_id="r2"), None))
    assert isinstance(deleted_experiment, TrackerConfigurationError)
    assert "is deleted" in str(deleted_experiment)
    assert reopened.classify_error(deleted_experiment, "start") is CONFIGURATION


def test_a_locked_sqlite_store_is_transient(mlflow_uri: str, tmp_path: Path) -> None:
    import sqlalchemy
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    backend = MlflowBackend({"tracking_uri": mlflow_uri})
    backend.open(_info(tmp_path), None)
    batch = Batch(metrics=[MetricPoint("x", 1.0, 1, 1.0)])

    def wait_less(conn: object, cursor: Any, statement: str, *args: object) -> None:
        # MLflow sets a 20 s busy timeout on every session; 0.1 s shows the same error sooner.
        if statement.startswith("PRAGMA busy_timeout"):
            cursor.execute("PRAGMA busy_timeout = 100")

    engine = SqlAlchemyStore._engine_map[mlflow_uri]
    sqlalchemy.event.listen(engine, "after_cursor_execute", wait_less)
    holder = sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # another process writing a long transaction
        locked = _raised(lambda: backend.write(batch))
        holder.execute("ROLLBACK")
    finally:
        holder.close()
        sqlalchemy.event.remove(engine, "after_cursor_execute", wait_less)
    assert isinstance(locked, MlflowException)
    assert "database is locked" in str(locked)
    assert backend.classify_error(locked, "batch") is TRANSIENT
    backend.write(batch)  # the retry goes through once the lock is gone
    backend.close("FINISHED")


_AUTH_APP_401 = (  # what MLflow's basic-auth app answers without (or with wrong) credentials
    "You are not authenticated. Please see https://www.mlflow.org/docs/latest/auth/index.html"
    "#authenticating-to-mlflow on how to authenticate."
)


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, _AUTH_APP_401, CONFIGURATION),
        (403, "Permission denied", CONFIGURATION),
        (404, "Not Found", CONFIGURATION),  # not an MLflow server, or a wrong path prefix
        (400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "bad"}, PERMANENT),
        (429, "Too Many Requests", TRANSIENT),
        (500, {"error_code": "INTERNAL_ERROR", "message": "boom"}, TRANSIENT),
        (502, "Bad Gateway", TRANSIENT),
        (503, "Service Unavailable", TRANSIENT),
    ],
)
def test_http_refusals_are_classified(tmp_path: Path, status: int, body: object, kind: ErrorKind) -> None:
    with http_stub(always(status, body)) as url:
        backend = MlflowBackend({"tracking_uri": url})
        refused = _raised(lambda: backend.open(_info(tmp_path), None))
    assert isinstance(refused, MlflowException)
    assert backend.classify_error(refused, "start") is kind


def test_unreachable_or_malformed_tracking_uris(tmp_path: Path) -> None:
    unreachable = MlflowBackend({"tracking_uri": f"http://127.0.0.1:{closed_port()}"})
    started = time.monotonic()
    refused = _raised(lambda: unreachable.open(_info(tmp_path), None))
    assert time.monotonic() - started < 10  # no MLflow-side retries
    assert unreachable.classify_error(refused, "start") is TRANSIENT
    bad_port = MlflowBackend({"tracking_uri": "http://127.0.0.1:99999"})
    assert bad_port.classify_error(_raised(lambda: bad_port.open(_info(tmp_path), None)), "start") is CONFIGURATION
    unknown = MlflowBackend({"tracking_uri": "nosuchscheme://x"})
    assert unknown.classify_error(_raised(lambda: unknown.open(_info(tmp_path), None)), "start") is not TRANSIENT


def test_remote_experiment_created_meanwhile_and_location_without_credentials(tmp_path: Path) -> None:
    """Another run creates the experiment between our lookup and our create; the URI holds a password."""
    calls: list[str] = []
    experiment = {"experiment_id": "7", "name": "exp", "artifact_location": "x", "lifecycle_stage": "active"}
    run_info = {"run_id": "a" * 32, "experiment_id": "7", "status": "RUNNING", "lifecycle_stage": "active"}

    def server(method: str, path: str, body: bytes) -> tuple[int, object]:
        calls.append(path.split("/mlflow/", 1)[-1].split("?")[0])
        if calls[-1] == "experiments/get-by-name":
            found = calls.count("experiments/create") > 0
            return (200, {"experiment": experiment}) if found else (404, {"error_code": "RESOURCE_DOES_NOT_EXIST"})
        if calls[-1] == "experiments/create":
            return 400, {"error_code": "RESOURCE_ALREADY_EXISTS", "message": "Experiment(name=exp) already exists."}
        if calls[-1] == "runs/search":
            return 200, {}
        if calls[-1] == "runs/create":
            return 200, {"run": {"info": run_info, "data": {}}}
        return 404, "Not Found"

    with http_stub(server) as url:
        backend = MlflowBackend({"tracking_uri": url.replace("http://", "http://user:PASSWORD@")})
        assert backend.open(_info(tmp_path), None) == "a" * 32
        assert backend.location() == url
    assert calls == [
        "experiments/get-by-name",
        "experiments/create",
        "experiments/get-by-name",
        "runs/search",
        "runs/create",
    ]


_SWEEP_RUN = """
import sys, time
from tracelet_core.trackers.mlflow.backend import MlflowBackend
from tracelet_core.events import Batch, MetricPoint, RunInfo

uri, index = sys.argv[1], sys.argv[2]
backend = MlflowBackend({"tracking_uri": uri})
backend.open(RunInfo(f"run-{index}", "sweep", f"trial-{index}", {}, time.time(), "."), None)
backend.write(Batch(metrics=[MetricPoint("loss", 1.0 / (s + 1), s, 1000.0 + s) for s in range(300)]))
backend.close("FINISHED")
"""


@pytest.mark.slow
def test_eight_runs_starting_at_once_on_a_new_sqlite_store(tmp_path: Path) -> None:
    """Without the store lock they race through MLflow's migrations (`_alembic_tmp_params already exists`)."""
    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"  # not copied from the template: really new
    env = dict(os.environ, PYTHONPATH=str(Path(tracelet_core.__file__).parents[1]), MLFLOW_DISABLE_TELEMETRY="true")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SWEEP_RUN, uri, str(i)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(8)
    ]
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 8, "\n".join(outputs)
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("sweep").experiment_id])
    assert sorted(r.data.tags["tracelet.run_id"] for r in runs) == [f"run-{i}" for i in range(8)]
    for run in runs:
        assert len(client.get_metric_history(run.info.run_id, "loss")) == 300
        assert run.info.status == "FINISHED"


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> MlflowServer:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server")).start()
    yield server
    server.stop()


@pytest.mark.server
@pytest.mark.slow
def test_against_a_server_stopped_and_restarted_mid_run(mlflow_server: MlflowServer, tmp_path: Path) -> None:
    """The server goes away mid-run and comes back: training never waits, every point arrives once."""
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time, tracelet_core
            run = tracelet_core.start_logging("server-restart", backends=["mlflow"], max_retry_backoff=1.0,
                                              finish_timeout=90)
            for step in range(300):
                run.log_metrics({"a": step, "b": -step}, step=step)
                if step == 100:
                    print("half", flush=True)
                    sys.stdin.readline()  # the test stops the server here, then lets training go on
                time.sleep(0.01)
            print("trained", flush=True)
            report = run.finish()
            print(report.summary(), flush=True)
            print("native", run.backend_run_ids["mlflow"], flush=True)
            """
        )
    )
    env = dict(os.environ, MLFLOW_TRACKING_URI=mlflow_server.url)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    )
    assert proc.stdin is not None and proc.stdout is not None
    assert proc.stdout.readline().strip() == "half"
    time.sleep(1.0)  # let the first points reach the server
    mlflow_server.stop()
    started = time.monotonic()
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "trained"
    assert time.monotonic() - started < 20  # 200 steps of 10 ms: the outage did not slow training
    mlflow_server.start()
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, output
    assert "mlflow" in output and "delivered" in output
    native = output.split("native", 1)[1].split()[0]
    client = MlflowClient(mlflow_server.url)
    for key, sign in (("a", 1), ("b", -1)):
        history = client.get_metric_history(native, key)
        assert sorted((m.step, m.value) for m in history) == [(s, float(sign * s)) for s in range(300)]
    assert client.get_run(native).info.status == "FINISHED"
    delivery_log = next((tmp_path / ".tracelet").glob("server-restart/*/delivery.log")).read_text()
    assert "delivery failed" in delivery_log  # the outage was real, and retried


def _wait_for_status(client: MlflowClient, experiment: str, status: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        exp = client.get_experiment_by_name(experiment)
        runs = client.search_runs([exp.experiment_id]) if exp else []
        if runs and runs[0].info.status == status:
            return str(runs[0].info.run_id)
        time.sleep(0.5)
    raise AssertionError(f"no {status} run in {experiment} after {timeout}s")


@pytest.mark.slow
def test_sigkilled_trainer_still_delivers_and_ends_killed(mlflow_uri: str, tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, signal, tracelet_core
            run = tracelet_core.start_logging("killed", backends=["mlflow"])
            for step in range(500):
                run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
            run.flush()  # everything is journaled
            os.kill(os.getpid(), signal.SIGKILL)
            """
        )
    )
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, timeout=120, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL
    client = MlflowClient(mlflow_uri)
    native = _wait_for_status(client, "killed", "KILLED")
    assert [m.step for m in client.get_metric_history(native, "loss")] == list(range(500))


@pytest.mark.slow
def test_delivery_process_gives_up_on_an_unreachable_tracker_after_the_trainer_exits(tmp_path: Path) -> None:
    """`python train.py | tee log` must end with training; the delivery process stops retrying after give_up_after."""
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import tracelet_core
            run = tracelet_core.start_logging("down", backends=["mlflow"], finish_timeout=1, give_up_after=2,
                                              max_retry_backoff=0.5)
            run.log_metric("x", 1.0, step=1)
            print(run.finish().summary())
            """
        )
    )
    env = dict(os.environ, MLFLOW_TRACKING_URI="http://127.0.0.1:9")  # nothing listens on the discard port
    started = time.monotonic()
    proc = subprocess.run(
        f"{sys.executable} {script} | cat",
        shell=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert time.monotonic() - started < 30  # the pipe closed when the trainer exited
    assert "undelivered" in proc.stdout + proc.stderr
    log = next((tmp_path / ".tracelet").glob("down/*/delivery.log"))
    deadline = time.monotonic() + 30
    while "giving up" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "giving up" in log.read_text()


def test_a_continued_run_extends_its_checkpoint_index(mlflow_uri: str, tmp_path: Path) -> None:
    weights = tmp_path / "w.ckpt"
    weights.write_bytes(b"\x00")
    first = MlflowBackend({"tracking_uri": mlflow_uri})
    native = first.open(_info(tmp_path), None)
    first.log_artifact(ArtifactRef(str(weights), "checkpoints/a.ckpt", {"epoch": 0, "aliases": ["best", "last"]}))
    first.close("KILLED")
    again = MlflowBackend({"tracking_uri": mlflow_uri})
    assert again.open(_info(tmp_path), native) == native
    again.log_artifact(ArtifactRef(str(weights), "checkpoints/b.ckpt", {"epoch": 1, "aliases": ["last"]}))
    again.close("FINISHED")

    local = MlflowClient(mlflow_uri).download_artifacts(native, "checkpoints/index.json", str(tmp_path))
    index = json.loads(Path(local).read_text())["checkpoints"]
    assert index == {
        "checkpoints/a.ckpt": {"epoch": 0, "aliases": ["best"]},  # "last" moved to the newer checkpoint
        "checkpoints/b.ckpt": {"epoch": 1, "aliases": ["last"]},
    }

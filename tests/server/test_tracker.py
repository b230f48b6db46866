"""The ``tracelet`` tracker against a real server (uvicorn on 127.0.0.1, a subprocess): a run sent to it
and to MLflow at once is read back through the REST API point by point, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import tracelet_core
from tests.server.conftest import ServerProcess
from tracelet_core.client import TraceletClient
from tracelet_core.pipeline.files import JOURNAL_FILENAME
from tracelet_core.trackers.store import open_reader
from tracelet_core.trackers.tracelet.doctor import check

pytestmark = [pytest.mark.server, pytest.mark.slow]

STEPS = 300
KEYS = ("train/loss", "val/acc", "odd")


def _value(key: str, step: int) -> float:
    if key == "odd":
        return [math.nan, math.inf, -math.inf, 0.5][step % 4]
    return 1.0 / (step + 1) if key == "train/loss" else step / STEPS


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _log_steps(run: tracelet_core.Run, steps: range) -> None:
    for step in steps:
        run.log_metrics({key: _value(key, step) for key in KEYS}, step=step)


def _check_points(client: TraceletClient, run_id: str, steps: int = STEPS) -> None:
    for key in KEYS:
        points = client.history(run_id, key)["points"]
        assert [p[0] for p in points] == list(range(steps)), key
        got = [float(v.replace("Infinity", "inf")) if isinstance(v, str) else v for _, _, v in points]
        assert all(_same(g, _value(key, s)) for s, g in enumerate(got)), key


def test_a_run_sent_to_tracelet_and_mlflow_reads_back_point_by_point(
    store_url: str, mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ServerProcess(store_url, tmp_path, token="t0ken").start()
    try:
        monkeypatch.setenv("TRACELET_TRACELET__URL", server.url)
        monkeypatch.setenv("TRACELET_TRACELET__TOKEN", "t0ken")
        run = tracelet_core.start_logging("server-e2e", backends=["tracelet", "mlflow"], run_name="e2e")
        run.log_params({"optimizer": {"lr": 0.01}, "seed": 7})
        run.set_tags({"team": "vision"})
        _log_steps(run, range(STEPS))
        report = run.finish("FINISHED", timeout=120)
        assert report.complete, report.summary()
        assert run.backend_run_ids["tracelet"] == run.id

        with TraceletClient(server.url, token="t0ken") as client:
            detail = client.get_run(run.id)
            assert detail["status"] == "FINISHED" and detail["end_time"] is not None
            assert (detail["experiment"], detail["name"]) == ("server-e2e", "e2e")
            assert detail["params"] == {"optimizer/lr": "0.01", "seed": "7"}
            assert detail["tags"]["team"] == "vision"
            assert "mlflow" in detail["deliveries"]
            assert {k: m["count"] for k, m in detail["metrics"].items()} == dict.fromkeys(KEYS, STEPS)
            _check_points(client, run.id)
            found = list(client.search_runs("experiment=server-e2e status=FINISHED param.seed=7"))
            assert [r["id"] for r in found] == [run.id]

        mlflow = MlflowClient(mlflow_uri)
        native = run.backend_run_ids["mlflow"]
        expected = sorted((m.step, m.value) for m in mlflow.get_metric_history(native, "train/loss"))
        monkeypatch.setenv("TRACELET_TRACELET__TOKEN", "t0ken")
        with open_reader(f"tracelet:{server.url}") as reader:
            (source,) = reader.list_runs(["server-e2e"])
            record = reader.read_run(source, tmp_path)
        assert sorted((p.step, p.value) for p in record.metrics if p.key == "train/loss") == expected
        assert record.status == "FINISHED" and record.params["seed"] == "7"
        journal = next(Path(".tracelet").glob(f"*/{run.id}/{JOURNAL_FILENAME}")).read_bytes()
        assert b"t0ken" not in journal  # the token reaches delivery through the environment only
        assert check({"url": server.url, "token": "t0ken"}).level == "ok"
        refused = check({"url": server.url, "token": "wrong"})
        assert refused.level == "error" and "TRACELET_TRACELET__TOKEN" in (refused.fix or "")
    finally:
        server.stop()
    down = check({"url": server.url, "token": "t0ken"})
    assert down.level == "error" and "does not answer" in down.summary


def test_a_server_restart_mid_run_loses_and_duplicates_nothing(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ServerProcess(sqlite_url, tmp_path).start()
    monkeypatch.setenv("TRACELET_TRACELET__URL", server.url)
    monkeypatch.setenv("TRACELET_MAX_RETRY_BACKOFF", "0.5")
    try:
        run = tracelet_core.start_logging("restart", backends=["tracelet"])
        _log_steps(run, range(STEPS // 2))
        run.flush()
        server.stop()
        _log_steps(run, range(STEPS // 2, STEPS))
        run.flush()
        server.start()
        report = run.finish("FINISHED", timeout=120)
        assert report.complete, report.summary()
        with TraceletClient(server.url) as client:
            _check_points(client, run.id)
            assert client.get_run(run.id)["status"] == "FINISHED"
    finally:
        server.stop()


def test_a_websocket_subscriber_sees_the_points_of_a_running_run_arrive(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from websockets.sync.client import connect

    server = ServerProcess(sqlite_url, tmp_path).start()
    monkeypatch.setenv("TRACELET_TRACELET__URL", server.url)
    try:
        run = tracelet_core.start_logging("live", backends=["tracelet"])
        with connect(f"ws://127.0.0.1:{server.port}/api/v1/stream", open_timeout=10) as socket:
            socket.send(json.dumps({"runs": [run.id], "keys": ["train/loss"], "after": 0}))
            seen: list[int] = []
            for step in range(20):
                run.log_metric("train/loss", 1.0 / (step + 1), step=step)
            run.flush()
            while len(seen) < 20:
                message = json.loads(socket.recv(timeout=30))
                seen += [point[3] for point in message["points"]]
            assert seen == list(range(20))
            assert run.status == "RUNNING"  # the points arrived while the run was still going
        run.finish("FINISHED", timeout=60)
    finally:
        server.stop()

"""The live stream: a WebSocket subscriber gets what is stored, then new points as they are ingested,
each once, and a reconnecting subscriber gets exactly what it missed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tracelet_core.server.app import create_app


def _ingest(api: TestClient, run_id: str, key: str, steps: range) -> None:
    points = [{"key": key, "step": s, "ts": 1_700_000_000.0 + s, "value": s * 1.0} for s in steps]
    assert api.post(f"/api/v1/runs/{run_id}/batches", json={"metrics": points}).status_code == 200


def _receive_until(socket: Any, count: int) -> list[list[Any]]:
    received: list[list[Any]] = []
    while len(received) < count:
        message = socket.receive_json()
        assert message["type"] == "points"
        received += message["points"]
    return received


def test_a_subscriber_gets_stored_then_live_points_and_resumes(api: TestClient) -> None:
    for run_id in ("r1", "r2"):
        api.put(f"/api/v1/runs/{run_id}", json={"experiment": "e", "start_time": 1.0})
    _ingest(api, "r1", "loss", range(5))
    _ingest(api, "r2", "loss", range(3))
    with api.websocket_connect("/api/v1/stream") as socket:
        socket.send_json({"runs": ["r1"], "keys": ["loss"], "after": 0})
        stored = _receive_until(socket, 5)
        assert [(p[1], p[3]) for p in stored] == [("r1", s) for s in range(5)]
        _ingest(api, "r2", "loss", range(3, 6))  # not followed
        _ingest(api, "r1", "acc", range(2))  # not followed
        _ingest(api, "r1", "loss", range(5, 8))
        live = _receive_until(socket, 3)
        assert [(p[1], p[2], p[3], p[5]) for p in live] == [("r1", "loss", s, s * 1.0) for s in range(5, 8)]
        last = live[-1][0]
    _ingest(api, "r1", "loss", range(8, 10))  # while nobody listens
    with api.websocket_connect("/api/v1/stream") as socket:
        socket.send_json({"runs": ["r1"], "keys": ["loss"], "after": last})
        missed = _receive_until(socket, 2)
        assert [p[3] for p in missed] == [8, 9] and missed[0][0] > last


def test_a_bad_subscription_or_a_missing_token_is_refused(api: TestClient, sqlite_url: str) -> None:
    with api.websocket_connect("/api/v1/stream") as socket:
        socket.send_text('{"runs": "r1"}')
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
        assert closed.value.code == 1008
    with TestClient(create_app(sqlite_url.replace("server.db", "t.db"), token="tok")) as guarded:
        with pytest.raises(WebSocketDisconnect) as refused, guarded.websocket_connect("/api/v1/stream") as socket:
            socket.receive_json()
        assert refused.value.code == 1008
        with guarded.websocket_connect("/api/v1/stream?token=tok") as socket:
            socket.send_json({"after": 0})


def test_two_replicas_on_one_postgresql_share_live_points(postgres_url: str, tmp_path: Path) -> None:
    import json

    from websockets.sync.client import connect

    from tests.server.conftest import ServerProcess
    from tracelet_core.client import TraceletClient

    replicas = [ServerProcess(postgres_url, tmp_path) for _ in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:  # both migrate the same fresh database at once: they take turns
            list(pool.map(ServerProcess.start, replicas))
        a, b = replicas
        with TraceletClient(a.url) as client:
            client.open_run("shared", {"experiment": "e", "start_time": 1.0})
            with connect(f"ws://127.0.0.1:{b.port}/api/v1/stream", open_timeout=10) as socket:
                socket.send(json.dumps({"runs": ["shared"], "after": 0}))
                client.send_batch("shared", [("loss", s, 1.0 + s, s * 0.5) for s in range(50)])
                seen: list[int] = []
                while len(seen) < 50:
                    seen += [point[3] for point in json.loads(socket.recv(timeout=30))["points"]]
        assert seen == list(range(50))
    finally:
        for replica in replicas:
            replica.stop()

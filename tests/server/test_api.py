"""The REST API in-process: open, ingest, read back, search, edit, soft delete, tokens, docs."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tracelet_core.server.app import create_app

RUN = {"experiment": "digits", "start_time": 1_700_000_000.0, "name": "base", "tags": {"team": "vision"}}


def _open(api: TestClient, run_id: str, **changes: Any) -> None:
    response = api.put(f"/api/v1/runs/{run_id}", json={**RUN, **changes})
    assert response.status_code in (200, 201), response.text


def _points(key: str, values: list[float] | list[str], first_step: int = 0) -> list[dict[str, Any]]:
    return [
        {"key": key, "step": first_step + i, "ts": 1_700_000_000.0 + first_step + i, "value": v}
        for i, v in enumerate(values)
    ]


def test_a_batch_reads_back_point_by_point_and_a_retry_writes_nothing(api: TestClient) -> None:
    _open(api, "r1")
    values = [1.0 / (i + 1) for i in range(50)]
    batch: dict[str, Any] = {
        "seq": 7,
        "metrics": [*_points("train/loss", values), *_points("odd", ["NaN", "-Infinity"])],
    }
    batch["params"], batch["tags"] = {"optimizer/lr": "0.01"}, {"git.commit": "abc123"}
    first = api.post("/api/v1/runs/r1/batches", json=batch)
    again = api.post("/api/v1/runs/r1/batches", json=batch)
    assert first.json() == {"points": 52, "duplicate": False}
    assert again.json() == {"points": 0, "duplicate": True}

    history = api.get("/api/v1/runs/r1/history", params={"key": "train/loss"}).json()
    assert history["total"] == 50 and not history["downsampled"]
    assert [p[2] for p in history["points"]] == values
    assert [p[0] for p in history["points"]] == list(range(50))
    assert api.get("/api/v1/runs/r1/history", params={"key": "odd"}).json()["points"] == [
        [0, 1_700_000_000.0, "NaN"],
        [1, 1_700_000_001.0, "-Infinity"],
    ]
    detail = api.get("/api/v1/runs/r1").json()
    assert detail["params"] == {"optimizer/lr": "0.01"}
    assert detail["tags"] == {"team": "vision", "git.commit": "abc123"}
    assert detail["git"] == {"commit": "abc123"}
    assert detail["metrics"]["train/loss"] == {"step": 49, "ts": 1_700_000_049.0, "value": values[-1], "count": 50}


def test_a_gzip_batch_is_ingested(api: TestClient) -> None:
    _open(api, "r1")
    body = gzip.compress(json.dumps({"metrics": _points("a", [float(i) for i in range(2000)])}).encode())
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    assert api.post("/api/v1/runs/r1/batches", content=body, headers=headers).json()["points"] == 2000


def test_downsampling_keeps_each_buckets_min_and_max(api: TestClient) -> None:
    _open(api, "r1")
    values = [math.sin(i / 50) for i in range(10_000)]
    values[4321], values[8765] = 100.0, -100.0  # spikes a chart must show
    api.post("/api/v1/runs/r1/batches", json={"metrics": _points("wave", values)})
    sample = api.get("/api/v1/runs/r1/history", params={"key": "wave", "points": 200}).json()
    assert sample["downsampled"] and sample["total"] == 10_000
    assert len(sample["points"]) <= 200
    kept = {p[0]: p[2] for p in sample["points"]}
    assert kept[4321] == 100.0 and kept[8765] == -100.0
    steps = [p[0] for p in sample["points"]]
    assert steps == sorted(steps)


def test_search_filters_sorts_and_pages(api: TestClient) -> None:
    for i in range(7):
        _open(api, f"run{i}", name=f"n{i}", start_time=1_700_000_000.0 + i)
        batch = {"metrics": _points("acc", [i / 10]), "params": {"lr": str(10**-i)}}
        api.post(f"/api/v1/runs/run{i}/batches", json=batch)
    api.post("/api/v1/runs/run3/status", json={"status": "FINISHED"})

    def ids(**params: Any) -> list[str]:
        return [run["id"] for run in api.get("/api/v1/runs", params=params).json()["runs"]]

    assert ids(filter="status=finished") == ["run3"]
    assert ids(filter="param.lr>0.001", order="asc") == ["run0", "run1", "run2"]
    assert ids(filter="metric.acc>=0.5 name~n") == ["run6", "run5"]
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 3, "sort": "name", "order": "asc"}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/api/v1/runs", params=params).json()
        seen += [run["id"] for run in page["runs"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"run{i}" for i in range(7)]


def test_edits_soft_delete_and_restore(api: TestClient) -> None:
    _open(api, "r1")
    api.post("/api/v1/runs/r1/batches", json={"params": {"lr": "0.1", "seed": "1"}})
    edited = api.patch(
        "/api/v1/runs/r1", json={"name": "renamed", "params": {"lr": "0.2", "seed": None}, "tags": {"x": "y"}}
    )
    assert edited.json()["params"] == {"lr": "0.2"} and edited.json()["tags"]["x"] == "y"
    assert edited.json()["name"] == "renamed"
    assert api.delete("/api/v1/runs/r1").json()["deleted"] is True
    assert api.get("/api/v1/runs").json()["runs"] == []
    assert [r["id"] for r in api.get("/api/v1/runs", params={"deleted": True}).json()["runs"]] == ["r1"]
    assert api.get("/api/v1/runs/r1").json()["deleted"] is True
    assert api.post("/api/v1/runs/r1/restore").json()["deleted"] is False
    assert [r["id"] for r in api.get("/api/v1/runs").json()["runs"]] == ["r1"]


def test_a_token_guards_the_api_but_not_health(tmp_path: Path) -> None:
    with TestClient(create_app(f"sqlite:///{tmp_path / 's.db'}", token="s3cret")) as api:
        refused = api.get("/api/v1/runs")
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["www-authenticate"] == "Bearer"
        assert api.get("/api/v1/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert api.get("/api/v1/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert api.get("/api/v1/health").status_code == 200


def test_docs_are_served_from_the_server_itself(api: TestClient) -> None:
    page = api.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    assert "PUT /api/v1/runs/{run_id}" in page.text or "/docs-assets/" in page.text
    schema = api.get("/api/v1/openapi.json").json()
    assert "/api/v1/runs/{run_id}/batches" in schema["paths"]


@pytest.mark.parametrize("status", ["FINISHED", "FAILED", "KILLED"])
def test_ending_a_run_is_idempotent(api: TestClient, status: str) -> None:
    _open(api, "r1")
    for _ in range(2):
        ended = api.post("/api/v1/runs/r1/status", json={"status": status, "end_time": 1_700_000_100.0}).json()
    assert ended["status"] == status and ended["end_time"] == 1_700_000_100.0
    _open(api, "r1")  # a resumed run is RUNNING again
    assert api.get("/api/v1/runs/r1").json()["status"] == "RUNNING"

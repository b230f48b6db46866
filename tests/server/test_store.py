"""The same schema and behaviour on SQLite and PostgreSQL: migrations, ingestion, idempotency, reads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from sqlalchemy import inspect

from tracelet_core.server.app import create_app
from tracelet_core.server.store.database import open_store


def test_migrations_run_once_and_again_harmlessly(store_url: str) -> None:
    for _ in range(2):
        store = open_store(store_url)
        tables = set(inspect(store.engine).get_table_names())
        store.close()
    assert {"experiments", "runs", "params", "tags", "metric_points", "latest_metrics", "ingested_batches"} <= tables
    indexes = {index["name"] for index in inspect(open_store(store_url).engine).get_indexes("metric_points")}
    assert "ix_points_history" in indexes


def test_ingestion_reads_back_the_same_on_both_stores(store_url: str) -> None:
    with TestClient(create_app(store_url), raise_server_exceptions=False) as api:
        api.put("/api/v1/runs/r1", json={"experiment": "e", "start_time": 1.0, "tags": {"env.python": "3.11"}})
        points = [{"key": "loss", "step": i, "ts": 2.0 + i, "value": i * 0.5} for i in range(1000)]
        points.append({"key": "loss", "step": 1000, "ts": 3000.0, "value": "Infinity"})
        batch = {"seq": 3, "metrics": points, "params": {"lr": "0.1"}, "tags": {"t": "1"}}
        assert api.post("/api/v1/runs/r1/batches", json=batch).json() == {"points": 1001, "duplicate": False}
        assert api.post("/api/v1/runs/r1/batches", json={"seq": 4, "params": {"seed": "7"}}).json()["points"] == 0
        detail = api.get("/api/v1/runs/r1").json()
        assert detail["params"] == {"lr": "0.1", "seed": "7"}
        assert detail["tags"] == {"env.python": "3.11", "t": "1"}
        assert detail["environment"] == {"python": "3.11"}
        history = api.get("/api/v1/runs/r1/history", params={"key": "loss"}).json()["points"]
        assert [p[2] for p in history] == [i * 0.5 for i in range(1000)] + ["Infinity"]


def test_concurrent_retries_of_one_batch_ingest_it_once(store_url: str) -> None:
    with TestClient(create_app(store_url), raise_server_exceptions=False) as api:
        api.put("/api/v1/runs/r1", json={"experiment": "e", "start_time": 1.0})
        batch = {"seq": 1, "metrics": [{"key": "a", "step": i, "ts": 1.0, "value": 1.0} for i in range(500)]}
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: api.post("/api/v1/runs/r1/batches", json=batch), range(8)))
        assert sorted(a.status_code for a in answers) == [200] * 8
        assert sum(a.json()["points"] for a in answers) == 500
        assert api.get("/api/v1/runs/r1/metrics").json()["metrics"]["a"]["count"] == 500

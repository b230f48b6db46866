"""Bad input never gets a 500 nor writes anything: each case is answered 4xx problem+json, and the store
holds afterwards exactly what it held before.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from tracelet_core.server.app import create_app

MAX_BODY = 200_000
TABLES = ("experiments", "runs", "params", "tags", "metric_points", "latest_metrics", "ingested_batches")
POINT = {"key": "loss", "step": 1, "ts": 1_700_000_000.0, "value": 0.5}
JSON = {"Content-Type": "application/json"}
GZIP_JSON = {**JSON, "Content-Encoding": "gzip"}


def _batch(**changes: Any) -> bytes:
    return json.dumps({"metrics": [{**POINT, **changes}]}).encode()


def _bomb() -> bytes:
    """1 KB of gzip that inflates to 10 MB of JSON whitespace: under the limit sent, far over it inflated."""
    return gzip.compress(b'{"metrics": [' + b" " * 10_000_000 + b"]}")


# (method, path, body, headers, expected status)
CASES: dict[str, tuple[str, str, bytes | None, dict[str, str], int]] = {
    "malformed json": ("POST", "/api/v1/runs/r1/batches", b'{"metrics": [', JSON, 400),
    "not json at all": ("POST", "/api/v1/runs/r1/batches", b"\x00\xff\xfe", JSON, 400),
    "json array body": ("POST", "/api/v1/runs/r1/batches", b"[1, 2]", JSON, 422),
    "string value": ("POST", "/api/v1/runs/r1/batches", _batch(value="abc"), JSON, 422),
    "boolean value": ("POST", "/api/v1/runs/r1/batches", _batch(value=True), JSON, 422),
    "string step": ("POST", "/api/v1/runs/r1/batches", _batch(step="3"), JSON, 422),
    "huge step": ("POST", "/api/v1/runs/r1/batches", _batch(step=2**70), JSON, 422),
    "empty key": ("POST", "/api/v1/runs/r1/batches", _batch(key=""), JSON, 422),
    "negative timestamp": ("POST", "/api/v1/runs/r1/batches", _batch(ts=-5), JSON, 422),
    "unknown field": ("POST", "/api/v1/runs/r1/batches", _batch(extra=1), JSON, 422),
    "params not text": ("POST", "/api/v1/runs/r1/batches", b'{"params": {"lr": 0.1}}', JSON, 422),
    "seq below -1": ("POST", "/api/v1/runs/r1/batches", b'{"seq": -2}', JSON, 422),
    "unknown run": ("POST", "/api/v1/runs/nope/batches", _batch(), JSON, 404),
    "unknown run status": ("POST", "/api/v1/runs/nope/status", b'{"status": "FINISHED"}', JSON, 404),
    "bad status": ("POST", "/api/v1/runs/r1/status", b'{"status": "DONE"}', JSON, 422),
    "edit unknown run": ("PATCH", "/api/v1/runs/nope", b'{"name": "x"}', JSON, 404),
    "delete unknown run": ("DELETE", "/api/v1/runs/nope", None, {}, 404),
    "open without experiment": ("PUT", "/api/v1/runs/r2", b'{"start_time": 1}', JSON, 422),
    "oversized body": ("POST", "/api/v1/runs/r1/batches", b" " * (MAX_BODY + 1), JSON, 413),
    "oversized once inflated": ("POST", "/api/v1/runs/r1/batches", _bomb(), GZIP_JSON, 413),
    "damaged gzip": ("POST", "/api/v1/runs/r1/batches", b"\x1f\x8b\x08\x00garbage", GZIP_JSON, 400),
    "gzip header, plain body": ("POST", "/api/v1/runs/r1/batches", _batch(), GZIP_JSON, 400),
    "unknown encoding": ("POST", "/api/v1/runs/r1/batches", _batch(), {**JSON, "Content-Encoding": "br"}, 415),
    "sql in a filter": ("GET", "/api/v1/runs?filter=name%3D'%3B%20DROP%20TABLE%20runs%3B--", None, {}, 400),
    "sql in a filter word": ("GET", "/api/v1/runs?filter=1%3D1%20OR%201%3D1", None, {}, 400),
    "unknown filter field": ("GET", "/api/v1/runs?filter=stauts%3DFINISHED", None, {}, 400),
    "damaged cursor": ("GET", "/api/v1/runs?cursor=not-a-cursor", None, {}, 400),
    "limit out of range": ("GET", "/api/v1/runs?limit=100000", None, {}, 422),
    "unknown sort": ("GET", "/api/v1/runs?sort=password", None, {}, 422),
    # An encoded '/' is decoded before routing: such a path matches no route.
    "dot-dot path": ("GET", "/api/v1/runs/..%2F..%2Fetc%2Fpasswd", None, {}, 404),
    "dot-dot path in ingest": ("POST", "/api/v1/runs/..%2Fr1/batches", _batch(), JSON, 404),
    "dot-dot run id": ("GET", "/api/v1/runs/%2E%2E", None, {}, 400),
    "dot-dot run id in ingest": ("POST", "/api/v1/runs/%2E%2E/batches", _batch(), JSON, 400),
    "leading-dot run id": (
        "PUT",
        "/api/v1/runs/.hidden",
        json.dumps({"experiment": "e", "start_time": 1}).encode(),
        JSON,
        400,
    ),
    "run id too long": ("GET", "/api/v1/runs/" + "a" * 200, None, {}, 422),
    "history without key": ("GET", "/api/v1/runs/r1/history", None, {}, 422),
    "history points 1": ("GET", "/api/v1/runs/r1/history?key=loss&points=1", None, {}, 422),
    "unknown path": ("GET", "/api/v1/nothing", None, {}, 404),
    "wrong method": ("PUT", "/api/v1/experiments", b"{}", JSON, 405),
}


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as connection:
        counts = {table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in TABLES}
    engine.dispose()
    return counts


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestClient, str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('bad-input') / 'server.db'}"
    client = TestClient(create_app(url, max_body=MAX_BODY), raise_server_exceptions=False)
    client.__enter__()
    client.put("/api/v1/runs/r1", json={"experiment": "e", "start_time": 1.0})
    client.post("/api/v1/runs/r1/batches", content=_batch(), headers=JSON)
    return client, url


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_a_4xx_problem_and_writes_nothing(seeded: tuple[TestClient, str], case: str) -> None:
    client, url = seeded
    method, path, body, headers, expected = CASES[case]
    before = _counts(url)
    response = client.request(method, path, content=body, headers=headers)
    assert response.status_code == expected, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == expected and problem["title"] and problem["detail"]
    assert _counts(url) == before


def test_a_filter_with_sql_in_its_value_is_only_compared(seeded: tuple[TestClient, str], tmp_path: Path) -> None:
    client, url = seeded
    response = client.get("/api/v1/runs", params={"filter": "\"name=x' OR '1'='1\" 'tag.a~%;--'"})
    assert response.status_code == 200 and response.json()["runs"] == []
    assert _counts(url)["runs"] == 1

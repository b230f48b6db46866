"""The Tracelet server for tests: the app in-process (TestClient), a real uvicorn subprocess on 127.0.0.1,
and a PostgreSQL database on the team stack's PostgreSQL (``scripts/team_stack.sh``) when it can run here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.mlflow_server import free_port
from tests.team.conftest import TeamStack
from tracelet_core.server.app import create_app

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_COMMAND = "from tracelet_core.cli import main; main()"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite store in the test's directory."""
    return f"sqlite:///{tmp_path / 'server.db'}"


@pytest.fixture
def api(sqlite_url: str) -> Iterator[TestClient]:
    """The app on a fresh SQLite store, in-process; server errors are answered, not raised."""
    with TestClient(create_app(sqlite_url), raise_server_exceptions=False) as client:
        yield client


class ServerProcess:
    """``tracelet server`` as a subprocess on a free 127.0.0.1 port, in its own process group."""

    def __init__(self, store: str, workdir: Path, token: str | None = None, follow: Path | None = None) -> None:
        self.store, self.workdir, self.token, self.follow = store, workdir, token, follow
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        command = [sys.executable, "-c", SERVER_COMMAND, "server", "--store", self.store, "--port", str(self.port)]
        if self.token:
            command += ["--token", self.token]
        if self.follow:
            command += ["--follow", str(self.follow)]
        log = (self.workdir / f"server-{self.port}.log").open("w")
        self.process = subprocess.Popen(
            command, env=env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited ({self.process.returncode}):\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not answer within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        path = self.workdir / f"server-{self.port}.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM to the group (uvicorn answers what is in flight, then exits); SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamStack]:
    """The team stack's PostgreSQL (and its mlflow server), once per session; skipped where it cannot run."""
    stack = TeamStack(tmp_path_factory.mktemp("server-team-stack"))
    try:
        stack.start()
        yield stack
    finally:
        stack.purge()


@pytest.fixture
def postgres_url(postgres_server: TeamStack) -> str:
    """A fresh PostgreSQL database for one test (``postgresql+psycopg://``)."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(postgres_server.backend_store_uri).set(drivername="postgresql")
    name = f"tracelet_{uuid.uuid4().hex[:12]}"
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")  # a name made above: letters, digits, '_'
    return admin.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store of each kind (PostgreSQL skipped where the team stack cannot run)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'server.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url

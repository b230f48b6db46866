"""The team deployment: compose/ checked as data, and the same topology run for real without Docker.

``scripts/team_stack.sh`` starts PostgreSQL (installed from Debian's packages if missing) and
``mlflow server --backend-store-uri postgresql://...`` with a local artifact destination; the tests
train with ``TraceletLogger`` against it in subprocesses, break pieces of the stack mid-run, and read
every run back through MLflow (and PostgreSQL) point by point.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.team.conftest import REPO_ROOT, TeamStack, Training, parse_exports, start_training
from tracelet_core.pipeline.journal import Journal

COMPOSE = REPO_ROOT / "compose"
_VARIABLE = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")


# -- compose/, checked without Docker ----------------------------------------------------------------


def _env_example() -> dict[str, str]:
    values = {}
    for line in (COMPOSE / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _interpolate(text: str, values: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` against ``values``; ``$$`` stays."""

    def replace(match: re.Match[str]) -> str:
        name, whole = match.group(1), match.group(0)
        if values.get(name):
            return values[name]
        return whole.split(":-", 1)[1][:-1] if ":-" in whole else ""

    return _VARIABLE.sub(replace, text.replace("$$", "\0")).replace("\0", "$")


def _compose() -> dict:
    return yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())


def test_compose_stack_is_wired_mlflow_on_postgres_with_minio_artifacts() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"postgres", "minio", "minio-init", "mlflow"}
    for name in ("postgres", "minio", "mlflow"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and check["retries"] >= 3, name
        assert services[name]["restart"] == "unless-stopped", name

    # Persistent named volumes where each store keeps its data.
    assert set(compose["volumes"]) == {"postgres-data", "minio-data"}
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "minio-data:/data" in services["minio"]["volumes"]
    assert "/data" in services["minio"]["command"]

    # Start order follows health, and the bucket exists before the server starts.
    assert services["minio-init"]["depends_on"] == {"minio": {"condition": "service_healthy"}}
    assert services["mlflow"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "minio-init": {"condition": "service_completed_successfully"},
    }
    assert "mc mb --ignore-existing" in services["minio-init"]["command"][0]

    # The server: PostgreSQL backend store, artifacts proxied to the MinIO bucket, the image it needs.
    values = _env_example()
    flags = dict(arg.split("=", 1) for arg in services["mlflow"]["command"][2:] if "=" in arg)
    assert services["mlflow"]["command"][:2] == ["mlflow", "server"]
    backend = _interpolate(flags["--backend-store-uri"], values)
    from sqlalchemy.engine import make_url

    url = make_url(backend)
    assert (url.drivername, url.host, url.port) == ("postgresql+psycopg", "postgres", 5432)
    assert (url.username, url.password, url.database) == (
        values["POSTGRES_USER"],
        values["POSTGRES_PASSWORD"],
        values["POSTGRES_DB"],
    )
    assert _interpolate(flags["--artifacts-destination"], values) == f"s3://{values['MLFLOW_BUCKET']}/"
    assert flags["--default-artifact-root"] == "mlflow-artifacts:/"
    assert "--serve-artifacts" in services["mlflow"]["command"]
    assert flags["--host"] == "0.0.0.0"
    assert f":{flags['--port']}/health" in " ".join(services["mlflow"]["healthcheck"]["test"])
    assert _interpolate(services["mlflow"]["ports"][0], values) == f"{values['MLFLOW_PORT']}:{flags['--port']}"
    environment = services["mlflow"]["environment"]
    assert environment["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert _interpolate(environment["AWS_ACCESS_KEY_ID"], values) == values["MINIO_ROOT_USER"]
    assert _interpolate(environment["AWS_SECRET_ACCESS_KEY"], values) == values["MINIO_ROOT_PASSWORD"]
    assert environment["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    postgres_env = services["postgres"]["environment"]
    assert _interpolate(postgres_env["POSTGRES_DB"], values) == url.database
    build = services["mlflow"]["build"]
    dockerfile = (COMPOSE / build["context"] / build["dockerfile"]).read_text()
    assert "psycopg[binary]" in dockerfile and "boto3" in dockerfile
    assert f"ARG MLFLOW_VERSION={values['MLFLOW_VERSION']}" in dockerfile
    assert _interpolate(build["args"]["MLFLOW_VERSION"], values) == values["MLFLOW_VERSION"]


def test_compose_variables_all_come_from_env_example() -> None:
    used = set(_VARIABLE.findall((COMPOSE / "docker-compose.yml").read_text()))
    values = _env_example()
    assert used == set(values), f"only in compose: {used - set(values)}; only in .env.example: {set(values) - used}"
    required = set(re.findall(r"\$\{(\w+):\?", (COMPOSE / "docker-compose.yml").read_text()))
    assert all(values[name] for name in required)
    # The passwords go into a connection URI unescaped.
    assert re.fullmatch(r"[\w-]+", values["POSTGRES_PASSWORD"])
    assert len(values["MINIO_ROOT_PASSWORD"]) >= 8  # MinIO refuses shorter root passwords


def test_compose_readme_says_how_to_start_connect_and_open_the_ui() -> None:
    readme = (COMPOSE / "README.md").read_text()
    assert "docker compose --env-file compose/.env -f compose/docker-compose.yml up" in readme
    assert "export MLFLOW_TRACKING_URI=" in readme
    assert "## Open the UI" in readme
    assert "scripts/team_stack.sh start" in readme


# -- the same topology without Docker: PostgreSQL + mlflow server ------------------------------------


def test_a_machine_without_postgresql_skips_the_suite_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_STACK_PG_BIN", str(tmp_path / "no-postgres-here"))
    stack = TeamStack(tmp_path / "stack")
    with pytest.raises(pytest.skip.Exception, match=r"PostgreSQL cannot be installed.*holds no pg_ctl"):
        stack.start()
    assert stack.script("status").returncode == 1


def test_a_missing_postgresql_driver_fails_before_anything_starts(tmp_path: Path) -> None:
    """The interpreter of the mlflow installation must load psycopg: said at once, with the install command."""
    fake = tmp_path / "env" / "bin"
    fake.mkdir(parents=True)
    for name in ("mlflow", "python"):  # an installation whose Python cannot import the driver
        (fake / name).write_text("#!/bin/sh\nexit 1\n")
        (fake / name).chmod(0o755)
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "team_stack.sh"), "start"],
        env=dict(os.environ, TEAM_STACK_DIR=str(tmp_path / "stack"), TEAM_STACK_MLFLOW=str(fake / "mlflow")),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 4, result.stderr
    assert "pip install 'psycopg[binary]'" in result.stderr
    assert not (tmp_path / "stack" / "stack.env").exists()  # nothing was started


def _history(client: MlflowClient, native: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(native, key))


def _expected(steps: int, sign: float) -> list[tuple[int, float]]:
    return [(step, sign * step) for step in range(steps)]


def _assert_every_point_once(client: MlflowClient, native: str, steps: int) -> None:
    """a = step and b = -step at each of ``steps`` steps: each point exactly once, nothing else."""
    assert _history(client, native, "a") == _expected(steps, 1.0)
    assert _history(client, native, "b") == _expected(steps, -1.0)
    assert client.get_run(native).info.status == "FINISHED"


@pytest.mark.server
@pytest.mark.slow
def test_stack_script_is_idempotent_and_stores_in_postgres(team_stack: TeamStack) -> None:
    again = TeamStack(team_stack.state_dir)
    seconds = again.start()
    assert seconds < 5, f"a second start took {seconds:.1f} s"
    assert again.values == team_stack.values  # same ports, same server
    assert team_stack.script("status").returncode == 0
    assert parse_exports(team_stack.script("env").stdout) == team_stack.values
    assert team_stack.backend_store_uri.startswith("postgresql://")
    assert team_stack.tracking_uri.startswith("http://127.0.0.1:")
    client = MlflowClient(team_stack.tracking_uri)
    experiment_id = client.create_experiment("team-smoke")
    assert client.get_experiment(experiment_id).artifact_location.startswith("mlflow-artifacts:")
    import psycopg

    with psycopg.connect(team_stack.backend_store_uri) as db:
        assert db.execute("SELECT name FROM experiments WHERE experiment_id = %s", (int(experiment_id),)).fetchone()


def _journal_contents(journal_dir: Path) -> tuple[dict[str, list[tuple[int, float]]], dict[str, str], set[str]]:
    """Metric points per key, params and artifact names, as the run's journal (the source of truth) has them.

    A checkpoint that a later one replaces (the previous best) is not among the artifact names: the
    tracker deletes it.
    """
    metrics: dict[str, list[tuple[int, float]]] = {}
    params: dict[str, str] = {}
    artifacts: set[str] = set()
    replaced: set[str] = set()
    with Journal(journal_dir / "journal.sqlite") as journal:
        for event in journal.read(0, 1_000_000):
            if event.kind == "metric":
                metrics.setdefault(str(event.key), []).append((int(event.step or 0), event.value))
            elif event.kind == "param":
                params.setdefault(str(event.key), str(event.text))
            elif event.kind == "artifact":
                artifacts.add(str(event.key))
                replaced.add(str(event.payload()["metadata"].get("replaces")))
    return {key: sorted(points) for key, points in metrics.items()}, params, artifacts - replaced


def _artifact_paths(client: MlflowClient, native: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(native, path):
        found |= _artifact_paths(client, native, item.path) if item.is_dir else {item.path}
    return found


@pytest.mark.server
@pytest.mark.slow
def test_digits_example_on_postgres_is_read_back_completely(team_stack: TeamStack, tmp_path: Path) -> None:
    env = dict(
        os.environ,
        MLFLOW_TRACKING_URI=team_stack.tracking_uri,
        TRACELET_BACKENDS="mlflow",
        TRACELET_EXPERIMENT="team-digits",
        OMP_NUM_THREADS="1",
    )
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "train_digits.py"), "--epochs", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    native = re.search(r"mlflow: run (\w+) at (\S+)", proc.stdout)
    journal_dir = re.search(r"journal: (\S+)", proc.stdout)
    assert native and journal_dir, proc.stdout
    assert native.group(2) == team_stack.tracking_uri
    assert "undelivered" not in proc.stdout
    native_id = native.group(1)
    metrics, params, artifacts = _journal_contents(Path(journal_dir.group(1)))

    client = MlflowClient(team_stack.tracking_uri)
    run = client.get_run(native_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "team-digits"
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc", "epoch"} <= set(metrics)
    for key, points in metrics.items():
        assert _history(client, native_id, key) == points, key  # every journaled point, exactly once
    assert set(run.data.metrics) == set(metrics)
    assert run.data.params == params
    assert params["hidden"] == "64" and params["optimizer/name"] == "adam"
    stored = _artifact_paths(client, native_id)
    assert artifacts <= stored and any(path.endswith(".ckpt") for path in stored), stored
    assert len([path for path in stored if path.endswith(".ckpt")]) == 1, "the best one only"
    config = Path(client.download_artifacts(native_id, "tracelet/config.yaml", str(tmp_path))).read_text()
    assert yaml.safe_load(config)["hidden"] == 64
    # The files went through the server's proxy into its --artifacts-destination.
    assert any(team_stack.artifacts.rglob("config.yaml"))

    import psycopg

    with psycopg.connect(team_stack.backend_store_uri) as db:
        rows = db.execute("SELECT count(*) FROM metrics WHERE run_uuid = %s", (native_id,)).fetchone()
    assert rows is not None and rows[0] == sum(len(points) for points in metrics.values())


def _points_on_server(client: MlflowClient, experiment: str, key: str = "a") -> int:
    """How many points of ``key`` the (only) run of ``experiment`` has on the server so far."""
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id]) if found else []
    return len(client.get_metric_history(runs[0].info.run_id, key)) if runs else 0


def _wait_for_delivery_to_begin(client: MlflowClient, experiment: str, timeout: float = 60) -> int:
    """Wait until the server holds some points of the run: the fault then hits a delivery under way."""
    deadline = time.monotonic() + timeout
    while (count := _points_on_server(client, experiment)) == 0:
        assert time.monotonic() < deadline, f"nothing of {experiment} reached the server in {timeout} s"
        time.sleep(0.2)
    return count


def _train_through(training: Training, outage_steps: int, step_seconds: float) -> float:
    """Wait for the trainer to finish training; check no step waited; return the seconds since it resumed."""
    since_resume, slowest = (float(x) for x in training.expect("trained", timeout=120))
    # Training alone takes outage_steps x step_seconds; a logger that waited for the tracker would take
    # seconds per step (connection retries) instead of milliseconds.
    assert slowest < 2.0, f"a training step took {slowest:.2f} s"
    assert since_resume < outage_steps * step_seconds + 10, f"{outage_steps} steps took {since_resume:.1f} s"
    return since_resume


# The fault tests: 300 steps of 20 ms; the trainer pauses after 100 while delivery is under way.
FAULT_STEPS, FAULT_PAUSE_AT, FAULT_STEP_SECONDS = 300, 100, 0.02


def _paused_while_delivering(team_stack: TeamStack, workdir: Path, experiment: str) -> tuple[MlflowClient, Training]:
    """Start a fault-test training and return once it is paused and the server holds some of its points."""
    client = MlflowClient(team_stack.tracking_uri)
    training = start_training(
        team_stack, workdir, experiment, batches=FAULT_STEPS, pause_at=FAULT_PAUSE_AT, step_seconds=FAULT_STEP_SECONDS
    )
    training.expect("paused", timeout=120)
    _wait_for_delivery_to_begin(client, experiment)
    return client, training


@pytest.mark.server
@pytest.mark.slow
def test_mlflow_server_killed_and_restarted_mid_run(team_stack: TeamStack, tmp_path: Path) -> None:
    client, training = _paused_while_delivering(team_stack, tmp_path, "team-server-kill")
    team_stack.kill_mlflow()  # SIGKILL, whole process group: no graceful shutdown
    training.release()
    # the remaining 200 steps, server dead
    _train_through(training, FAULT_STEPS - FAULT_PAUSE_AT, FAULT_STEP_SECONDS)
    assert training.process.poll() is None  # ... and now the run waits for delivery, up to finish_timeout
    print(f"mlflow server back in {team_stack.start():.1f} s")
    native = training.finish()
    _assert_every_point_once(client, native, FAULT_STEPS)
    assert "delivery failed" in training.delivery_log()  # the outage was real, and retried


@pytest.mark.server
@pytest.mark.slow
def test_postgres_restarted_mid_run(team_stack: TeamStack, tmp_path: Path) -> None:
    server, postmaster = psutil.Process(team_stack.mlflow_pid), team_stack.postmaster_pid()
    client, training = _paused_while_delivering(team_stack, tmp_path, "team-postgres-restart")
    training.release()
    team_stack.restart_postgres()  # pg_ctl restart -m fast while the trainer logs and the server writes
    assert team_stack.postmaster_pid() != postmaster
    _train_through(training, FAULT_STEPS - FAULT_PAUSE_AT, FAULT_STEP_SECONDS)
    native = training.finish()
    _assert_every_point_once(client, native, FAULT_STEPS)
    # The same server process, reconnected to the new PostgreSQL by itself.
    assert server.is_running() and server.status() != psutil.STATUS_ZOMBIE
    failures = training.delivery_log().count("delivery failed")
    print(f"{failures} deliveries failed during the PostgreSQL restart and were retried")


@pytest.mark.server
@pytest.mark.slow
def test_four_concurrent_trainings_deliver_every_point(team_stack: TeamStack, tmp_path: Path) -> None:
    steps = 150
    trainings = [
        start_training(
            team_stack, tmp_path / f"trainer-{i}", "team-concurrent", batches=steps, run_name=f"trainer-{i}",
            step_seconds=0.01,
        )
        for i in range(4)
    ]  # fmt: skip
    with ThreadPoolExecutor(len(trainings)) as pool:
        natives = list(pool.map(lambda training: training.finish(timeout=240), trainings))
    assert len(set(natives)) == 4
    client = MlflowClient(team_stack.tracking_uri)
    for native in natives:
        _assert_every_point_once(client, native, steps)
    experiment = client.get_experiment_by_name("team-concurrent")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == [f"trainer-{i}" for i in range(4)]

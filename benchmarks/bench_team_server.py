"""Sustained metric points per second delivered to a team MLflow server (PostgreSQL backend store).

One process logs ``--steps`` steps of ``--metrics`` metrics as fast as it can through each logger,
and the clock runs until the server holds every point:

* ``tracelet``: ``TraceletLogger(backends=["mlflow"])``; the clock stops when ``finalize`` returns
  with every point acknowledged (the delivery process sends batches of up to 1000 points);
* ``mlflow-sync``: Lightning's ``MLFlowLogger`` (one synchronous ``log_batch`` per step); it is
  slow, so its loop stops after ``--max-seconds``;
* ``mlflow-async``: ``MLFlowLogger(synchronous=False)``; the clock stops when MLflow's async queue
  is flushed;
* ``ceiling``: no logger, the reference: ``MlflowClient.log_batch`` with 1000 points a call (MLflow's
  cap), back to back: about what the server itself can take from one client.

Each logger runs in its own child process, one after the other, against the same server, after a
warm-up (run created, first point delivered) that the clock leaves out. Every point is read back
from the server to check it arrived. Without ``--tracking-uri`` a throwaway stack is started with
``scripts/team_stack.sh`` (PostgreSQL + ``mlflow server``) and purged at the end.

    python benchmarks/bench_team_server.py                      # ~2-3 minutes on 2 cores
    python benchmarks/bench_team_server.py --tracking-uri http://mlflow-host:5000 --steps 5000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ("tracelet", "mlflow-sync", "mlflow-async", "ceiling")
# The server's own limit, for reference: the same points sent straight with MlflowClient.log_batch,
# 1000 a call (MLflow's cap), one call after the other, nothing else in the process.
CEILING_BATCH = 1000


# -- child: one logger, one run ----------------------------------------------------------------------


def _wait_for_first_ack(journal_path: Path, timeout: float = 120) -> None:
    """Block until Tracelet's delivery process has acknowledged everything journaled so far."""
    from tracelet_core.pipeline.journal import Journal

    deadline = time.monotonic() + timeout
    with Journal(journal_path) as journal:
        while time.monotonic() < deadline:
            last = journal.last_seq()
            state = journal.deliveries().get("mlflow")
            if last and state is not None and state.acked_seq >= last:
                return
            time.sleep(0.05)
    raise RuntimeError(f"Tracelet's delivery did not start within {timeout} s; see {journal_path.parent}")


def run_child(config: str, uri: str, steps: int, metrics: int, max_seconds: float) -> dict[str, Any]:
    """Log the workload through one logger and measure until the server holds it all."""
    import lightning.pytorch  # noqa: F401  - imported before the clock, as in a training script

    keys = [f"bench/m{i:02d}" for i in range(metrics)]
    experiment = f"bench-team-{config}-{os.getpid()}"
    if config == "ceiling":
        return _run_ceiling(uri, experiment, keys, steps)
    if config == "tracelet":
        from tracelet_lightning import TraceletLogger

        logger: Any = TraceletLogger(experiment=experiment, backends=["mlflow"])
        logger.log_metrics({"bench/warmup": 0.0}, step=0)
        _wait_for_first_ack(logger.experiment.journal_path)
    else:
        from lightning.pytorch.loggers import MLFlowLogger

        logger = MLFlowLogger(experiment_name=experiment, tracking_uri=uri, synchronous=config == "mlflow-sync")
        logger.log_metrics({"bench/warmup": 0.0}, step=0)
        if config == "mlflow-async":
            logger.experiment._tracking_client.store.flush_async_logging()  # no public per-client flush

    in_band = 0.0
    started = time.perf_counter()
    done = 0
    for step in range(steps):
        values = {key: float(step * metrics + i) for i, key in enumerate(keys)}
        before = time.perf_counter()
        logger.log_metrics(values, step=step)
        in_band += time.perf_counter() - before
        done += 1
        if config == "mlflow-sync" and time.perf_counter() - started > max_seconds:
            break
    logged = time.perf_counter()
    if config == "mlflow-async":
        logger.experiment._tracking_client.store.flush_async_logging()
    logger.finalize("success")
    delivered_at = time.perf_counter()

    if config == "tracelet":
        report = logger.report
        assert report is not None and report.complete, report and report.summary()
        run_id = next(b.native_id for b in report.backends if b.name == "mlflow")
    else:
        run_id = logger.run_id
    return _result(config, uri, run_id, keys, done, started, logged, delivered_at, in_band)


def _run_ceiling(uri: str, experiment: str, keys: list[str], steps: int) -> dict[str, Any]:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment(experiment)).info.run_id
    client.log_batch(run_id, metrics=[Metric("bench/warmup", 0.0, int(time.time() * 1000), 0)], synchronous=True)
    started = time.perf_counter()
    points: list[Metric] = []
    for step in range(steps):
        now = int(time.time() * 1000)
        points.extend(Metric(key, float(step * len(keys) + i), now, step) for i, key in enumerate(keys))
    for start in range(0, len(points), CEILING_BATCH):
        client.log_batch(run_id, metrics=points[start : start + CEILING_BATCH], synchronous=True)
    client.set_terminated(run_id)
    done = time.perf_counter()
    return _result("ceiling", uri, run_id, keys, steps, started, done, done, done - started)


def _result(
    config: str,
    uri: str,
    run_id: str,
    keys: list[str],
    steps: int,
    started: float,
    logged: float,
    delivered_at: float,
    in_band: float,
) -> dict[str, Any]:
    """Check every point is on the server, and return the figures of one run."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    arrived = sum(len(client.get_metric_history(run_id, key)) for key in keys)
    points = steps * len(keys)
    if arrived != points:
        raise RuntimeError(f"{config}: {arrived} of {points} points reached the server")
    seconds = delivered_at - started
    return {
        "config": config,
        "steps": steps,
        "points": points,
        "log_seconds": logged - started,
        "seconds": seconds,
        "points_per_second": points / seconds,
        "in_band_us_per_step": in_band / steps * 1e6,
    }


# -- parent: the stack, the children, the table ------------------------------------------------------


def _child_env(workdir: Path, uri: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "TRACELET_"))}
    env.update(
        MLFLOW_TRACKING_URI=uri,  # how a user points Tracelet (and MLflow) at the team server
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p),
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        TRACELET_SYSTEM_METRICS="false",
        TRACELET_GIT="false",
        TRACELET_ENVIRONMENT="false",
        TRACELET_FINISH_TIMEOUT="600",
        TRACELET_JOURNAL_DIR=str(workdir / ".tracelet"),
        OMP_NUM_THREADS="1",
        PYTHONWARNINGS="ignore",
    )
    return env


class ThrowawayStack:
    """PostgreSQL + mlflow server from ``scripts/team_stack.sh`` in a temporary state directory."""

    def __init__(self, root: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "TRACELET_"))}
        self.env = dict(
            env, TEAM_STACK_DIR=str(root / "stack"), TEAM_STACK_MLFLOW=str(Path(sys.executable).parent / "mlflow")
        )
        self.script = str(REPO_ROOT / "scripts" / "team_stack.sh")

    def start(self) -> str:
        result = subprocess.run([self.script, "start"], env=self.env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"team_stack.sh start failed ({result.returncode}):\n{result.stderr}")
        return next(
            line.split("=", 1)[1]
            for line in result.stdout.splitlines()
            if line.startswith("export MLFLOW_TRACKING_URI=")
        )

    def purge(self) -> None:
        subprocess.run([self.script, "purge"], env=self.env, capture_output=True, check=False)


def run_config(config: str, uri: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """One child process for one logger; its result as a dict."""
    child_dir = workdir / config
    child_dir.mkdir(parents=True, exist_ok=True)
    result_path = child_dir / "result.json"
    command = [
        sys.executable, __file__, "--child", config, "--tracking-uri", uri, "--steps", str(args.steps),
        "--metrics", str(args.metrics), "--max-seconds", str(args.max_seconds), "--result", str(result_path),
    ]  # fmt: skip
    proc = subprocess.run(
        command,
        cwd=child_dir,
        env=_child_env(child_dir, uri),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{config} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return dict(json.loads(result_path.read_text()))


def _table(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> str:
    def median(config: str, field: str) -> float:
        return statistics.median(r[field] for r in results[config])

    base = median("tracelet", "points_per_second")
    lines = [
        f"{args.metrics} metrics per step; median of {args.repeats} run(s); {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; server: mlflow server, PostgreSQL backend store",
        "",
        "| logger | steps | points | logging loop s | until all on server s | points/s delivered | "
        "in-band µs/step | Tracelet is |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for config in CONFIGS:
        rate = median(config, "points_per_second")
        lines.append(
            f"| {config} | {median(config, 'steps'):.0f} | {median(config, 'points'):.0f} | "
            f"{median(config, 'log_seconds'):.2f} | {median(config, 'seconds'):.2f} | {rate:,.0f} | "
            f"{median(config, 'in_band_us_per_step'):,.0f} | "
            + {"tracelet": "—", "ceiling": f"at {base / rate:.0%} of it"}.get(config, f"{base / rate:.1f}× faster")
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", help="an MLflow server to use; default: start a throwaway team stack")
    parser.add_argument("--steps", type=int, default=2000, help="steps logged by each logger (default 2000)")
    parser.add_argument("--metrics", type=int, default=20, help="metrics per step (default 20)")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="cap on the synchronous logger's loop")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each logger (the table shows medians)")
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    parser.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = run_child(args.child, args.tracking_uri, args.steps, args.metrics, args.max_seconds)
        args.result.write_text(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="tracelet-teambench-") as tmp:
        workdir = Path(tmp)
        stack = None if args.tracking_uri else ThrowawayStack(workdir)
        try:
            uri = args.tracking_uri or stack.start()  # type: ignore[union-attr]
            print(f"server: {uri}", file=sys.stderr)
            results: dict[str, list[dict[str, Any]]] = {config: [] for config in CONFIGS}
            for repeat in range(args.repeats):
                for config in CONFIGS:
                    result = run_config(config, uri, args, workdir / f"r{repeat}")
                    print(
                        f"{config}: {result['points']} points in {result['seconds']:.2f} s = "
                        f"{result['points_per_second']:,.0f} points/s",
                        file=sys.stderr,
                    )
                    results[config].append(result)
        finally:
            if stack is not None:
                stack.purge()
    print(_table(results, args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

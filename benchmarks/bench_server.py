"""Tracelet server ingestion and chart reads, against the MLflow server's own ``log_batch`` on the same machine.

Each store gets a fresh server (a subprocess on 127.0.0.1):

* ingest: ``--batches`` batches of 1,000 points sent one after another through the ``tracelet`` tracker's
  client (gzip, one request per batch, as the delivery process sends them), points per second;
* mlflow: the same batches through ``MlflowClient.log_batch`` to ``mlflow server`` on SQLite (the
  ceiling a tracker sending to MLflow has), points per second, in the same run;
* history: one metric of ``--history-points`` points read back downsampled to 2,000 points (median of 5).

    python benchmarks/bench_server.py                        # SQLite, 100 batches; MLflow 20 batches
    python benchmarks/bench_server.py --store postgresql+psycopg://USER:PW@127.0.0.1:PORT/DB
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.server.conftest import ServerProcess  # noqa: E402  (the repository's root, put on the path above)
from tests.support.mlflow_server import MlflowServer  # noqa: E402
from tracelet_core.client import TraceletClient  # noqa: E402

BATCH = 1000


def _batch(index: int) -> list[tuple[str, int | None, float, float]]:
    first = index * BATCH
    return [(f"m{i % 10}", first + i, 1.7e9 + first + i, (first + i) * 0.001) for i in range(BATCH)]


def bench_tracelet(store: str, batches: int, history_points: int, workdir: Path) -> dict[str, float]:
    """Points per second into the server, and the milliseconds of one downsampled history read."""
    server = ServerProcess(store, workdir).start()
    try:
        with TraceletClient(server.url) as client:
            client.open_run("bench", {"experiment": "bench", "start_time": time.time()})
            payloads = [_batch(i) for i in range(batches)]
            started = time.perf_counter()
            for index, metrics in enumerate(payloads):
                client.send_batch("bench", metrics, seq=index * BATCH + 1)
            ingest = batches * BATCH / (time.perf_counter() - started)
            client.open_run("long", {"experiment": "bench", "start_time": time.time()})
            for first in range(0, history_points, 10_000):
                points = [("loss", s, 1.7e9 + s, float(s % 977)) for s in range(first, first + 10_000)]
                client.send_batch("long", points, seq=first + 1)
            reads = []
            for _ in range(5):
                started = time.perf_counter()
                client.history("long", "loss", points=2000)
                reads.append((time.perf_counter() - started) * 1000)
        return {"points_per_s": ingest, "history_ms": statistics.median(reads)}
    finally:
        server.stop()


def bench_mlflow(batches: int, workdir: Path) -> float:
    """Points per second through ``log_batch`` into ``mlflow server`` (SQLite)."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    server = MlflowServer(workdir / "mlflow").start()
    try:
        client = MlflowClient(server.url)
        run = client.create_run(client.create_experiment("bench"))
        payloads = [[Metric(k, v, int(t * 1000), s or 0) for k, s, t, v in _batch(i)] for i in range(batches)]
        started = time.perf_counter()
        for metrics in payloads:
            client.log_batch(run.info.run_id, metrics=metrics, synchronous=True)
        return batches * BATCH / (time.perf_counter() - started)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="the server's store URL (default: a fresh SQLite file)")
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--mlflow-batches", type=int, default=20)
    parser.add_argument("--history-points", type=int, default=200_000)
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-server-") as scratch:
        workdir = Path(scratch)
        store = args.store or f"sqlite:///{workdir / 'server.db'}"
        result = bench_tracelet(store, args.batches, args.history_points, workdir)
        print(f"tracelet server ingest: {result['points_per_s']:,.0f} points/s ({store.split(':')[0]})")
        print(f"history of {args.history_points:,} points downsampled to 2,000: {result['history_ms']:.0f} ms")
        if not args.no_mlflow:
            mlflow = bench_mlflow(args.mlflow_batches, workdir)
            print(f"mlflow server log_batch: {mlflow:,.0f} points/s; ratio {result['points_per_s'] / mlflow:.1f}x")


if __name__ == "__main__":
    main()

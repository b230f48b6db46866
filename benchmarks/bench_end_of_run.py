"""How long the end of a short Lightning run waits for its trackers: the last training step to the FINISHED report.

A sweep pays this wait on every trial. The same tiny model as ``bench_lightning.py`` (32→32→2 MLP,
batch 16, ``--metrics`` metrics logged every step) trains for ``--steps`` steps with
``TraceletLogger`` (its defaults: delivery process, system metrics, git and environment capture) to an
MLflow SQLite store, in a fresh subprocess with its own directory and ``HOME``, on:

* an existing store (a copy of an initialised ``mlflow.db``), the common case;
* a new store (no ``mlflow.db`` yet: MLflow creates it and runs its migrations, ~3 s on 2 cores).

Per run:

* end wait s: from the end of the last training step (``on_train_batch_end``) to the return of the
  logger's ``finalize``, whose report is the FINISHED line;
* finalize s: the ``finalize`` call alone (Lightning's own teardown comes before it);
* train s: the first training step to the last;
* last step / tracker open after logger s: when, counted from the logger's creation, training ended and
  the delivery process had the MLflow run open (from ``delivery.log``): the end waits for the later.
* all arrived: every ``metrics × steps`` point is in the MLflow store, read back with MLflow's client.

``--repeats`` rounds alternate the two stores; medians are reported. ``--tracelet-root`` runs another
checkout of Tracelet (e.g. ``git archive <commit> | tar -x -C /tmp/base``) for a before/after comparison.

    python benchmarks/bench_end_of_run.py                         # 100 steps, 5 rounds (~3 min on 2 cores)
    python benchmarks/bench_end_of_run.py --json benchmarks/results/bench_end_of_run-$(date +%F).json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
STORES = ("existing", "new")
EXISTING_TARGET_S = 1.0
CHILD_TIMEOUT_S = 600.0


def run_child(workdir: Path, steps: int, metrics: int) -> dict[str, Any]:
    """Train once and return the times (see the module docstring). Runs in a fresh interpreter."""
    import warnings

    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    import lightning.pytorch as pl
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from tracelet_lightning import TraceletLogger

    marks: dict[str, float] = {}

    class TimedLogger(TraceletLogger):
        def finalize(self, status: str) -> None:
            marks.setdefault("finalize_start", time.perf_counter())
            super().finalize(status)
            marks.setdefault("finalize_end", time.perf_counter())

    created = time.time(), time.perf_counter()
    logger = TimedLogger(experiment="end-of-run", backends=["mlflow"])  # created first, as scripts do
    keys = [f"m{i:02d}" for i in range(metrics)]

    class BenchModel(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = nn.functional.cross_entropy(self.net(x), y)
            self.log_dict({key: loss.detach() * (i + 1) for i, key in enumerate(keys)})
            return loss

        def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
            now = time.perf_counter()
            marks.setdefault("first_step", now)
            marks["last_step"] = now

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16 * steps, 32, generator=generator)
    data = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)
    trainer = pl.Trainer(
        max_steps=steps,
        logger=logger,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(BenchModel(), data)
    report = logger.report
    assert report is not None
    native = next(b.native_id for b in report.backends if b.name == "mlflow")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
    arrived = sum(len(client.get_metric_history(native, key)) for key in keys) if native else 0
    opened = _tracker_opened_at(Path(logger.log_dir) / "delivery.log")
    return {
        "end_wait_s": marks["finalize_end"] - marks["last_step"],
        "last_step_after_logger_s": marks["last_step"] - created[1],
        "tracker_open_after_logger_s": None if opened is None else opened - created[0],
        "finalize_s": marks["finalize_end"] - marks["finalize_start"],
        "train_s": marks["last_step"] - marks["first_step"],
        "complete": report.complete,
        "all_arrived": arrived == steps * metrics,
        "summary": report.summary(),
    }


def _tracker_opened_at(delivery_log: Path) -> float | None:
    """When the delivery process had the MLflow run open (its log's ``open as`` line), as a Unix time."""
    for line in delivery_log.read_text(errors="replace").splitlines():
        if " open as " in line:
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            return stamp.timestamp()
    return None


def run_one(store: str, workdir: Path, args: argparse.Namespace, template: Path) -> dict[str, Any]:
    """One child run on a copy of ``template`` (existing) or on no store at all (new)."""
    sys.path.insert(0, str(REPO_ROOT))
    from benchmarks._common import isolated_env

    workdir.mkdir(parents=True)
    database = workdir / "mlflow.db"
    if store == "existing":
        shutil.copyfile(template, database)
    roots = [str(args.tracelet_root.resolve())] if args.tracelet_root else []
    env = isolated_env(
        workdir,
        f"{os.getpid()}-{workdir.name}",
        MLFLOW_TRACKING_URI=f"sqlite:///{database}",
        PYTHONPATH=os.pathsep.join([*roots, str(REPO_ROOT)]),
    )
    result_file = workdir / "result.json"
    command = [sys.executable, __file__, "--child", "--workdir", str(workdir), "--result", str(result_file)]
    command += ["--steps", str(args.steps), "--metrics", str(args.metrics)]
    started = time.perf_counter()
    subprocess.run(command, cwd=workdir, env=env, check=True, timeout=CHILD_TIMEOUT_S, capture_output=True)
    result: dict[str, Any] = json.loads(result_file.read_text())
    result.update(store=store, child_s=time.perf_counter() - started)
    return result


def make_template(root: Path) -> Path:
    """An initialised MLflow SQLite store, copied for every "existing" run."""
    path = root / "mlflow-template.db"
    code = "import sys; from mlflow.tracking import MlflowClient; MlflowClient(sys.argv[1]).search_experiments()"
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true")
    subprocess.run([sys.executable, "-c", code, f"sqlite:///{path}"], env=env, check=True, capture_output=True)
    return path


def summarise(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Medians per store."""
    import statistics

    summary = {}
    for store in STORES:
        runs = [r for r in results if r["store"] == store]
        if runs:
            summary[store] = {
                key: statistics.median(r[key] or 0.0 for r in runs)
                for key in (
                    "end_wait_s",
                    "finalize_s",
                    "train_s",
                    "last_step_after_logger_s",
                    "tracker_open_after_logger_s",
                )
            } | {
                "min_end_wait_s": min(r["end_wait_s"] for r in runs),
                "max_end_wait_s": max(r["end_wait_s"] for r in runs),
                "all_arrived": all(r["all_arrived"] for r in runs),
                "runs": len(runs),
            }
    return summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="training steps per run (default 100)")
    parser.add_argument("--metrics", type=int, default=20, help="metrics logged per step (default 20)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds, each one run per store (default 5)")
    parser.add_argument("--only", choices=STORES, help="run one store kind only")
    parser.add_argument("--tracelet-root", type=Path, help="another Tracelet checkout to measure instead")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        args.result.write_text(json.dumps(run_child(args.workdir, args.steps, args.metrics)))
        return 0
    stores = [args.only] if args.only else list(STORES)
    root = Path(tempfile.mkdtemp(prefix="tracelet-end-of-run-"))
    info = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpus": os.cpu_count()}
    info["load_average_1m"] = os.getloadavg()[0]
    print(f"bench_end_of_run: {args.steps} steps × {args.metrics} metrics, {args.repeats} round(s), in {root}")
    results = []
    try:
        template = make_template(root)
        for round_ in range(args.repeats):
            for store in stores if round_ % 2 == 0 else stores[::-1]:
                result = run_one(store, root / f"r{round_}-{store}", args, template)
                results.append(result)
                print(
                    f"  round {round_ + 1}/{args.repeats} {store:<8} end wait {result['end_wait_s']:.2f} s "
                    f"(finalize {result['finalize_s']:.2f} s, training {result['train_s']:.2f} s; after the logger's "
                    f"creation: last step {result['last_step_after_logger_s']:.2f} s, MLflow run open "
                    f"{result['tracker_open_after_logger_s'] or 0:.2f} s), "
                    f"arrived {result['all_arrived']}",
                    flush=True,
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary = summarise(results)
    print(f"\nmedians of {args.repeats} round(s) (load average at start {info['load_average_1m']:.1f}):")
    for store, figures in summary.items():
        print(
            f"  {store:<8} end wait {figures['end_wait_s']:.2f} s (min {figures['min_end_wait_s']:.2f}, max "
            f"{figures['max_end_wait_s']:.2f}), finalize {figures['finalize_s']:.2f} s, training "
            f"{figures['train_s']:.2f} s, after the logger's creation: last step "
            f"{figures['last_step_after_logger_s']:.2f} s, MLflow run open "
            f"{figures['tracker_open_after_logger_s']:.2f} s; "
            f"every point arrived: {figures['all_arrived']}"
        )
    passed = None if "existing" not in summary else summary["existing"]["end_wait_s"] < EXISTING_TARGET_S
    verdict = "SKIP" if passed is None else "PASS" if passed else "FAIL"
    print(f"\ntarget: {verdict}  end wait on an existing store under {EXISTING_TARGET_S:g} s")
    if args.json:
        payload = {"info": info, "args": {k: str(v) for k, v in vars(args).items() if k != "child"}}
        payload |= {"summary": summary, "target_passed": passed, "runs": results}
        args.json.write_text(json.dumps(payload, indent=2))
    return 0 if passed is not False else 1


if __name__ == "__main__":
    sys.exit(main())

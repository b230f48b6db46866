"""What logging costs a Lightning training loop: TraceletLogger against Lightning's own loggers.

The same tiny model trains for ``--steps`` steps on one torch thread, logging ``--metrics`` metrics
every step (``self.log_dict``), once per configuration: no logger, a do-nothing Logger, CSVLogger,
MLFlowLogger (SQLite; HTTP server; HTTP with ``synchronous=False``), WandbLogger (offline), Aim's
AimLogger, and TraceletLogger to the same stores (MLflow SQLite, MLflow HTTP, and all four trackers
at once: MLflow SQLite, W&B offline, ClearML offline, Aim local). Every configuration runs in a
fresh subprocess in its own directory; ``--repeats`` rounds are interleaved (the order rotates per
round) and medians are reported. Per configuration:

* in-band µs/step: time inside the logger's ``log_metrics`` + ``save`` (Lightning calls ``save``
  after every ``log_metrics``) on the training thread, measured by one timing subclass put over every
  logger class alike;
* wall overhead µs/step: the training loop's wall time (``on_train_start`` to ``on_train_end``)
  minus that of the no-logger run of the same round, per step;
* drain s: from the end of the training loop until every point is readable in the store (the
  logger's own finalize, plus ``wandb.finish()`` / ``mlflow.flush_async_logging()`` where the
  logger leaves that to the user), checked by reading each store back with its own reader;
* all arrived: every one of the ``metrics × steps`` points is in every store the logger writes to.

Targets (issues 2 and 4) are checked at the end, with the import cost of ``tracelet_lightning``.

    python benchmarks/bench_lightning.py                      # everything, 3 rounds (~16 min on 2 cores)
    python benchmarks/bench_lightning.py --only none,tracelet-all4 --steps 300 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support and benchmarks._common

from benchmarks._common import (
    SERVER_TAG_VARIABLE,
    TAG_VARIABLE,
    InBandTimer,
    count_aim,
    count_clearml,
    count_csv,
    count_journal,
    count_mlflow,
    count_wandb,
    format_table,
    isolated_env,
    machine_busy_seconds,
    median,
    tagged_cpu_seconds,
    thread_cpu_seconds,
    time_imports,
    timed,
    tracelet_report,
    wait_for_quiet,
    wait_for_tagged_processes,
)

INBAND_TARGET_US = 100.0
OVERHEAD_SHARE_TARGET = 0.1  # of MLFlowLogger's on the same SQLite store
IMPORT_TARGET_S = 0.2
CHILD_TIMEOUT_PAD_S = 600.0
DRAIN_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Config:
    """One benchmarked logger setup: ``stores`` are what its points must reach."""

    name: str
    description: str
    stores: tuple[str, ...] = ()
    http: bool = False
    default: bool = True


CONFIGS = {
    c.name: c
    for c in [
        Config("none", "Trainer(logger=False)"),
        Config("noop", "a do-nothing Logger"),
        Config("csv", "CSVLogger", ("csv",)),
        Config("mlflow-sqlite", "MLFlowLogger, SQLite store", ("mlflow",)),
        Config("mlflow-http", "MLFlowLogger, mlflow server", ("mlflow",), http=True),
        Config("mlflow-http-async", "MLFlowLogger(synchronous=False), mlflow server", ("mlflow",), http=True),
        Config("wandb", "WandbLogger(offline=True)", ("wandb",)),
        Config("aim", "AimLogger(log_system_params=False), local repo", ("aim",)),
        Config("tracelet-journal", "TraceletLogger, journal only (no tracker)", ("journal",), default=False),
        Config("tracelet-mlflow-sqlite", "TraceletLogger -> MLflow SQLite", ("mlflow",)),
        Config("tracelet-mlflow-http", "TraceletLogger -> mlflow server", ("mlflow",), http=True),
        Config(
            "tracelet-all4",
            "TraceletLogger -> MLflow SQLite + W&B offline + ClearML offline + Aim",
            ("mlflow", "wandb", "clearml", "aim"),
        ),
    ]
}
TRACELET_BACKENDS = {
    "tracelet-journal": [],
    "tracelet-mlflow-sqlite": ["mlflow"],
    "tracelet-mlflow-http": ["mlflow"],
    "tracelet-all4": ["mlflow", "wandb", "clearml", "aim"],
}


# ------------------------------------------------------------------------------------------------
# child: one configuration, one fresh process
# ------------------------------------------------------------------------------------------------


def metric_keys(count: int) -> list[str]:
    return [f"m{i:02d}" for i in range(count)]


def run_child(config: Config, workdir: Path, steps: int, metrics: int, mlflow_http: str | None) -> dict[str, Any]:
    """Train once with ``config``'s logger and return what was measured (see the module docstring)."""
    import warnings

    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")  # Lightning's "few dataloader workers" and the like, every run alike
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import Logger
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    keys = metric_keys(metrics)

    class BenchModel(pl.LightningModule):
        def __init__(self, metrics: int, lr: float = 0.01) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
            self.register_buffer("scales", torch.arange(1, metrics + 1, dtype=torch.float32))

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = nn.functional.cross_entropy(self.net(x), y)
            values = (loss.detach() * self.scales).unbind()  # 20 distinct 0-d tensors, as real metrics are
            self.log_dict(dict(zip(keys, values, strict=True)), on_step=True, on_epoch=False)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    class Clock(pl.Callback):
        """Wall and CPU time of the training loop, this process and its helper processes."""

        def __init__(self) -> None:
            self.marks: dict[str, float] = {}
            self.threads: dict[str, dict[str, float]] = {}

        def _mark(self, name: str) -> None:
            wall = time.perf_counter()  # first at the end of the loop, last at its start
            self.marks[f"{name}_cpu"] = time.process_time()
            self.marks[f"{name}_main_cpu"] = time.thread_time()
            self.threads[name] = thread_cpu_seconds()
            helpers = tagged_cpu_seconds(os.environ[TAG_VARIABLE])
            if config.http:  # the server's work for this run is part of its cost
                helpers += tagged_cpu_seconds(os.environ[SERVER_TAG_VARIABLE])
            self.marks[f"{name}_helper_cpu"] = helpers
            self.marks[f"{name}_machine_cpu"] = machine_busy_seconds()
            self.marks[name] = wall if name == "train_end" else time.perf_counter()

        def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            self._mark("train_start")

        def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            self._mark("train_end")

        def thread_deltas(self) -> dict[str, float]:
            start, end = self.threads["train_start"], self.threads["train_end"]
            return {key: end[key] - start.get(key, 0.0) for key in end}

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(steps * 16, 32, generator=generator)
    data = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)
    t_setup = time.perf_counter()
    logger = make_logger(config, workdir, metrics, mlflow_http, Logger)
    clock = Clock()
    trainer = pl.Trainer(
        max_steps=steps,
        max_epochs=1,
        logger=logger,
        callbacks=[clock],
        log_every_n_steps=1,
        accelerator="cpu",
        devices=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(workdir),
    )
    trainer.fit(BenchModel(metrics), data)
    t_fit_end = time.perf_counter()
    finish_delivery(config, logger)
    t_flushed = time.perf_counter()

    expected = steps * metrics
    counts: dict[str, int] = {}
    t_ready: float | None = t_flushed
    polled = False
    while config.stores:
        t_read = time.perf_counter()
        counts = count_points(config, logger, workdir, keys, mlflow_http)
        if all(counts.get(store) == expected for store in config.stores):
            t_ready = t_read if polled else t_flushed  # the points were in the store when this read began
            break
        if t_read > t_flushed + DRAIN_TIMEOUT_S:
            t_ready = None
            break
        polled = True
        time.sleep(0.25)
    marks = clock.marks
    timed = logger if isinstance(logger, InBandTimer) else None
    return {
        "config": config.name,
        "steps": steps,
        "metrics": metrics,
        "inband_us_per_step": timed.inband_ns / steps / 1000 if timed else None,
        "log_metrics_calls": timed.log_calls if timed else 0,
        "setup_s": marks["train_start"] - t_setup,
        "loop_s": marks["train_end"] - marks["train_start"],
        "loop_cpu_s": marks["train_end_cpu"] - marks["train_start_cpu"],
        "loop_main_thread_cpu_s": marks["train_end_main_cpu"] - marks["train_start_main_cpu"],
        "loop_thread_cpu_s": clock.thread_deltas(),
        "loop_helper_cpu_s": marks["train_end_helper_cpu"] - marks["train_start_helper_cpu"],
        "loop_machine_cpu_s": marks["train_end_machine_cpu"] - marks["train_start_machine_cpu"],
        "fit_teardown_s": t_fit_end - marks["train_end"],
        "drain_s": None if t_ready is None or not config.stores else t_ready - marks["train_end"],
        "expected_per_store": expected,
        "counts": counts,
        "all_arrived": all(counts.get(s) == expected for s in config.stores) if config.stores else None,
    }


def make_logger(config: Config, workdir: Path, metrics: int, mlflow_http: str | None, logger_base: type) -> Any:
    name = config.name
    experiment = f"bench-{name}"
    sqlite_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    if name == "none":
        return False
    if name == "noop":

        class NoopLogger(logger_base):  # type: ignore[misc, valid-type]
            name = "noop"
            version = "0"

            def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
                pass

            def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
                pass

        return timed(NoopLogger)()
    if name == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return timed(CSVLogger)(save_dir=str(workdir / "csv"), name=experiment)
    if name.startswith("mlflow-"):
        from lightning.pytorch.loggers import MLFlowLogger

        uri = mlflow_http if config.http else sqlite_uri
        synchronous = False if name == "mlflow-http-async" else None  # None: MLflow's default (synchronous)
        return timed(MLFlowLogger)(experiment_name=experiment, tracking_uri=uri, synchronous=synchronous)
    if name == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        return timed(WandbLogger)(project=experiment, save_dir=str(workdir), offline=True)
    if name == "aim":
        from aim.pytorch_lightning import AimLogger

        return timed(AimLogger)(repo=str(workdir / "aim"), experiment=experiment, log_system_params=False)
    if name in TRACELET_BACKENDS:
        from tracelet_lightning import TraceletLogger

        return timed(TraceletLogger)(
            experiment=experiment, backends=TRACELET_BACKENDS[name], journal_dir=str(workdir / ".tracelet")
        )
    raise ValueError(f"unknown configuration {name!r}")


def finish_delivery(config: Config, logger: Any) -> None:
    """What a user must call after ``fit`` for the logger's points to be in the store."""
    if config.name == "wandb":
        logger.experiment.finish()
    elif config.name == "mlflow-http-async":
        import mlflow

        mlflow.flush_async_logging()


def count_points(
    config: Config, logger: Any, workdir: Path, keys: list[str], mlflow_http: str | None
) -> dict[str, int]:
    """Points of ``keys`` found in each store of ``config``, read back with the tracker's own reader."""
    sqlite_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    mlflow_uri = mlflow_http if config.http else sqlite_uri
    if config.name == "csv":
        return {"csv": count_csv(Path(logger.log_dir) / "metrics.csv", keys)}
    if config.name.startswith("mlflow-"):
        return {"mlflow": count_mlflow(mlflow_uri, logger.run_id, keys)}
    if config.name == "wandb":
        (path,) = (workdir / "wandb").glob("offline-run-*/run-*.wandb")
        return {"wandb": count_wandb(path, keys)}
    if config.name == "aim":
        return {"aim": count_aim(str(workdir / "aim"), logger._run_hash, keys)}
    if config.name == "tracelet-journal":
        return {"journal": count_journal(Path(logger.report.journal), keys)}
    counts: dict[str, int] = {}
    for backend in tracelet_report(logger).backends:
        if not backend.native_id:
            counts[backend.name] = 0
        elif backend.name == "mlflow":
            counts["mlflow"] = count_mlflow(mlflow_uri, backend.native_id, keys)
        elif backend.name == "wandb":
            from tests.support.wandb_reader import run_file

            counts["wandb"] = count_wandb(run_file(backend.location or ""), keys)
        elif backend.name == "aim":
            counts["aim"] = count_aim(str(workdir / "aim"), backend.native_id, keys)
        elif backend.name == "clearml":
            counts["clearml"] = count_clearml(Path(os.environ["CLEARML_CACHE_DIR"]), backend.native_id, keys)
    return counts


# ------------------------------------------------------------------------------------------------
# parent: rounds of children, the table, the targets
# ------------------------------------------------------------------------------------------------


def mlflow_template(root: Path) -> Path:
    """An initialised MLflow SQLite store: each configuration gets a copy (a fresh one costs ~3 s of migrations)."""
    path = root / "mlflow-template.db"
    code = "import sys; from mlflow.tracking import MlflowClient; MlflowClient(sys.argv[1]).search_experiments()"
    env = isolated_env(root / "template", "template")
    subprocess.run([sys.executable, "-c", code, f"sqlite:///{path}"], env=env, check=True, capture_output=True)
    return path


def server_tag() -> str:
    return f"{os.getpid()}-mlflow-server"


def run_least_disturbed(
    config: Config, root: Path, round_: int, args: argparse.Namespace, template: Path, server: Any
) -> dict[str, Any]:
    """Run one configuration once the machine is quiet; rerun it (up to ``--retries`` times) while other
    processes took more than ``--max-other-load`` % of the CPU during its loop, and keep the least disturbed."""
    best: dict[str, Any] | None = None
    for attempt in range(args.retries + 1):
        waited = wait_for_quiet(args.max_other_load, args.quiet_wait)
        result = run_config(config, root, f"r{round_}-{config.name}-a{attempt}", args, template, server)
        result.update(round=round_, attempt=attempt, quiet_wait_s=waited)
        if "loop_s" in result:
            result["other_load_percent"] = other_load_percent(result)
        if best is None or result.get("other_load_percent", 100.0) < best.get("other_load_percent", 100.0):
            best = result
        if result.get("other_load_percent", 0.0) <= args.max_other_load:
            break
    assert best is not None
    return best


def run_config(
    config: Config, root: Path, name: str, args: argparse.Namespace, template: Path, server: Any
) -> dict[str, Any]:
    """Run one configuration in a fresh subprocess; wait for every process it started to end."""
    server = server.url if server is not None else None
    workdir = root / name
    workdir.mkdir(parents=True)
    shutil.copyfile(template, workdir / "mlflow.db")
    tag = f"{os.getpid()}-{workdir.name}"
    uri = server if config.http else f"sqlite:///{workdir / 'mlflow.db'}"
    env = isolated_env(workdir, tag, MLFLOW_TRACKING_URI=uri or "", TRACELET_MLFLOW__TRACKING_URI=uri or "")
    env[SERVER_TAG_VARIABLE] = server_tag()
    env.update(TRACELET_AIM__REPO=str(workdir / "aim"), TRACELET_WANDB__MODE="offline")
    env.update(args.tracelet_env)
    result_path = workdir / "result.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", config.name, "--workdir", str(workdir)]
    command += ["--steps", str(args.steps), "--metrics", str(args.metrics), "--result", str(result_path)]
    if server:
        command += ["--mlflow-http", server]
    started = time.perf_counter()
    with (workdir / "child.log").open("wb") as log:
        try:
            code = subprocess.run(
                command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                timeout=args.steps * 0.2 + CHILD_TIMEOUT_PAD_S, check=False,
            ).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            code = -1
    elapsed = time.perf_counter() - started
    leftover_s = wait_for_tagged_processes(tag, timeout=120.0)
    if code == 0 and result_path.exists():
        result = json.loads(result_path.read_text())
    else:
        tail = (workdir / "child.log").read_text(errors="replace")[-3000:]
        print(f"  !! {config.name} failed (exit {code}); last output:\n{tail}", file=sys.stderr)
        result = {"config": config.name, "error": f"exit {code}"}
    result.update(child_s=elapsed, helpers_exit_s=leftover_s)
    return result


def other_load_percent(run: dict[str, Any]) -> float:
    """Share of the machine's CPU that processes outside this run used during its training loop."""
    others = run["loop_machine_cpu_s"] - run["loop_cpu_s"] - run["loop_helper_cpu_s"]
    return max(others, 0.0) / (run["loop_s"] * (os.cpu_count() or 1)) * 100


def summarise(results: list[dict[str, Any]], names: list[str]) -> dict[str, dict[str, Any]]:
    """Medians over rounds; the wall overhead is paired with the no-logger run of the same round."""
    none_loop = {r["round"]: r["loop_s"] for r in results if r["config"] == "none" and "loop_s" in r}
    summary: dict[str, dict[str, Any]] = {}
    for name in names:
        runs = [r for r in results if r["config"] == name]
        ok = [r for r in runs if "loop_s" in r]
        overheads = [(r["loop_s"] - none_loop[r["round"]]) / r["steps"] * 1e6 for r in ok if r["round"] in none_loop]
        arrived = [r["all_arrived"] for r in ok]
        summary[name] = {
            "runs": len(runs),
            "failed": len(runs) - len(ok),
            "inband_us_per_step": median(r["inband_us_per_step"] for r in ok),
            "overhead_us_per_step": median(overheads) if name != "none" else 0.0,
            "loop_s": median(r["loop_s"] for r in ok),
            "main_cpu_us_per_step": median(r["loop_main_thread_cpu_s"] / r["steps"] * 1e6 for r in ok),
            "threads_cpu_us_per_step": median(
                (r["loop_cpu_s"] - r["loop_main_thread_cpu_s"]) / r["steps"] * 1e6 for r in ok
            ),
            "helper_cpu_us_per_step": median(r["loop_helper_cpu_s"] / r["steps"] * 1e6 for r in ok),
            "other_load_percent": median(r["other_load_percent"] for r in ok),
            "attempts": [r["attempt"] + 1 for r in runs],
            "setup_s": median(r["setup_s"] for r in ok),
            "drain_s": median(r["drain_s"] for r in ok),
            "all_arrived": None if not ok or arrived[0] is None else all(arrived) and len(ok) == len(runs),
            "counts": [r.get("counts") for r in ok],
        }
    return summary


def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{round(value, digits) + 0.0:,.{digits}f}"  # + 0.0: no "-0"


LEGEND = """\
µs columns are per training step. in-band: inside log_metrics + save on the training thread. overhead: training
loop wall time minus the no-logger run's, same round. × MLflow-SQLite: overhead / MLFlowLogger-SQLite's overhead.
main / threads CPU: CPU of the training thread / of the process's other threads during the loop. helpers CPU: the
processes the run started (Tracelet's delivery process, wandb-core) and, for HTTP configs, the mlflow server.
other load: share of the machine's CPU used by unrelated processes during the loop (high = disturbed figures).
setup: logger creation to the first step. drain: end of the loop until every point was read back from the store."""


def print_table(summary: dict[str, dict[str, Any]], max_other_load: float) -> None:
    reference = summary.get("mlflow-sqlite", {}).get("overhead_us_per_step")
    rows = []
    for name, s in summary.items():
        overhead = s["overhead_us_per_step"]
        ratio = overhead / reference if overhead is not None and reference else None
        arrived = {None: "n/a", True: "yes", False: "NO"}[s["all_arrived"]]
        rows.append(
            [
                name,
                fmt(s["inband_us_per_step"]),
                fmt(overhead),
                fmt(ratio, 3),
                fmt(s["main_cpu_us_per_step"]),
                fmt(s["threads_cpu_us_per_step"]),
                fmt(s["helper_cpu_us_per_step"]),
                fmt(s["other_load_percent"]),
                fmt(s["setup_s"], 2),
                fmt(s["drain_s"], 2),
                arrived + (f" ({s['failed']} failed)" if s["failed"] else ""),
            ]
        )
    header = ["config", "in-band µs", "overhead µs", "× MLflow-SQLite", "main CPU µs", "threads CPU µs"]
    header += ["helpers CPU µs", "other load %", "setup s", "drain s", "all arrived"]
    print(format_table(header, rows))
    print(LEGEND)
    disturbed = max((s["other_load_percent"] or 0.0 for s in summary.values()), default=0.0)
    if disturbed > max_other_load:
        print(
            f"WARNING: other processes used up to {disturbed:.0f} % of this machine's CPU during the training loops "
            "(after retries); wall-time figures are disturbed: rerun on a quiet machine."
        )


def check_targets(summary: dict[str, dict[str, Any]], imports: dict[str, Any] | None) -> list[tuple[str, bool | None]]:
    """Each target of issues 2 and 4 as (line, passed); passed is None when its figures were not measured."""

    def get(name: str, field: str) -> float | None:
        return summary.get(name, {}).get(field)

    checks: list[tuple[str, bool | None]] = []
    for name in ("tracelet-mlflow-sqlite", "tracelet-mlflow-http", "tracelet-all4"):
        value = get(name, "inband_us_per_step")
        checks.append(
            (
                f"[issue 2/4] {name} in-band {fmt(value, 1)} µs/step <= {INBAND_TARGET_US:.0f}",
                None if value is None else value <= INBAND_TARGET_US,
            )
        )
    ours, theirs = get("tracelet-mlflow-sqlite", "overhead_us_per_step"), get("mlflow-sqlite", "overhead_us_per_step")
    limit = None if theirs is None else theirs * OVERHEAD_SHARE_TARGET
    checks.append(
        (
            f"[issue 2] tracelet-mlflow-sqlite wall overhead {fmt(ours)} µs/step <= 1/10 of MLFlowLogger-SQLite's "
            f"({fmt(theirs)} -> {fmt(limit)})",
            None if ours is None or limit is None else ours <= limit,
        )
    )
    if imports is not None:
        added = imports["tracelet_lightning_added_s"]
        checks.append(
            (f"[issue 2] import tracelet_lightning adds {added:.3f} s <= {IMPORT_TARGET_S}", added <= IMPORT_TARGET_S)
        )
    fan = get("tracelet-all4", "overhead_us_per_step")
    for rival in ("mlflow-sqlite", "wandb", "aim"):
        theirs = get(rival, "overhead_us_per_step")
        checks.append(
            (
                f"[issue 4] tracelet-all4 wall overhead {fmt(fan)} µs/step < {rival}'s {fmt(theirs)}",
                None if fan is None or theirs is None else fan < theirs,
            )
        )
    for name in ("tracelet-mlflow-sqlite", "tracelet-mlflow-http", "tracelet-all4"):
        if name in summary:
            arrived = summary[name]["all_arrived"]
            counts = summary[name]["counts"]
            checks.append((f"[issue 2/4] {name}: every point in every store {counts}", bool(arrived)))
    return checks


def measure_imports(repeats: int, root: Path) -> dict[str, Any]:
    """What importing tracelet_lightning (and, for scale, mlflow) adds to ``import lightning.pytorch``.

    Two figures per package, each a median over fresh interpreters: the time of the import itself
    right after ``import lightning.pytorch`` in the same interpreter (what it adds; the target), and
    the difference between the total of both imports and ``import lightning.pytorch`` alone
    (noisier: two separate medians of seconds-long imports).
    """
    env = isolated_env(root / "imports", "imports")
    lightning = "import lightning.pytorch"
    cases = {
        "lightning": ("", lightning),
        "tracelet_lightning": (lightning, "import tracelet_lightning"),
        "mlflow": (lightning, "import mlflow"),
    }
    seconds = time_imports(cases, repeats, env)
    base = median(total for total, _ in seconds["lightning"]) or 0.0
    figures: dict[str, Any] = {"repeats": repeats, "seconds": seconds, "lightning_s": base}
    for name in ("tracelet_lightning", "mlflow"):
        figures[f"{name}_added_s"] = median(alone for _, alone in seconds[name])
        figures[f"lightning_and_{name}_s"] = median(total for total, _ in seconds[name])
        figures[f"{name}_added_between_processes_s"] = (figures[f"lightning_and_{name}_s"] or 0.0) - base
    return figures


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version.split()[0]}
    for package in ("torch", "lightning", "mlflow", "wandb", "clearml", "aim", "tracelet-lightning"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def _tracelet_setting(text: str) -> tuple[str, str]:
    """``TRACELET_X=VALUE`` as ``(name, value)``, for ``--tracelet-env``."""
    name, equals, value = text.partition("=")
    if not name.startswith("TRACELET_") or not equals:
        raise argparse.ArgumentTypeError(f"expected TRACELET_<SETTING>=<VALUE>, got {text!r}")
    return name, value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps per run (default 1000)")
    parser.add_argument("--metrics", type=int, default=20, help="metrics logged every step (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; medians reported (default 3)")
    parser.add_argument(
        "--only",
        default="",
        help=f"comma list of configurations (none is always added); default: all but tracelet-journal. "
        f"Known: {', '.join(CONFIGS)}",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--import-repeats", type=int, default=5, help="fresh interpreters per import timing (0: skip)")
    parser.add_argument(
        "--max-other-load",
        type=float,
        default=15.0,
        help="rerun a configuration when other processes used more than this %% of the machine's CPU during its "
        "loop (default 15)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=0,
        help="reruns of a disturbed configuration; 2 helps on a shared machine (default 0)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=10.0,
        help="seconds to wait, before each run, for the machine to be quiet (default 10)",
    )
    parser.add_argument(
        "--tracelet-env",
        action="append",
        default=[],
        type=_tracelet_setting,
        metavar="TRACELET_X=VALUE",
        help="a Tracelet setting for the Tracelet runs (repeatable), e.g. TRACELET_ENVIRONMENT=false",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory with every store")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mlflow-http", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        result = run_child(CONFIGS[args.child], args.workdir, args.steps, args.metrics, args.mlflow_http)
        args.result.write_text(json.dumps(result))
        return 0
    # Stopped with SIGTERM, or with Ctrl-C after being started in the background (where a shell sets
    # SIGINT to "ignore"): unwind, so that the running child is killed and the mlflow server stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    signal.signal(signal.SIGINT, signal.default_int_handler)

    names = [n.strip() for n in args.only.split(",") if n.strip()] or [n for n, c in CONFIGS.items() if c.default]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; known: {', '.join(CONFIGS)}")
    names = ["none", *[n for n in names if n != "none"]]
    root = Path(tempfile.mkdtemp(prefix="tracelet-bench-"))
    started = time.perf_counter()
    info = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpus": os.cpu_count()}
    info.update(versions())
    print(f"bench_lightning: {args.steps} steps × {args.metrics} metrics, {args.repeats} round(s), in {root}")
    print("  " + ", ".join(f"{k} {v}" for k, v in info.items()))
    for name in names:
        print(f"  {name:<24} {CONFIGS[name].description}")
    server = None
    results: list[dict[str, Any]] = []
    imports = None
    try:
        template = mlflow_template(root)
        if any(CONFIGS[n].http for n in names):
            from tests.support.mlflow_server import MlflowServer

            os.environ[TAG_VARIABLE] = server_tag()  # MlflowServer passes our environment on to the server
            try:
                server = MlflowServer(root / "mlflow-server").start()
            finally:
                del os.environ[TAG_VARIABLE]
            print(f"  mlflow server at {server.url}")
        for round_ in range(args.repeats):
            shift = round_ * len(names) // max(args.repeats, 1)
            for name in names[shift:] + names[:shift]:
                result = run_least_disturbed(CONFIGS[name], root, round_, args, template, server)
                results.append(result)
                print(
                    f"  round {round_ + 1}/{args.repeats} {name:<24} in-band {fmt(result.get('inband_us_per_step'))} "
                    f"µs/step, loop {fmt(result.get('loop_s'), 2)} s, drain {fmt(result.get('drain_s'), 2)} s, "
                    f"arrived {result.get('all_arrived')}, other load {fmt(result.get('other_load_percent'))} % "
                    f"(attempt {result['attempt'] + 1}, {result['child_s']:.0f} s)",
                    flush=True,
                )
        if args.import_repeats:
            imports = measure_imports(args.import_repeats, root)
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    summary = summarise(results, names)
    print()
    print(f"{args.steps} steps × {args.metrics} metrics, median of {args.repeats} round(s):")
    print_table(summary, args.max_other_load)
    if imports is not None:
        print(
            f"\nimports (median of {imports['repeats']} fresh interpreters): "
            f"lightning.pytorch {imports['lightning_s']:.2f} s; "
            f"tracelet_lightning adds {imports['tracelet_lightning_added_s']:.3f} s "
            f"(total {imports['lightning_and_tracelet_lightning_s']:.2f} s, "
            f"{imports['tracelet_lightning_added_between_processes_s']:+.2f} s against lightning alone); "
            f"mlflow adds {imports['mlflow_added_s']:.3f} s"
        )
    checks = check_targets(summary, imports)
    print("\ntargets:")
    for line, passed in checks:
        print(f"  {'SKIP' if passed is None else 'PASS' if passed else 'FAIL'}  {line}")
    total = time.perf_counter() - started
    print(f"\ntotal {total:.0f} s" + (f"; stores kept in {root}" if args.keep else ""))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "info": info,
                    "args": {k: str(v) for k, v in vars(args).items() if not k.startswith(("child", "workdir"))},
                    "summary": summary,
                    "imports": imports,
                    "targets": [{"target": line, "passed": passed} for line, passed in checks],
                    "runs": results,
                    "total_s": total,
                },
                indent=2,
            )
        )
    return 0 if all(passed is not False for _, passed in checks) else 1


if __name__ == "__main__":
    sys.exit(main())

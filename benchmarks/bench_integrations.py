"""Per-iteration cost of Tracelet's XGBoost and Transformers callbacks against MLflow's own, in one run.

    .venv/bin/python benchmarks/bench_integrations.py               # both libraries, 3 rounds (~3 min on 2 cores)
    .venv/bin/python benchmarks/bench_integrations.py --only xgboost --rounds 5 --json out.json

Each configuration trains in a fresh subprocess with its own directory, ``HOME`` and an initialised
MLflow SQLite store (``isolated_env`` of ``_common.py``); rounds run interleaved, the order rotated
each round; the table shows medians.

- XGBoost: 2,000 × 20 synthetic rows, ``--iterations`` boosting rounds (default 300) on one thread,
  ``train`` and ``valid`` evaluated with logloss and error (4 values per iteration). Configurations:
  no tracking; ``TraceletXGBoostCallback`` → MLflow SQLite (default delivery process);
  ``mlflow.xgboost.autolog()`` → the same kind of store.
- Transformers: a tiny BERT built from a config, ``--steps`` optimizer steps (default 100) with
  ``logging_steps=1`` (every step logs loss, grad_norm, learning_rate, epoch). Configurations: no
  tracking; ``TraceletTrainerCallback`` → MLflow SQLite; ``transformers.integrations.MLflowCallback``.

Columns: ``in-band µs/iter`` is the time spent inside the callback's per-iteration hook on the
training thread (XGBoost's ``after_iteration``, the Trainer's ``on_log``), the hook wrapped with a
timer in the child; ``ratio`` is Tracelet's in-band time over MLflow's in the same round (target ≤ 0.1);
``wall overhead µs/iter`` is the loop's time (first to last iteration, timed by a callback of the
library's own in every configuration) minus the untracked run's of the same round, per iteration: it
includes the CPU that background work (Tracelet's journal writer and delivery process, MLflow's async
batching) takes from training on a small machine, and is noisier on a busy one. Set-up and end
(opening the run, uploading the model: ``wall s`` includes them) are outside both per-iteration columns.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import format_table, isolated_env, median

CONFIGS = {
    "xgboost": ("none", "tracelet", "mlflow-autolog"),
    "transformers": ("none", "tracelet", "mlflow-callback"),
}


class HookTimer:
    """Wraps one method of a class with a perf_counter timer (the child's only instrumentation)."""

    def __init__(self, cls: type, name: str) -> None:
        self.ns = 0
        self.calls = 0
        original = getattr(cls, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter_ns()
            try:
                return original(*args, **kwargs)
            finally:
                self.ns += time.perf_counter_ns() - start
                self.calls += 1

        setattr(cls, name, timed)


class Ticks:
    """The time at the end of each iteration, from a callback of the library's own (the same in every
    configuration): the loop's time is first to last tick, without set-up and end."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def tick(self) -> None:
        self.times.append(time.perf_counter())

    def loop_s(self) -> float:
        return self.times[-1] - self.times[0]


def child_xgboost(config: str, iterations: int) -> dict[str, Any]:
    import numpy as np
    import xgboost as xgb

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 20))
    y = (X[:, 0] + rng.normal(scale=0.5, size=2000) > 0).astype(int)
    train, valid = xgb.DMatrix(X[:1500], label=y[:1500]), xgb.DMatrix(X[1500:], label=y[1500:])
    params = {"objective": "binary:logistic", "eval_metric": ["logloss", "error"], "max_depth": 3, "nthread": 1}
    ticks = Ticks()

    class Clock(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            ticks.tick()
            return False

    callbacks: list[Any] = [Clock()]
    timer = None
    if config == "tracelet":
        from tracelet_core.integrations.xgboost import TraceletXGBoostCallback

        timer = HookTimer(TraceletXGBoostCallback, "after_iteration")
        callbacks.append(TraceletXGBoostCallback(experiment="bench", backends=["mlflow"]))
    elif config == "mlflow-autolog":
        import mlflow
        import mlflow.xgboost
        from mlflow.xgboost import _autolog

        timer = HookTimer(_autolog.AutologCallback, "after_iteration")
        mlflow.set_experiment("bench")
        mlflow.xgboost.autolog()
    start = time.perf_counter()
    xgb.train(
        params, train, iterations, evals=[(train, "train"), (valid, "valid")], callbacks=callbacks, verbose_eval=False
    )
    wall = time.perf_counter() - start  # includes autolog's end (model upload): reported, not compared
    return _result(timer, wall, ticks)


def child_transformers(config: str, steps: int) -> dict[str, Any]:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainerCallback, TrainingArguments

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=64,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=16,
            num_labels=2,
        )
    )
    ids = torch.randint(0, 64, (256, 8), generator=torch.Generator().manual_seed(0))
    data = [{"input_ids": row, "labels": int(row[0] % 2)} for row in ids]
    args = TrainingArguments(
        output_dir="out",
        max_steps=steps,
        per_device_train_batch_size=8,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    ticks = Ticks()

    class Clock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            ticks.tick()

    callbacks: list[Any] = [Clock()]
    timer = None
    if config == "tracelet":
        from tracelet_core.integrations.transformers import TraceletTrainerCallback

        timer = HookTimer(TraceletTrainerCallback, "on_log")
        callbacks.append(TraceletTrainerCallback(experiment="bench", backends=["mlflow"]))
    elif config == "mlflow-callback":
        from transformers.integrations import MLflowCallback

        timer = HookTimer(MLflowCallback, "on_log")
        callbacks.append(MLflowCallback())
    trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=callbacks)
    start = time.perf_counter()
    trainer.train()
    return _result(timer, time.perf_counter() - start, ticks)


def _result(timer: HookTimer | None, wall: float, ticks: Ticks) -> dict[str, Any]:
    return {
        "inband_us": (timer.ns / 1000 / max(timer.calls, 1)) if timer else 0.0,
        "hook_calls": timer.calls if timer else 0,
        "wall_s": wall,
        "loop_s": ticks.loop_s(),
        "intervals": len(ticks.times) - 1,
    }


def run_child(library: str, config: str, template: Path, options: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{library}-{config}-"))
    try:
        shutil.copyfile(template, workdir / "mlflow.db")
        env = isolated_env(
            workdir,
            f"integrations-{library}-{config}",
            MLFLOW_TRACKING_URI=f"sqlite:///{workdir / 'mlflow.db'}",
            TRACELET_SYSTEM_METRICS="false",
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
        )
        count = options.iterations if library == "xgboost" else options.steps
        command = [sys.executable, __file__, "--child", f"{library}:{config}:{count}"]
        done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"{library}/{config} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def measure(options: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    from mlflow.tracking import MlflowClient

    template = Path(tempfile.mkdtemp(prefix="bench-mlflow-template-")) / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{template}").search_experiments()
    jobs = [(lib, config) for lib in options.only for config in CONFIGS[lib]]
    results: dict[str, list[dict[str, Any]]] = {f"{lib}/{config}": [] for lib, config in jobs}
    for round_index in range(options.rounds):
        shift = round_index % len(jobs)
        for lib, config in jobs[shift:] + jobs[:shift]:
            result = run_child(lib, config, template, options)
            result["round"] = round_index
            results[f"{lib}/{config}"].append(result)
            print(f"round {round_index} {lib}/{config}: {result}", file=sys.stderr)
    return results


def table(results: dict[str, list[dict[str, Any]]], options: argparse.Namespace) -> str:
    rows = []
    for lib in options.only:
        tracelet, other = f"{lib}/tracelet", f"{lib}/{CONFIGS[lib][2]}"
        ratios = [t["inband_us"] / o["inband_us"] for t, o in zip(results[tracelet], results[other], strict=True)]
        for config in CONFIGS[lib]:
            runs = results[f"{lib}/{config}"]
            overhead = [
                (run["loop_s"] - base["loop_s"]) / run["intervals"] * 1e6
                for run, base in zip(runs, results[f"{lib}/none"], strict=True)
            ]
            ratio = f"{median(ratios):.4f}" if config == "tracelet" else ("1" if config == CONFIGS[lib][2] else "-")
            rows.append(
                [
                    f"{lib}/{config}",
                    f"{median(r['inband_us'] for r in runs):,.1f}",
                    ratio,
                    f"{median(overhead):,.0f}",
                    f"{median(r['wall_s'] for r in runs):.2f}",
                ]
            )
    header = ["configuration", "in-band µs/iter", "ratio to MLflow's", "wall overhead µs/iter", "wall s"]
    return format_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(CONFIGS), default=sorted(CONFIGS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=300, help="XGBoost boosting rounds")
    parser.add_argument("--steps", type=int, default=100, help="Transformers optimizer steps (each logs)")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        library, config, count = options.child.split(":")
        child = child_xgboost if library == "xgboost" else child_transformers
        print(json.dumps(child(config, int(count))))
        return
    results = measure(options)
    print(table(results, options))
    if options.json:
        options.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

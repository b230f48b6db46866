"""DDP on two CPU processes (gloo, launched as Lightning launches scripts): one run, everything once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.lightning.models import history, mlflow_runs
from tracelet_core.pipeline.journal import Journal

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from tests.lightning.models import TinyData, TinyModel, trainer_kwargs
from tracelet_lightning import TraceletCallback, TraceletLogger

tracked_by = sys.argv[1]
# the logger's run delivers from a separate process (the default), the callback's from a thread
own = {} if tracked_by == "logger" else {"backends": ["mlflow"], "delivery": "thread"}
callback = TraceletCallback(system_metrics=True, system_metrics_interval=1, **own)
trainer = pl.Trainer(**trainer_kwargs(
    strategy="ddp", devices=2, max_epochs=2,
    logger=TraceletLogger(backends=["mlflow"]) if tracked_by == "logger" else False,
    callbacks=[callback, ModelCheckpoint(monitor="val/score", mode="min", save_top_k=-1)],
))
trainer.fit(TinyModel(val_scores=[0.5, 0.4]), TinyData())
print(f"rank {trainer.global_rank} done", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("tracked_by", ["logger", "callback"])
def test_two_processes_make_one_run_with_everything_once(mlflow_uri: str, tmp_path: Path, tracked_by: str) -> None:
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, str(script), tracked_by], env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rank 0 done" in result.stdout and "rank 1 done" in result.stdout

    (run,) = mlflow_runs(mlflow_uri)  # exactly one run
    assert run.info.status == "FINISHED"
    run_id = run.info.run_id
    # 64 samples split over 2 ranks: 4 steps per epoch; rank zero alone logs
    assert [s for s, _ in history(mlflow_uri, run_id, "train/loss_step")] == [1, 3, 5, 7]
    for key in run.data.metrics:
        steps = [s for s, _ in history(mlflow_uri, run_id, key)]
        if not key.startswith("system/"):
            assert len(steps) == len(set(steps)), f"{key} recorded more than once at a step: {steps}"
    assert len(history(mlflow_uri, run_id, "system/node0/cpu_percent")) == 2  # gathered once per epoch
    assert run.data.params["hidden"] == "16"

    (journal_path,) = Path(".tracelet").glob(f"*/{run.data.tags['tracelet.run_id']}/journal.sqlite")
    with Journal(journal_path) as journal:
        events = journal.read(after=0, limit=100_000)
    params = Counter(e.key for e in events if e.kind == "param")
    assert params and set(params.values()) == {1}, params  # hyperparameters once
    artifacts = Counter(e.key for e in events if e.kind == "artifact" and (e.key or "").endswith(".ckpt"))
    assert artifacts == {"checkpoints/epoch=00-step=000004.ckpt": 1, "checkpoints/epoch=01-step=000008.ckpt": 1}
    assert sum(e.kind == "start" for e in events) == 1

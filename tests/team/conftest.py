"""The team stack for tests: PostgreSQL + ``mlflow server`` started by ``scripts/team_stack.sh``, and paced
Lightning trainings run as subprocesses against it.

One stack per test module (a fresh one costs ~15 s: initdb, MLflow's migrations on PostgreSQL, the
server's start); the fault tests kill and restart its pieces in place.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_SCRIPT = REPO_ROOT / "scripts" / "team_stack.sh"
# team_stack.sh's exit code for "PostgreSQL is missing and apt-get could not install it".
POSTGRES_UNAVAILABLE = 3

# A Lightning training that logs a = step and b = -step at every step (exact in float32), sleeps a fixed
# time per step, and can pause at one step until its stdin gets a line. It prints `paused`, then
# `trained <seconds since resumed> <slowest step in seconds>` from on_train_end (before the logger's
# finalize waits for delivery), then the report and the MLflow run id.
TRAINER_SCRIPT = """
import os, sys, time

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from tracelet_lightning import TraceletLogger

BATCHES, EPOCHS = int(os.environ["TEAM_BATCHES"]), int(os.environ["TEAM_EPOCHS"])
PAUSE_AT = int(os.environ.get("TEAM_PAUSE_AT", "-1"))
STEP_SECONDS = float(os.environ.get("TEAM_STEP_SECONDS", "0.02"))


class Paced(pl.LightningModule):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(width, 1)

    def training_step(self, batch, batch_idx):
        step = float(self.global_step)
        self.log("a", step, on_step=True, on_epoch=False)
        self.log("b", -step, on_step=True, on_epoch=False)
        time.sleep(STEP_SECONDS)
        return self.layer(batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


class Pace(pl.Callback):
    def __init__(self) -> None:
        self.last = None
        self.slowest = 0.0
        self.resumed = time.monotonic()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        now = time.monotonic()
        if self.last is not None:
            self.slowest = max(self.slowest, now - self.last)
        if trainer.global_step == PAUSE_AT:
            print("paused", flush=True)
            sys.stdin.readline()
            now = self.resumed = time.monotonic()
        self.last = now

    def on_train_end(self, trainer, module) -> None:
        print(f"trained {time.monotonic() - self.resumed:.3f} {self.slowest:.3f}", flush=True)


torch.set_num_threads(1)
logger = TraceletLogger(experiment=os.environ["TEAM_EXPERIMENT"], run_name=os.environ.get("TEAM_RUN_NAME"))
trainer = pl.Trainer(
    max_epochs=EPOCHS, logger=logger, log_every_n_steps=1, callbacks=[Pace()], accelerator="cpu", devices=1,
    enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
)
data = DataLoader(TensorDataset(torch.ones(BATCHES * 2, 4)), batch_size=2)
trainer.fit(Paced(), data)
report = logger.report
print("report", report.summary(), flush=True)
print("complete", report.complete, flush=True)
print("native", report.backends[0].native_id, flush=True)
"""


@dataclass
class TeamStack:
    """A running team stack, driven through ``scripts/team_stack.sh`` (as a developer would).

    Attributes:
        state_dir: the script's state directory (ports, password, logs, artifacts).
        values: the script's ``env`` output: MLFLOW_TRACKING_URI, TEAM_STACK_* values.
    """

    state_dir: Path
    values: dict[str, str] = field(default_factory=dict)

    @property
    def tracking_uri(self) -> str:
        """``http://127.0.0.1:<port>`` of the mlflow server."""
        return self.values["MLFLOW_TRACKING_URI"]

    @property
    def backend_store_uri(self) -> str:
        """The ``postgresql://`` URI the server stores runs in."""
        return self.values["TEAM_STACK_BACKEND_STORE_URI"]

    @property
    def artifacts(self) -> Path:
        """The server's ``--artifacts-destination``."""
        return Path(self.values["TEAM_STACK_ARTIFACTS_DESTINATION"])

    @property
    def mlflow_pid(self) -> int:
        """The pid (and process group) of the ``mlflow server`` process."""
        return int(self.values["TEAM_STACK_MLFLOW_PID"])

    def script(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``team_stack.sh <args>`` on this stack's state directory."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "TRACELET_"))}
        env.update(TEAM_STACK_DIR=str(self.state_dir), TEAM_STACK_MLFLOW=str(Path(sys.executable).parent / "mlflow"))
        return subprocess.run(
            [str(STACK_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def start(self) -> float:
        """Start whatever is not running (idempotent) and return the seconds it took.

        Raises:
            pytest.skip.Exception: PostgreSQL is missing and cannot be installed here.
            RuntimeError: a piece did not start.
        """
        started = time.monotonic()
        result = self.script("start")
        if result.returncode == POSTGRES_UNAVAILABLE:
            pytest.skip(f"PostgreSQL cannot be installed on this machine: {result.stderr.strip()}")
        if result.returncode != 0:
            raise RuntimeError(f"team_stack.sh start failed ({result.returncode}):\n{result.stderr}")
        self.values = parse_exports(result.stdout)
        return time.monotonic() - started

    def kill_mlflow(self) -> None:
        """SIGKILL the server's whole process group (no graceful shutdown) and wait until it is gone."""
        os.killpg(self.mlflow_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while group_alive(self.mlflow_pid):
            if time.monotonic() > deadline:
                raise RuntimeError("the mlflow server's process group outlived SIGKILL")
            time.sleep(0.05)

    def postmaster_pid(self) -> int:
        """The pid of the running PostgreSQL server (first line of postmaster.pid)."""
        return int((Path(self.values["TEAM_STACK_PGDATA"]) / "postmaster.pid").read_text().split()[0])

    def restart_postgres(self) -> None:
        """``pg_ctl restart -m fast``: every connection is cut, the server is back about a second later."""
        result = self.script("restart", "postgres", timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"team_stack.sh restart postgres failed:\n{result.stderr}")

    def purge(self) -> None:
        """Stop both pieces and delete every file of the stack."""
        self.script("purge", timeout=120)


def group_alive(pgid: int) -> bool:
    """Whether process group ``pgid`` has a live process (zombies, which PID 1 reaps late here, do not count)."""
    for process in psutil.process_iter(["status"]):
        try:
            if process.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(process.pid) == pgid:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


def parse_exports(text: str) -> dict[str, str]:
    """``export KEY=value`` lines (as team_stack.sh prints them; values need no unquoting) as a dict."""
    values = {}
    for line in text.splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line.removeprefix("export ").partition("=")
            values[key] = value
    return values


@pytest.fixture(scope="module")
def team_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamStack]:
    """PostgreSQL + mlflow server for one test module, purged afterwards."""
    stack = TeamStack(tmp_path_factory.mktemp("team-stack"))
    try:
        seconds = stack.start()
        print(f"team stack up in {seconds:.1f} s at {stack.tracking_uri}")
        yield stack
    finally:
        stack.purge()


@dataclass
class Training:
    """One paced training subprocess (see ``TRAINER_SCRIPT``)."""

    process: subprocess.Popen[str]
    workdir: Path
    output: list[str] = field(default_factory=list)

    def expect(self, word: str, timeout: float = 120) -> list[str]:
        """Read lines until one starts with ``word``; return that line's fields after the word."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if line.startswith(word):
                return line.split()[1:]
        raise AssertionError(f"no {word!r} line from the trainer; its output:\n{''.join(self.output)}")

    def release(self) -> None:
        """Let a paused trainer go on."""
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = 180) -> str:
        """Wait for the end; return the MLflow run id after checking the report says everything arrived."""
        rest, _ = self.process.communicate(timeout=timeout)
        text = "".join(self.output) + rest
        assert self.process.returncode == 0, text
        assert "complete True" in text, text
        return text.split("\nnative ", 1)[1].split()[0]

    def delivery_log(self) -> str:
        """The delivery process's log of this run."""
        return "".join(path.read_text() for path in self.workdir.glob(".tracelet/*/*/delivery.log"))


def start_training(
    stack: TeamStack,
    workdir: Path,
    experiment: str,
    *,
    batches: int,
    epochs: int = 1,
    pause_at: int = -1,
    step_seconds: float = 0.02,
    run_name: str | None = None,
) -> Training:
    """Start a paced Lightning training logging to ``stack`` with TraceletLogger(backends=mlflow)."""
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "train.py"
    script.write_text(TRAINER_SCRIPT)
    env = dict(
        os.environ,
        MLFLOW_TRACKING_URI=stack.tracking_uri,
        TRACELET_BACKENDS="mlflow",
        TRACELET_FINISH_TIMEOUT="150",  # covers a server restart (10-20 s on 2 busy cores)
        TRACELET_MAX_RETRY_BACKOFF="1",
        TEAM_EXPERIMENT=experiment,
        TEAM_BATCHES=str(batches),
        TEAM_EPOCHS=str(epochs),
        TEAM_PAUSE_AT=str(pause_at),
        TEAM_STEP_SECONDS=str(step_seconds),
        OMP_NUM_THREADS="1",
        PYTHONWARNINGS="ignore",
    )
    if run_name:
        env["TEAM_RUN_NAME"] = run_name
    process = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=workdir,
    )
    return Training(process, workdir)

"""Secrets never reach a tracker, a file or the terminal: planted everywhere a user puts them, then looked for.

One fit to MLflow (a real ``mlflow server`` reached through a URI with credentials) and W&B (offline),
with credentials planted in the tracking URI, in hyperparameter names, in environment variables, in the
command line and in the git remote; then every file under the test's directory (journals, delivery log,
the server's store and artifacts, W&B's run files, HOME) and the output of ``tracelet runs/show/doctor``
is searched for each of them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

import tracelet_core
from tests.lightning.tiny import TinyModel, loader, make_trainer
from tests.support.mlflow_server import MlflowServer
from tracelet_core.cli import app
from tracelet_lightning import TraceletLogger

SECRETS = {
    "uri": "URI-SECRET-f1d9",
    "param": "PARAM-SECRET-a7c2",
    "nested_param": "PARAM-SECRET-3b8e",
    "hf_token": "PARAM-SECRET-77de",
    "env_token": "ENV-SECRET-5c01",
    "env_comment": "ENV-SECRET-90ab",
    "argv": "ARGV-SECRET-2e4f",
    "argv_next": "ARGV-SECRET-6d13",
    "git": "GIT-SECRET-c4e5",
}


def _git_repository(path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)

    git("init", "-q")
    git("remote", "add", "origin", f"https://bob:{SECRETS['git']}@github.com/org/project.git")
    (path / "train.py").write_text("print('training')\n")
    git("add", "train.py")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "first")


@pytest.mark.server
def test_no_planted_secret_reaches_any_file_or_the_cli(
    all_trackers: dict[str, Path], isolated: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    server = MlflowServer(isolated / "mlflow-server").start()
    try:
        uri_with_password = server.url.replace("http://", f"http://alice:{SECRETS['uri']}@")
        monkeypatch.setenv("TRACELET_MLFLOW__TRACKING_URI", uri_with_password)
        monkeypatch.setenv("MY_SERVICE_TOKEN", SECRETS["env_token"])
        monkeypatch.setenv("SLURM_JOB_COMMENT", f"password={SECRETS['env_comment']}")
        monkeypatch.setenv("TRACELET_ENV_INCLUDE", "*")
        monkeypatch.setenv("TRACELET_ENVIRONMENT", "true")
        monkeypatch.setenv("TRACELET_GIT", "true")
        monkeypatch.setattr(
            sys, "argv", ["train.py", f"--api-key={SECRETS['argv']}", "--token", SECRETS["argv_next"], "--lr=0.1"]
        )
        _git_repository(isolated)

        logger = TraceletLogger(experiment="secrets", backends=["mlflow", "wandb"])
        model = TinyModel(
            api_key=SECRETS["param"],
            database={"host": "db", "password": SECRETS["nested_param"]},
            hf_token=SECRETS["hf_token"],
            pad_token_id=0,
            max_new_tokens=32,
        )
        make_trainer(logger, epochs=1).fit(model, loader(), loader())
        report = logger.report
        assert report is not None and report.complete, report.summary() if report else None

        # Delivered through the URI's credentials; the params are there, masked.
        params = MlflowClient(server.url).get_run(report.backends[0].native_id or "").data.params
        assert params["api_key"] == "***" and params["database/password"] == "***"
        assert params["hf_token"] == "***"
        assert params["pad_token_id"] == "0" and params["max_new_tokens"] == "32" and params["database/host"] == "db"

        # Delivered from a thread of this process too: nothing printed carries the password either.
        run = tracelet_core.start_logging("secrets-thread", backends=["mlflow"], delivery="thread")
        run.log_metric("x", 1.0, step=0)
        assert run.finish(timeout=60).complete
        printed = capfd.readouterr()

        runner = CliRunner()
        commands = [["runs", "--json"], ["show", logger.version, "--json"], ["show", logger.version], ["doctor"]]
        outputs = [runner.invoke(app, command).output for command in commands]
        assert logger.version in outputs[0] and "***" in outputs[1]
    finally:
        server.stop()

    leaks = []
    for path in isolated.rglob("*"):
        if ".git" in path.relative_to(isolated).parts:  # the user's own repository holds its remote, of course
            continue
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            leaks += [f"{name} in {path.relative_to(isolated)}" for name, s in SECRETS.items() if s.encode() in data]
    for output in [*outputs, printed.out, printed.err]:
        leaks += [f"{name} in CLI output" for name, s in SECRETS.items() if s in output]
    assert not leaks, "\n".join(leaks)
    # The files that must exist were searched (not an empty directory by mistake).
    assert list(isolated.glob(".tracelet/secrets/*/journal.sqlite"))
    assert list(all_trackers["wandb"].rglob("*.wandb"))

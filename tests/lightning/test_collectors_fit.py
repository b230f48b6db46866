"""Collectors during a real Trainer.fit: system metrics, git state, environment, no secrets, no leftover thread."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tracelet_lightning import TraceletLogger

from .tiny import TinyModel, loader, make_trainer


class SlowModel(TinyModel):
    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def, override]
        time.sleep(0.15)  # a fit of a few seconds, so several system-metric points are reported
        return super().training_step(batch, batch_idx)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(isolated: Path) -> Path:
    """The test's working directory as a git repository with a credentialed remote and a dirty file."""
    _git(isolated, "init", "-q", "-b", "main")
    _git(isolated, "config", "user.email", "t@example.com")
    _git(isolated, "config", "user.name", "T")
    (isolated / "train.py").write_text("print('v1')\n")
    (isolated / ".gitignore").write_text(".tracelet/\nmlflow.db\nmlruns/\n")
    _git(isolated, "add", "train.py", ".gitignore")
    _git(isolated, "commit", "-q", "-m", "first")
    _git(isolated, "remote", "add", "origin", "https://ada:s3cr3t-token@git.example.com/team/x.git")
    return isolated


def _collector_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("tracelet-collectors")]


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["dirty", "detached"])
def test_fit_records_system_git_and_environment_without_secrets(
    repo: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch, variant: str
) -> None:
    secrets = {name: f"planted-{uuid.uuid4().hex}" for name in ("MY_API_KEY", "HF_TOKEN", "DB_PASSWORD")}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TRACELET_ENV_INCLUDE", "*")  # asks for everything: secrets must still be masked
    for setting in ("TRACELET_SYSTEM_METRICS", "TRACELET_GIT", "TRACELET_ENVIRONMENT"):
        monkeypatch.setenv(setting, "true")
    if variant == "dirty":
        (repo / "train.py").write_text("print('v2')\n")
    else:
        _git(repo, "checkout", "-q", "--detach")
    head = _git(repo, "rev-parse", "HEAD")

    logger = TraceletLogger(experiment="collectors", backends=["mlflow"], system_metrics_interval=0.5)
    make_trainer(logger, epochs=3).fit(SlowModel(), loader())
    assert _collector_threads() == []

    client = MlflowClient(mlflow_uri)
    native = logger.report.backends[0].native_id  # type: ignore[union-attr]
    run = client.get_run(native)
    metrics, tags = run.data.metrics, run.data.tags
    for percent in ("system/cpu_percent", "system/memory_percent"):
        history = client.get_metric_history(native, percent)
        assert len(history) >= 2
        assert all(0 <= m.value <= 100 for m in history)
    assert metrics["system/process_rss_mb"] > 0
    assert tags["git.commit"] == head
    assert tags["git.remote"] == "https://git.example.com/team/x.git"
    if variant == "dirty":
        assert tags["git.dirty"] == "true"
        assert tags["git.branch"] == "main"
        patch = Path(client.download_artifacts(native, "tracelet/git_diff.patch")).read_text()
        assert "+print('v2')" in patch
    else:
        assert tags["git.detached"] == "true"
    assert tags["env.python"].count(".") == 2
    assert Path(client.download_artifacts(native, "tracelet/environment.json")).stat().st_size > 0

    # No planted secret anywhere: not in the SQLite store, not in any artifact.
    store = Path(mlflow_uri.removeprefix("sqlite:///"))
    haystacks = [store.read_bytes(), *(p.read_bytes() for p in (repo / "mlruns").rglob("*") if p.is_file())]
    for value in secrets.values():
        assert not any(value.encode() in blob for blob in haystacks), "a secret reached MLflow"


def test_collector_thread_is_gone_when_training_raises(mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_SYSTEM_METRICS", "true")
    logger = TraceletLogger(experiment="collectors-fail", backends=["mlflow"], system_metrics_interval=0.2)
    with pytest.raises(RuntimeError, match="boom"):
        make_trainer(logger).fit(TinyModel(fail_at=3), loader())
    assert _collector_threads() == []
    native = logger.report.backends[0].native_id  # type: ignore[union-attr]
    assert MlflowClient(mlflow_uri).get_run(native).info.status == "FAILED"

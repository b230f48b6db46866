"""MLflow's own web UI shows a Tracelet run as it shows a run MLflow logged itself, in a real browser.

A short Lightning fit, tracked by ``TraceletLogger`` with system metrics sampled every 0.2 s, goes
to a real ``mlflow server`` on 127.0.0.1; headless Chromium then opens the run's page and finds
what a user looks for: the run's name as the page title, the training script as its "Source", and
the system metrics drawn as line charts on the "System metrics" tab (MLflow draws a metric whose
points share one step as a bar, so this also checks that the samples are stepped).
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mlflow_server import MlflowServer
from tests.support.waiting import wait_until
from tests.ui import browser
from tests.ui.mlflow_ui import MlflowRunPage

REPO = Path(__file__).resolve().parents[2]
UNAVAILABLE = browser.missing()

pytestmark = [
    pytest.mark.browser,
    pytest.mark.server,
    pytest.mark.slow,
    pytest.mark.skipif(UNAVAILABLE is not None, reason=f"no browser for the UI tests: {UNAVAILABLE}"),
]

TRAIN = """
import os
import urllib.request

import lightning.pytorch as pl

from tests.lightning.models import TinyData, TinyModel, trainer_kwargs
from tests.support.waiting import wait_until
from tracelet_lightning import TraceletLogger


def answers():
    try:
        with urllib.request.urlopen(os.environ["MLFLOW_TRACKING_URI"] + "/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


# The test started the server as it started this script: its start and these imports overlap.
wait_until(answers, timeout=120, what="the MLflow server")
logger = TraceletLogger(experiment="ui", backends=["mlflow"], system_metrics=True, system_metrics_interval=0.2)
# Three seconds of training whatever the machine's speed: several system samples (at least 3 are checked).
trainer = pl.Trainer(
    **trainer_kwargs(logger=logger, max_epochs=-1, max_time={"seconds": 3}, enable_checkpointing=False)
)
trainer.fit(TinyModel(), TinyData())
(mlflow,) = [backend for backend in logger.report.backends if backend.name == "mlflow"]
print("MLFLOW_RUN", mlflow.native_id, flush=True)
"""


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[MlflowServer]:
    """``mlflow server``, still starting (about 15 s) when the test begins: the training script waits for it."""
    server = MlflowServer(tmp_path / "mlflow-server")
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        started = pool.submit(server.start)
        try:
            yield server
        finally:
            started.exception(timeout=120)  # stop it only once it is started (or has failed to)
            server.stop()


def train(workdir: Path, tracking_uri: str) -> str:
    """Run the fit as a user runs a script (``python train.py``); return MLflow's id of its run."""
    (workdir / "train.py").write_text(TRAIN)
    env = dict(os.environ, PYTHONPATH=str(REPO), MLFLOW_TRACKING_URI=tracking_uri, OMP_NUM_THREADS="1")
    env["TRACELET_ENVIRONMENT"] = "true"  # the user and the program (the conftest turns it off for unit tests)
    result = subprocess.run(
        [sys.executable, "train.py"], cwd=workdir, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = re.search(r"^MLFLOW_RUN (\w+)$", result.stdout, re.MULTILINE)
    assert found, result.stdout[-3000:]
    return found.group(1)


def test_the_run_page_shows_name_source_and_system_metric_lines(mlflow_server: MlflowServer, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    run_id = train(tmp_path, mlflow_server.url)
    client = MlflowClient(mlflow_server.url)
    wait_until(lambda: client.get_run(run_id).info.status == "FINISHED", timeout=30, what="the run to finish")
    run = client.get_run(run_id)
    tags = run.data.tags

    # What MLflow's UI reads, as MLflow's own fluent API would have set it.
    name = run.info.run_name
    assert name and not re.fullmatch(r"[0-9a-f]{32}", name), f"the run name is an id, not a readable name: {name!r}"
    assert Path(tags.get("mlflow.source.name", "")).name == "train.py", tags
    assert tags.get("mlflow.source.type") == "LOCAL", tags
    assert tags.get("mlflow.user"), tags
    samples = client.get_metric_history(run_id, "system/cpu_percent")
    steps = [point.step for point in samples]
    assert len(set(steps)) >= 3, f"system/cpu_percent should be stepped by sample; its steps: {steps}"

    with browser.chromium() as driver:
        page = MlflowRunPage(driver, mlflow_server.url, run.info.experiment_id, run_id).open()
        page.header(name)
        page.field("Source", "train.py")
        page.field("Created by", tags["mlflow.user"])
        page.open_tab("System metrics")
        assert page.line_charts("cpu_percent") >= 1

"""A tracker defined only by an entry point gets every feature: doctor, delivery, sync, migrate both ways, and
its options in the settings and the generated configuration reference.

The tracker is a package written into a temporary folder with a ``.dist-info`` beside it (what ``pip
install`` leaves), put on ``PYTHONPATH`` of the subprocesses only: the shared virtual environment is
not touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TRACELET = str(Path(sys.executable).parent / "tracelet")

PLUGIN = '''
"""A tracker that keeps each run as one JSON-lines file: what a third party would publish."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field

from tracelet_core.events import MetricPoint
from tracelet_core.trackers.base import Backend, Capabilities
from tracelet_core.trackers.descriptor import Tracker
from tracelet_core.trackers.doctor import Check, writable
from tracelet_core.trackers.store import RunRecord, SourceRun, StoreReader


class LinesOptions(BaseModel):
    directory: str = Field("lines-store", description="Where the JSON-lines files go.")


class LinesBackend(Backend):
    name = "lines"
    capabilities = Capabilities(max_param_length=20)

    def open(self, run, native_id):
        self._path = Path(self.options["directory"]) / f"{native_id or run.run_id}.jsonl"
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._emit({"run": run.run_id, "experiment": run.experiment, "name": run.run_name})
        return self._path.stem

    def write(self, batch):
        for point in batch.metrics:
            self._emit({"metric": point.key, "value": point.value, "step": point.step, "ts": point.timestamp})
        for key, value in batch.params.items():
            self._emit({"param": key, "value": value})

    def close(self, status):
        self._emit({"status": status})

    def _emit(self, record):
        with self._path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\\n")


class LinesReader(StoreReader):
    kind = "lines"

    def _files(self):
        return sorted(Path(self.location or "lines-store").glob("*.jsonl"))

    def list_runs(self, experiments=None):
        runs = []
        for path in self._files():
            head = json.loads(path.read_text().splitlines()[0])
            if experiments is None or head["experiment"] in experiments:
                runs.append(SourceRun(f"lines:{path.stem}", path.stem, head["experiment"], head["name"]))
        return runs

    def read_run(self, run, scratch, *, artifacts=True):
        record = RunRecord(run=run)
        for line in (Path(self.location or "lines-store") / f"{run.native_id}.jsonl").read_text().splitlines():
            item = json.loads(line)
            if "metric" in item:
                record.metrics.append(MetricPoint(item["metric"], item["value"], item["step"], item["ts"]))
            elif "param" in item:
                record.params[item["param"]] = item["value"]
            elif "status" in item:
                record.status = item["status"]
        return record


def check(options):
    ok, why = writable(Path(options["directory"]))
    return Check("lines", "ok" if ok else "error", f"files under {options['directory']} ({why})")


TRACKER = Tracker(
    name="lines",
    backend="lines_tracker:LinesBackend",
    reader="lines_tracker:LinesReader",
    options=LinesOptions,
    doctor="lines_tracker:check",
    description="JSON-lines files, one per run",
)
'''


@pytest.fixture
def plugin_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python sees the ``lines`` tracker as an installed distribution."""
    site = tmp_path / "site"
    (site / "lines_tracker").mkdir(parents=True)
    (site / "lines_tracker" / "__init__.py").write_text(PLUGIN)
    dist = site / "lines_tracker-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lines-tracker\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[tracelet.trackers]\nlines = lines_tracker:TRACKER\n")
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=240, check=False)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


def test_an_entry_point_tracker_gets_every_feature(plugin_env: dict[str, str], tmp_path: Path, mlflow_uri: str) -> None:
    env = dict(plugin_env, TRACELET_LINES__DIRECTORY=str(tmp_path / "store"))

    # Options from the environment, and the doctor check.
    doctor = json.loads(_run([TRACELET, "doctor", "--backends", "lines", "--json"], env, tmp_path).stdout)
    assert {"name": "lines.directory", "value": str(tmp_path / "store")}.items() <= next(
        row for row in doctor["settings"] if row["name"] == "lines.directory"
    ).items()
    (lines_check,) = [check for check in doctor["backends"] if check["name"] == "lines"]
    assert lines_check["level"] == "ok" and "files under" in lines_check["summary"]

    # A run delivered to it through the delivery process, with its declared limits applied.
    script = textwrap.dedent(
        """
        import tracelet_core
        with tracelet_core.start_logging("plugin", backends=["lines"], run_name="first") as run:
            run.log_params({"note": "a value longer than twenty characters"})
            for step in range(50):
                run.log_metric("loss", 1 / (step + 1), step=step)
        print(run.report().summary())
        """
    )
    assert "lines 5" in _run([sys.executable, "-c", script], env, tmp_path).stdout
    (stored,) = (tmp_path / "store").glob("*.jsonl")
    records = [json.loads(line) for line in stored.read_text().splitlines()]
    assert [r["step"] for r in records if "metric" in r] == list(range(50))
    (param,) = [r["value"] for r in records if "param" in r]
    assert len(param) == 20 and "truncated" in param
    assert records[-1] == {"status": "FINISHED"}

    # A migrate source (into MLflow) and destination (from the journal).
    _run([TRACELET, "migrate", "--from", f"lines:{tmp_path / 'store'}", "--to", f"mlflow:{mlflow_uri}"], env, tmp_path)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_uri)
    (copied,) = client.search_runs([client.get_experiment_by_name("plugin").experiment_id])
    assert len(client.get_metric_history(copied.info.run_id, "loss")) == 50
    back = dict(env, TRACELET_LINES__DIRECTORY=str(tmp_path / "second"))
    _run([TRACELET, "migrate", "--from", "journal:.tracelet", "--to", "lines"], back, tmp_path)
    assert len(list((tmp_path / "second").glob("*.jsonl"))) == 1

    # Its options in the configuration reference generated for the docs.
    reference = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, "docs/_ext")
        from tracelet_docs import settings_rows, settings_sections
        from tracelet_core.settings import TraceletSettings
        for name, model, _ in settings_sections(TraceletSettings):
            for row in settings_rows(model, name):
                print(row[0])
        """
    )
    assert "TRACELET_LINES__DIRECTORY" in _run([sys.executable, "-c", reference], env, ROOT).stdout.split()

"""One scripted workflow sent to all four trackers at once; each store read back must hold the same data.

The known, documented differences between trackers (docs/trackers.md, "What differs") are applied
in one place, :func:`_expected`, so a new difference shows up as a test failure, not as drift.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import tracelet_core
from tests.support import aim_reader, clearml_reader, wandb_reader
from tracelet_core.trackers.aim.mapping import sequence_of
from tracelet_core.trackers.clearml.mapping import split_metric_key

KEYS = ("train/loss", "val/acc", "lr")
STEPS = 200
PARAMS = {"optimizer": {"name": "adam", "lr": 0.01}, "epochs": 4, "seed": 7}
FLAT_PARAMS = {"optimizer/name": "adam", "optimizer/lr": "0.01", "epochs": "4", "seed": "7"}


def _value(key: str, step: int) -> float:
    return {"train/loss": 1.0 / (step + 1), "val/acc": step / STEPS, "lr": 0.01 * 0.99**step}[key]


def _workflow(tmp_path: Path, status: str) -> tracelet_core.Run:
    run = tracelet_core.start_logging(
        "parity", backends=["mlflow", "wandb", "clearml", "aim"], run_name=f"parity-{status.lower()}"
    )
    run.log_params(PARAMS)
    run.set_tags({"team": "vision", "stage": "parity"})
    for step in range(STEPS):
        metrics: dict[str, Any] = {key: _value(key, step) for key in KEYS}
        if step % 50 == 0:
            metrics["epoch"] = step // 50  # Lightning's way: epoch once per change
        run.log_metrics(metrics, step=step)
    notes = tmp_path / "notes.txt"
    notes.write_text("parity artifact")
    run.log_artifact(notes, name="reports/notes.txt")
    run.log_image("samples", np.full((8, 8, 3), 128, dtype=np.uint8), step=100)
    report = run.finish(status, timeout=120)  # type: ignore[arg-type]
    assert report.complete, report.summary()
    return run


def _mlflow(run: tracelet_core.Run, uri: str) -> dict[str, Any]:
    client = MlflowClient(uri)
    native = run.backend_run_ids["mlflow"]
    data = client.get_run(native)
    keys = (*KEYS, "epoch")
    return {
        "metrics": {k: [(m.step, m.value) for m in client.get_metric_history(native, k)] for k in keys},
        "params": dict(data.data.params),
        "tags": {k: v for k, v in data.data.tags.items() if k in ("team", "stage")},
        "status": data.info.status,
        "artifacts": {a.path for a in client.list_artifacts(native, "reports")},
        "images": [  # MLflow names step images "<key>+step+<step>+timestamp+...png"
            int(a.path.split("+step+")[1].split("+")[0])
            for a in client.list_artifacts(native, "images")
            if a.path.startswith("images/samples+") and a.path.endswith(".png")
        ],
    }


def _wandb(run: tracelet_core.Run) -> dict[str, Any]:
    location = run.report().backends[[b.name for b in run.report().backends].index("wandb")].location
    data = wandb_reader.read_run(wandb_reader.run_file(location or ""))
    tags = dict(tag.split(":", 1) for tag in data.tags if ":" in tag)
    status = data.summary.get("tracelet/status")
    return {
        "metrics": {k: [(int(s), float(v)) for s, v in data.series(k)] for k in (*KEYS, "epoch")},
        "params": {k: str(v) for k, v in data.config.items() if not k.startswith("_")},
        "tags": {k: v for k, v in tags.items() if k in ("team", "stage")},
        "status": status,
        # W&B artifacts are named run-<id>-<name>; the file inside keeps the full name.
        "artifacts": {e.path for a in data.artifacts for e in a.manifest.contents if e.path.startswith("reports/")},
        "images": [int(s) for s, v in data.series("samples") if v is not None],
    }


def _clearml(run: tracelet_core.Run) -> dict[str, Any]:
    location = next(b.location for b in run.report().backends if b.name == "clearml")
    session = clearml_reader.read_session(location or "")
    scalars = session.scalars()
    images = [e["iter"] for e in session.events_of("training_debug_image")]
    return {
        "metrics": {k: [(int(i), float(v)) for i, v in scalars.get(split_metric_key(k), [])] for k in (*KEYS, "epoch")},
        "params": session.params("hyperparameters"),
        "tags": {k: v for k, v in session.user_properties.items() if k in ("team", "stage")},
        "status": session.user_properties.get("tracelet.status"),
        "artifacts": {k for k in session.artifacts() if k.startswith("reports/")},
        "images": images,
    }


def _aim(run: tracelet_core.Run, repo: Path) -> dict[str, Any]:
    data = aim_reader.read_run(str(repo), run.backend_run_ids["aim"])
    metrics: dict[str, list[tuple[int, float]]] = {}
    epochs: dict[int, int | None] = {}
    for key in KEYS:
        name, context = sequence_of(key)
        points = data.metrics[(name, tuple(sorted(context.items())))]
        metrics[key] = [(step, value) for step, _epoch, value in points]
        epochs.update({step: epoch for step, epoch, _ in points})
    # Aim has a native epoch axis: the epoch is not a metric, each point carries it.
    metrics["epoch"] = [(s, float(e)) for s, e in sorted(epochs.items()) if s % 50 == 0 and e is not None]
    flat = {}
    for key in FLAT_PARAMS:
        node: Any = data.hparams
        for part in key.split("/"):
            node = node[part]
        flat[key] = str(node)
    tags = dict(tag.split(":", 1) for tag in data.tags if ":" in tag)
    images = [s for (name, _ctx), items in data.images.items() if name == "samples" for s, _size, _fmt in items]
    return {
        "metrics": metrics,
        "params": flat,
        "tags": {k: v for k, v in tags.items() if k in ("team", "stage")},
        "status": data.tracelet.get("status"),
        "artifacts": {n for n in data.artifacts if n.startswith("reports/")},
        "images": images,
    }


def _expected(status: str) -> dict[str, Any]:
    return {
        "metrics": {
            **{k: [(s, _value(k, s)) for s in range(STEPS)] for k in KEYS},
            "epoch": [(s, float(s // 50)) for s in range(0, STEPS, 50)],
        },
        "params": FLAT_PARAMS,
        "tags": {"team": "vision", "stage": "parity"},
        "status": status,
        "artifacts": {"reports/notes.txt"},
        "images": [100],
    }


def _close(got: dict[str, Any], expected: dict[str, Any], store: str) -> None:
    for key, points in expected["metrics"].items():
        have = got["metrics"][key]
        assert [s for s, _ in have] == [s for s, _ in points], f"{store}: steps of {key}"
        for (_, a), (_, b) in zip(have, points, strict=True):
            assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12), f"{store}: {key} {a} != {b}"
    for field in ("params", "tags", "status", "artifacts", "images"):
        assert got[field] == expected[field] or (field == "params" and _params_equal(got[field], expected[field])), (
            f"{store}: {field}: {got[field]!r} != {expected[field]!r}"
        )


def _params_equal(got: dict[str, str], expected: dict[str, str]) -> bool:
    # W&B and Aim store typed params (0.01, 4); the value is the same once read as text.
    return {k: got.get(k) for k in expected} == expected


@pytest.mark.slow
@pytest.mark.parametrize("status", ["FINISHED", "FAILED"])
def test_all_four_trackers_hold_the_same_run(
    all_trackers: dict[str, Path], mlflow_uri: str, tmp_path: Path, status: str
) -> None:
    run = _workflow(tmp_path, status)
    expected = _expected(status)
    stores = {
        "mlflow": _mlflow(run, mlflow_uri),
        "wandb": _wandb(run),
        "clearml": _clearml(run),
        "aim": _aim(run, all_trackers["aim"]),
    }
    for store, got in stores.items():
        _close(got, expected, store)


def test_a_missing_sdk_is_named_and_the_others_go_on(mlflow_uri: str, tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            sys.modules["wandb"] = None  # as if not installed
            import tracelet_core
            run = tracelet_core.start_logging("missing", backends=["wandb", "mlflow"])
            run.log_metric("x", 1.0, step=0)
            print("REPORT", run.finish().summary())
            """
        )
    )
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'pip install "tracelet-lightning[wandb]"' in proc.stderr
    assert "Other backends go on" in proc.stderr
    assert re.search(r"mlflow (\d+)/\1 delivered", proc.stdout), proc.stdout

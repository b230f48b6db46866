"""`tracelet runs` and `show`: the events a tracker rejected (and why), what was dropped or lost, and no credentials
in anything they print, even from an older journal that stored a backend's location or error with them.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import Result

import tracelet_core
from tracelet_core.pipeline.journal import Journal

SECRET = "hunter2-PASSWORD"
SERVER = f"http://alice:{SECRET}@10.0.0.5:5000"


@pytest.fixture
def run_id() -> str:
    """A finished run whose journal says: mlflow rejected 25 metric events, aim 2; 3 values dropped, 2 lost."""
    run = tracelet_core.start_logging("digits", backends=[], run_id="rej12345", run_name="rejects", flush_interval=0.01)
    for step in range(40):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    run.finish()
    with Journal(run.journal_path) as journal:
        metrics = [event.seq for event in journal.read(0) if event.kind == "metric"]
        last = journal.last_seq()
        journal.register_backends(["aim", "mlflow"])
        journal.update_delivery(
            "mlflow",
            acked_seq=last,
            state="closed",
            native_id="abc",
            location=f"{SERVER}/#/experiments/1/runs/abc",  # as an older Tracelet stored it
            error=f"HTTP 503 from {SERVER}/api/2.0/mlflow/runs/log-batch",
        )
        journal.reject("mlflow", metrics[:25], f"INVALID_PARAMETER_VALUE: step too large ({SERVER})")
        journal.update_delivery("aim", acked_seq=last, state="closed")
        journal.reject("aim", metrics[:2], "value out of range")
        journal.set_meta(dropped_events=3, lost_events=2)
    return run.id


def test_runs_counts_the_rejected_events_per_backend(run_id: str, cli: Callable[..., Result]) -> None:
    table = cli("runs").stdout
    assert "aim ✓ (2 rejected)" in table and "mlflow ✓ (25 rejected)" in table
    (listed,) = json.loads(cli("runs", "--json").stdout)
    backends = {b["name"]: b for b in listed["backends"]}
    assert backends["mlflow"]["rejected"] == 25 and backends["aim"]["rejected"] == 2
    assert backends["mlflow"]["pending"] == 0 and backends["mlflow"]["delivered"] == listed["events"] - 25
    assert backends["mlflow"]["location"] == "http://10.0.0.5:5000/#/experiments/1/runs/abc"
    assert backends["mlflow"]["error"] == "HTTP 503 from http://10.0.0.5:5000/api/2.0/mlflow/runs/log-batch"
    assert listed["dropped"] == 3 and listed["lost"] == 2
    assert SECRET not in table + cli("runs", "--json").stdout


def test_show_lists_the_rejected_events_and_what_was_dropped_or_lost(run_id: str, cli: Callable[..., Result]) -> None:
    shown = json.loads(cli("show", run_id, "--json").stdout)
    assert len(shown["rejected"]) == 27 and shown["dropped"] == 3 and shown["lost"] == 2
    first = shown["rejected"][0]
    assert {k: first[k] for k in ("backend", "kind", "key")} == {"backend": "aim", "kind": "metric", "key": "loss"}
    mlflow = [event for event in shown["rejected"] if event["backend"] == "mlflow"]
    assert len(mlflow) == 25 and mlflow[0]["reason"] == "INVALID_PARAMETER_VALUE: step too large (http://10.0.0.5:5000)"
    assert [event["seq"] for event in mlflow] == sorted(event["seq"] for event in mlflow)

    text = cli("show", run_id).stdout
    rejected = text.split("Rejected", 1)[1]
    assert rejected.count("step too large") + rejected.count("value out of range") == 20
    assert "7 more" in text
    assert "3 invalid value(s) dropped" in text and "2 logged event(s) could not be kept" in text
    backends = text.split("Backends", 1)[1].split("Rejected", 1)[0]
    assert (
        "http://10.0.0.5:5000/#/experiments/1/runs/abc" in backends and "HTTP 503 from http://10.0.0.5:5000" in backends
    )
    assert SECRET not in text + cli("show", run_id, "--json").stdout


def test_a_run_with_nothing_rejected_says_nothing_about_it(cli: Callable[..., Result]) -> None:
    run = tracelet_core.start_logging("digits", backends=[], flush_interval=0.01)
    run.log_metric("loss", 0.5, step=1)
    run.finish()
    shown = json.loads(cli("show", run.id, "--json").stdout)
    assert shown["rejected"] == [] and shown["dropped"] == 0 and shown["lost"] == 0 and shown["damaged"] == 0
    text = cli("show", run.id).stdout
    assert "Rejected" not in text and "dropped" not in text and "could not be kept" not in text

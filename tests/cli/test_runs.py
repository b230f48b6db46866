"""`tracelet runs` and `tracelet show`: the local journals, read as a user reads them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

import tracelet_core
from tracelet_core.cli import app


def _run(name: str, experiment: str = "digits", run_id: str | None = None) -> tracelet_core.Run:
    run = tracelet_core.start_logging(
        experiment, backends=[], run_name=name, run_id=run_id, flush_interval=0.01, tags={"team": "vision"}
    )
    run.log_params({"optimizer": {"lr": 0.01, "name": "adam"}, "epochs": 3})
    for step in range(10):
        run.log_metrics({"train/loss": 1.0 / (step + 1), "val/acc": step / 10}, step=step)
    run.log_metric("val/acc", float("nan"), step=10)
    run.set_tag("stage", "final")
    Path("model.bin").write_bytes(b"\0" * 64)
    run.log_artifact("model.bin", "checkpoints/model.bin")
    run.finish()
    return run


def test_runs_lists_every_run_with_its_delivery_state(cli: Callable[..., Result]) -> None:
    first, second = _run("baseline", run_id="aaaa1111"), _run("wide", experiment="other", run_id="bbbb2222")
    listed = json.loads(cli("runs", "--json").stdout)
    assert [(r["run_id"], r["experiment"], r["name"], r["status"]) for r in listed] == [
        (first.id, "digits", "baseline", "FINISHED"),
        (second.id, "other", "wide", "FINISHED"),
    ]
    assert listed[0]["backends"] == [] and listed[0]["events"] > 20 and listed[0]["duration"] >= 0
    assert [r["name"] for r in json.loads(cli("runs", "-e", "other", "--json").stdout)] == ["wide"]
    assert json.loads(cli("runs", "--pending", "--json").stdout) == []
    table = cli("runs").stdout
    assert "aaaa1111" in table and "baseline" in table and "journal only" in table


def test_show_gives_params_tags_last_values_and_artifacts(cli: Callable[..., Result]) -> None:
    run = _run("baseline", run_id="abc123")
    shown = json.loads(cli("show", "abc", "--json").stdout)
    assert shown["params"] == {"optimizer/lr": "0.01", "optimizer/name": "adam", "epochs": "3"}
    assert shown["tags"] == {"team": "vision", "stage": "final"}
    assert shown["metrics"]["train/loss"] == {"last": 0.1, "step": 9, "points": 10, "min": 0.1, "max": 1.0}
    assert shown["metrics"]["val/acc"]["last"] == "nan" and shown["metrics"]["val/acc"]["max"] == 0.9
    artifacts = {a["name"]: a for a in shown["artifacts"]}
    assert artifacts["checkpoints/model.bin"]["bytes"] == 64
    assert "tracelet/config.yaml" in artifacts
    assert shown["journal"] == str(run.journal_path.relative_to(Path.cwd()))
    text = cli("show", "baseline").stdout  # by name too
    for expected in ("abc123", "optimizer/lr", "val/acc", "checkpoints/model.bin", "journal only"):
        assert expected in text


def test_a_run_reference_must_name_one_run(cli: Callable[..., Result]) -> None:
    _run("one", run_id="ab11")
    _run("two", run_id="ab22")
    assert "matches 2 runs" in cli("show", "ab", code=1).stderr
    assert "No run matches 'zz'" in cli("show", "zz", code=1).stderr
    assert json.loads(cli("show", "ab2", "--json").stdout)["name"] == "two"


def test_names_and_values_are_shown_as_they_are(cli: Callable[..., Result]) -> None:
    run = tracelet_core.start_logging("[exp]", backends=[], run_name="[bold]name[/bold]", flush_interval=0.01)
    run.log_params({"layers": "[red]3[/]"})
    run.log_metric("acc[head=a]", 0.5, step=1)
    run.finish()
    text = cli("show", run.id).stdout
    for literal in ("[bold]name[/bold]", "[red]3[/]", "acc[head=a]"):
        assert literal in text
    assert "[bold]name[/bold]" in cli("runs").stdout


@pytest.mark.parametrize(
    "command", ["doctor", "runs", "show", "open", "sync", "migrate", "compare", "import-tensorboard", "rm", "prune"]
)
def test_every_command_has_help_with_an_example(command: str, cli: Callable[..., Result]) -> None:
    help_text = cli(command, "--help").stdout
    assert "Example" in help_text and "--json" in help_text


def test_the_console_script_is_installed_and_the_core_stays_free_of_cli_libraries(
    tracelet: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    assert "doctor" in tracelet("--help").stdout
    code = (
        "import sys, tracelet_core, tracelet_core.sync, tracelet_core.migrate, tracelet_core.compare, "
        "tracelet_core.trackers.mlflow.reader, tracelet_core.trackers.aim.reader, tracelet_core.trackers.wandb.reader; "
        "loaded = [m for m in ('typer', 'rich', 'scipy', 'matplotlib', 'mlflow', 'aim', 'wandb') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert app.info.name == "tracelet"

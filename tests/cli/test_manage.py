"""`tracelet rm`, `prune`, `open`, `runs` filters, `--version` and help that reads like a usual command line."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from mlflow.tracking import MlflowClient

import tracelet_core
from tracelet_core.pipeline.journal import Journal


def _run(name: str, status: str = "FINISHED", lr: float = 0.01, backends: tuple[str, ...] = ()) -> tracelet_core.Run:
    run = tracelet_core.start_logging(
        "manage", backends=list(backends), run_name=name, flush_interval=0.01, tags={"team": "vision"}
    )
    run.log_params({"lr": lr})
    run.log_metric("val/acc", lr * 10, step=1)
    assert run.finish(status, timeout=60).complete  # type: ignore[arg-type]
    return run


def _names(result: Result) -> list[str]:
    return [r["name"] for r in json.loads(result.stdout)]


def test_runs_takes_filters_as_words_or_an_option(cli: Callable[..., Result]) -> None:
    _run("small", lr=0.001)
    _run("large", lr=0.1)
    _run("broken", status="FAILED", lr=0.1)
    assert _names(cli("runs", "status=FINISHED", "param.lr>0.01", "--json")) == ["large"]
    assert _names(cli("runs", "--filter", "status!=FINISHED", "--json")) == ["broken"]
    assert _names(cli("runs", "-f", "metric.val/acc<0.5 tag.team=vision", "--json")) == ["small"]
    assert _names(cli("runs", "name~a", "since=1h", "--json")) == ["small", "large"]
    assert _names(cli("runs", "until=1h", "--json")) == []
    error = cli("runs", "status=FINISHED", "parm.lr>1", code=2).stderr
    assert "unknown field 'parm.lr'" in error and "did you mean 'param'" in error
    assert "^^^^^^^" in error  # under the bad word


def test_rm_and_prune_delete_journals(cli: Callable[..., Result]) -> None:
    keep, old, failed = _run("keep"), _run("old"), _run("failed", status="FAILED")
    with Journal(old.journal_path) as journal:
        journal.set_meta(created=time.time() - 40 * 86400)

    listed = cli("prune", "--older-than", "30d", "--dry-run").stdout
    assert "would delete" in listed and old.id[:8] in listed and old.run_dir.exists()
    assert "say which runs" in cli("prune", code=2).stderr
    assert cli("prune", "--older-than", "30d", input="n\n", code=1).exit_code == 1  # asked, and refused
    assert old.run_dir.exists()
    cli("prune", "--older-than", "30d", input="y\n")
    assert not old.run_dir.exists()

    cli("prune", "--status", "failed", "--yes")
    assert not failed.run_dir.exists() and keep.run_dir.exists()
    cli("rm", keep.id[:6])
    assert not keep.run_dir.exists()
    assert "No run matches" in cli("rm", "nope", code=1).stderr


def test_open_names_each_tracker_and_rm_trackers_deletes_there(
    all_trackers: dict[str, Path], mlflow_uri: str, cli: Callable[..., Result]
) -> None:
    run = _run("everywhere", backends=("mlflow", "aim", "wandb"))
    ids = run.backend_run_ids
    places = {p["backend"]: p for p in json.loads(cli("open", run.id, "--json").stdout)}
    client = MlflowClient(mlflow_uri)
    experiment = client.get_run(ids["mlflow"]).info.experiment_id
    assert places["mlflow"]["command"] == f"mlflow ui --backend-store-uri {mlflow_uri}"
    assert places["mlflow"]["url"] == f"http://127.0.0.1:5000/#/experiments/{experiment}/runs/{ids['mlflow']}"
    assert places["aim"]["command"] == f"aim up --repo {all_trackers['aim']}"
    assert places["aim"]["url"].endswith(f"/runs/{ids['aim']}")
    wandb_folder = Path(places["wandb"]["location"])
    assert places["wandb"]["command"] == f"wandb sync {wandb_folder}" and wandb_folder.is_dir()
    text = cli("open", run.id).stdout
    assert "mlflow: mlflow ui --backend-store-uri" in text and "aim: aim up --repo" in text

    assert cli("rm", run.id, "--trackers", input="n\n", code=1).exit_code == 1
    assert client.get_run(ids["mlflow"]).info.lifecycle_stage == "active"
    removed = json.loads(cli("rm", run.id, "--trackers", "--yes", "--json").stdout)
    assert removed[0]["removed"] and all(t["done"] for t in removed[0]["trackers"])
    assert client.get_run(ids["mlflow"]).info.lifecycle_stage == "deleted"
    from aim.sdk.repo import Repo

    assert ids["aim"] not in {r.hash for r in Repo.from_path(str(all_trackers["aim"])).iter_runs()}
    assert not wandb_folder.exists() and not run.run_dir.exists()


def test_version_completion_and_plain_help(cli: Callable[..., Result]) -> None:
    assert cli("--version").stdout.strip() == f"tracelet {tracelet_core.__version__}"
    assert "--install-completion" in cli("--help").stdout
    for command in ("runs", "show", "sync", "migrate", "compare", "import-tensorboard", "rm", "prune", "open"):
        text = cli(command, "--help").stdout
        assert "<bool>" not in text and "<str>" not in text and "list[str]" not in text, text
        assert "{" not in text.split("Usage:")[1].splitlines()[0], text
    assert "Usage: tracelet show [OPTIONS] RUN" in " ".join(cli("show", "--help").stdout.split())
    assert "Usage: tracelet runs [OPTIONS] [FILTER]..." in " ".join(cli("runs", "--help").stdout.split())


@pytest.fixture(autouse=True)
def _wide_help(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(os.environ, "COLUMNS", "160")

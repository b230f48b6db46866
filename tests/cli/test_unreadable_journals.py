"""One damaged journal never takes the others down: `runs`, `show`, `sync`, `compare` and `migrate` beside real
broken files (empty, random bytes, a garbage page, another schema, a dropped table, bad UTF-8, cut short).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import Result
from mlflow.tracking import MlflowClient

import tracelet_core
from tracelet_core.pipeline.journal import JOURNAL_FILENAME
from tracelet_core.trackers.journal.reader import journal_runs, load_run

STEPS = 2500  # two metrics a step: 5,000 events, a journal of a few hundred pages
PAGE = 4096  # SQLite's default page size


def _sql(path: Path, script: str) -> None:
    """Run ``script`` on ``path`` and leave every change in the main file (no -wal beside it)."""
    with closing(sqlite3.connect(path)) as db:
        db.executescript(script)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode=DELETE")


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(7).randbytes(path.stat().st_size))


def _garbage_page(path: Path) -> None:
    pages = path.stat().st_size // PAGE
    with path.open("r+b") as file:
        file.seek(pages // 2 * PAGE)  # a page of the events table: they make up most of the file
        file.write(b"\xab" * PAGE)


def _other_schema(path: Path) -> None:
    path.unlink()
    _sql(path, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users(name) VALUES ('ada');")


def _dropped_table(path: Path) -> None:
    _sql(path, "DROP TABLE events;")


def _bad_utf8(path: Path) -> None:
    _sql(
        path,
        "UPDATE events SET key = CAST(x'fffe41' AS TEXT) "
        "WHERE seq = (SELECT MIN(seq) FROM events WHERE kind = 'metric');"
        "UPDATE meta SET value = CAST(x'22ff6e616d6522' AS TEXT) WHERE key = 'run_name';",  # the JSON "\xffname"
    )


def _truncated(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 3 + 100)  # not even a whole number of pages


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "empty": _empty,
    "random": _random_bytes,
    "page": _garbage_page,
    "schema": _other_schema,
    "dropped": _dropped_table,
    "utf8": _bad_utf8,
    "truncated": _truncated,
}
# The reason `tracelet runs` gives for each damage, met opening the journal or reading its summary (the cut
# file lacks the last page of events); None where the summary reads: a garbage page among the events is met
# reading them (`show`), and bad UTF-8 is read with replacement characters.
LISTED_AS = {
    "empty": "an empty file",
    "random": "file is not a database",
    "page": None,
    "schema": "a SQLite file without the table(s) meta, events, deliveries",
    "dropped": "a SQLite file without the table(s) events",
    "utf8": None,
    "truncated": "database disk image is malformed",
}


def _start(run_id: str, journal_dir: Path, name: str) -> tracelet_core.Run:
    return tracelet_core.start_logging(
        "digits",
        backends=[],
        run_id=run_id,
        run_name=name,
        journal_dir=journal_dir,
        flush_interval=0.01,
        system_metrics=False,
        git=False,
        environment=False,
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once: two small healthy runs, and a big run (``victim``) whose copies are damaged."""
    root = tmp_path_factory.mktemp("journals") / ".tracelet"
    for index, run_id in enumerate(("healthy1", "healthy2")):
        run = _start(run_id, root, f"healthy-{index}")
        run.log_params({"lr": 0.01 * (index + 1)})
        for step in range(10):
            run.log_metric("loss", 1.0 / (step + 1) + index, step=step)
        run.finish()
    victim = _start("victim", root, "victim")
    for step in range(STEPS):
        victim.log_metrics({"loss": 1.0 / (step + 1), "acc": step / STEPS}, step=step)
    victim.finish()
    for path in root.glob(f"*/*/{JOURNAL_FILENAME}"):
        _sql(path, "")
    return root


@pytest.fixture
def journals(template: Path, isolated: Path) -> Path:
    """``./.tracelet``: the healthy runs, and one damaged copy of the big run per kind (run id ``broken-<kind>``)."""
    root = isolated / ".tracelet"
    shutil.copytree(template, root)
    victim = root / "digits" / "victim"
    for kind, corrupt in CORRUPTIONS.items():
        copy = root / "digits" / f"broken-{kind}"
        shutil.copytree(victim, copy)
        _sql(copy / JOURNAL_FILENAME, f"""UPDATE meta SET value = '"broken-{kind}"' WHERE key = 'run_id';""")
        corrupt(copy / JOURNAL_FILENAME)
    shutil.rmtree(victim)
    return root


def _healthy_is_intact(cli: Callable[..., Result]) -> None:
    shown = json.loads(cli("show", "healthy1", "--json").stdout)
    assert shown["status"] == "FINISHED" and shown["error"] is None
    assert shown["params"] == {"lr": "0.01"}
    assert [shown["metrics"]["loss"][k] for k in ("last", "points")] == [0.1, 10]


def test_runs_lists_each_damaged_journal_with_the_reason(journals: Path, cli: Callable[..., Result]) -> None:
    listed = {run["run_id"]: run for run in json.loads(cli("runs", "--json").stdout)}
    assert {"healthy1", "healthy2"} <= set(listed)
    assert listed["healthy1"]["status"] == "FINISHED" and listed["healthy1"]["error"] is None
    for kind, reason in LISTED_AS.items():
        run = listed[f"broken-{kind}"]
        if reason is None:
            assert run["status"] == "FINISHED" and run["error"] is None, run
            continue
        assert run["status"] == "UNREADABLE" and reason in run["error"], run
        assert run["experiment"] == "digits" and run["events"] is None and run["backends"] == []
        assert f"digits/broken-{kind}/{JOURNAL_FILENAME}" in run["error"]

    table = cli("runs").stdout
    unreadable = [line for line in table.splitlines() if "UNREADABLE" in line]
    assert len(unreadable) == sum(1 for reason in LISTED_AS.values() if reason)
    assert any("broken-e" in line and "an empty file" in line for line in unreadable)
    assert "healthy1" in table and "5 journal(s) cannot be read" in table


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_show_says_why_a_journal_cannot_be_read(kind: str, journals: Path, cli: Callable[..., Result]) -> None:
    _healthy_is_intact(cli)
    if kind == "utf8":  # readable: the bytes that are not UTF-8 become replacement characters
        shown = json.loads(cli("show", "broken-utf8", "--json").stdout)
        assert shown["name"] == "\ufffdname" and "\ufffd\ufffdA" in shown["metrics"]
        assert shown["metrics"]["loss"]["points"] == STEPS - 1 and shown["metrics"]["acc"]["points"] == STEPS
        assert "\ufffd\ufffdA" in cli("show", "broken-utf8").stdout
        return
    for args in (("show", f"broken-{kind}"), ("show", f"broken-{kind}", "--json")):
        result = cli(*args, code=1)
        assert result.stdout == ""
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("error: ") and (LISTED_AS[kind] or "database disk image is malformed") in line
    _healthy_is_intact(cli)


@pytest.mark.filterwarnings("ignore:mlflow does not accept the key")  # the bad UTF-8 key, delivered renamed
def test_sync_skips_what_it_cannot_read_and_delivers_the_rest(
    journals: Path, mlflow_uri: str, cli: Callable[..., Result]
) -> None:
    result = cli("sync", "--to", "mlflow", "--timeout", "5", code=1)
    lines = {line.split(":", 1)[0][2:]: line for line in result.stdout.splitlines() if line[:1] in "✓✗…"}
    assert "delivered to mlflow" in lines["healthy1"] and "delivered to mlflow" in lines["healthy2"]
    for kind, reason in LISTED_AS.items():
        if reason is not None:
            line = lines[f"broken-{kind}"[:8]]
            assert "skipped: " in line and reason in line
    assert lines["broken-p"].startswith("✗") and "malformed" in lines["broken-p"]  # met reading its events
    assert "delivered to mlflow" in lines["broken-u"]
    client = MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("digits")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    by_name = {run.info.run_name: run for run in runs}
    history = client.get_metric_history(by_name["healthy-0"].info.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(s, 1.0 / (s + 1)) for s in range(10)]

    again = cli("sync", code=1)  # the damaged runs are reported every time, the delivered ones left alone
    assert "healthy1" not in again.stdout and "skipped" in again.stdout
    _healthy_is_intact(cli)


def test_compare_and_migrate_of_healthy_runs_work_beside_damaged_ones(
    journals: Path, mlflow_uri: str, cli: Callable[..., Result]
) -> None:
    compared = json.loads(cli("compare", "healthy1", "healthy2", "-m", "loss", "--json").stdout)
    assert [r["final"] for r in compared["runs"]] == [0.1, 1.1]
    failed = cli("compare", "healthy1", "broken-empty", "-m", "loss", code=1)
    assert "an empty file" in " ".join(failed.stderr.split())

    migrated = json.loads(
        cli("migrate", "--from", "journal:.tracelet", "--to", f"mlflow:{mlflow_uri}", "--json", code=1).stdout
    )
    outcomes = {run["source"]: run for run in migrated["runs"]}
    assert outcomes["journal:healthy1"]["action"] == "copied" and outcomes["journal:healthy2"]["action"] == "copied"
    for kind, reason in LISTED_AS.items():
        if reason is not None:
            assert outcomes[f"journal:broken-{kind}"]["action"] == "failed"
            assert reason in outcomes[f"journal:broken-{kind}"]["reason"]


def test_the_console_script_prints_no_traceback(
    journals: Path, tracelet: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    commands = [("runs",), ("runs", "--json"), ("show", "healthy1"), ("sync",), ("doctor", "--backends", "aim")]
    commands += [("show", f"broken-{kind}") for kind in CORRUPTIONS]
    for args in commands:
        done = tracelet(*args)
        assert "Traceback" not in done.stdout + done.stderr, (args, done.stderr)
        assert done.returncode in (0, 1), (args, done.returncode, done.stderr)
    doctor = tracelet("doctor", "--backends", "aim", "--json")
    journal = next(check for check in json.loads(doctor.stdout)["system"] if check["name"] == "journal")
    assert journal["level"] == "warn" and journal["details"]["unreadable_runs"] == 5


def test_a_journal_being_created_is_listed_not_fatal(isolated: Path) -> None:
    """A starting run's journal is an empty file for an instant: listed as unreadable then, and read once it is
    a journal."""
    path = isolated / ".tracelet" / "digits" / "starting" / JOURNAL_FILENAME
    path.parent.mkdir(parents=True)
    path.touch()
    (run,) = journal_runs(isolated / ".tracelet")
    assert run.status == "UNREADABLE" and not run.readable and run.run_id == "starting"
    _start("starting", isolated / ".tracelet", "late").finish()
    assert load_run(path).status == "FINISHED"


def test_listing_while_runs_start_never_fails(isolated: Path) -> None:
    root = isolated / ".tracelet"
    root.mkdir()
    failures: list[BaseException] = []

    def start_runs() -> None:
        try:
            for index in range(15):
                run = _start(f"run{index:02d}", root, f"r{index}")
                run.log_metric("loss", 1.0, step=0)
                run.finish()
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    starter = threading.Thread(target=start_runs)
    starter.start()
    listings = 0
    while starter.is_alive():
        for run in journal_runs(root):  # must not raise, whatever instant it meets a journal in
            assert run.readable or run.status == "UNREADABLE"
        listings += 1
    starter.join()
    assert not failures and listings > 1
    runs = journal_runs(root)
    assert len(runs) == 15 and all(run.status == "FINISHED" for run in runs)


def test_records_damaged_unnoticed_by_sqlite_are_left_out_and_counted(
    journals: Path, cli: Callable[..., Result]
) -> None:
    _sql(
        journals / "digits" / "healthy2" / JOURNAL_FILENAME,
        "UPDATE events SET num = NULL, text = 'garbage' "
        "WHERE seq = (SELECT MIN(seq) FROM events WHERE kind = 'metric');"
        "UPDATE events SET text = '{not json' WHERE kind = 'start';",
    )
    shown = json.loads(cli("show", "healthy2", "--json").stdout)
    assert shown["damaged"] == 2 and shown["sessions"] == 0
    assert shown["metrics"]["loss"]["points"] == 9 and shown["params"] == {"lr": "0.02"}
    assert "2 damaged event(s)" in cli("show", "healthy2").stdout
    compared = json.loads(cli("compare", "healthy1", "healthy2", "-m", "loss", "--json").stdout)
    assert [r["points"] for r in compared["runs"]] == [10, 9]

"""The journal's contract: a journal as the first release wrote it still reads, typed, and is delivered;
metadata and queue items are checked where they are made."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tracelet_core.pipeline.contract import DeliveryState, EventKind, RunMeta, encode_meta
from tracelet_core.pipeline.delivery import DeliveryService
from tracelet_core.pipeline.journal import Journal
from tracelet_core.pipeline.schema import REJECTED_SCHEMA, SCHEMA
from tracelet_core.testing import MEMORY, InMemoryBackend


def _first_release_journal(run_dir: Path, staged: Path) -> Path:
    """A finished journal-only run, byte for byte as the first release wrote it: raw SQL, its texts."""
    path = run_dir / "journal.sqlite"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA + REJECTED_SCHEMA)
    meta = {
        "run_id": "0ld",
        "experiment": "old",
        "run_name": None,
        "backends": [],
        "backend_options": {},
        "backend_paths": {},
        "trainer_pid": 1,
        "trainer_create_time": 0.0,
        "trainer_host": "elsewhere",
        "give_up_after": 300.0,
        "max_retry_backoff": 0.2,
        "status": "FINISHED",
        "created": 10.0,
        "ended": 20.0,
        "dropped_events": 0,
        "lost_events": 0,
    }  # no keep_uploaded_files: the setting came later
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    db.executemany("INSERT INTO meta VALUES (?, ?)", [(key, json.dumps(value)) for key, value in meta.items()])
    start = {
        "run_id": "0ld",
        "experiment": "old",
        "run_name": None,
        "tags": {"team": "a"},
        "start_time": 10.0,
        "run_dir": str(run_dir),
        "resumed": False,
    }
    rows = [
        ("start", None, None, json.dumps(start), None, 10.0),
        ("metric", "loss", 0.5, None, 1, 11.0),
        ("metric", "loss", None, "nan", 2, 12.0),
        ("param", "lr", None, "0.1", None, 11.0),
        ("artifact", "model.txt", None, json.dumps({"path": str(staged), "metadata": {}}), None, 13.0),
        ("finish", None, None, "FINISHED", None, 20.0),
    ]
    db.executemany("INSERT INTO events(kind, key, num, text, step, ts) VALUES (?,?,?,?,?,?)", rows)
    db.commit()
    db.close()
    return path


def test_a_first_release_journal_reads_typed_and_is_delivered(isolated: Path) -> None:
    run_dir = isolated / ".tracelet" / "old" / "0ld"
    staged = run_dir / "files" / "abc" / "model.txt"
    staged.parent.mkdir(parents=True)
    staged.write_text("weights")
    path = _first_release_journal(run_dir, staged)

    with Journal(path) as journal:
        meta = journal.meta()
        kinds = [event.kind for event in journal.read(0)]
        journal.register_backends([MEMORY])
    assert (meta.run_id, meta.status, meta.created, meta.schema_version) == ("0ld", "FINISHED", 10.0, 1)
    assert meta.keep_uploaded_files is True  # older journals keep their files
    assert kinds == [
        EventKind.START,
        EventKind.METRIC,
        EventKind.METRIC,
        EventKind.PARAM,
        EventKind.ARTIFACT,
        EventKind.FINISH,
    ]

    assert DeliveryService(path, backends=[MEMORY]).start().wait(30)

    recorded = InMemoryBackend.runs[f"memory-{meta.run_id}"]
    assert [(step, str(value)) for step, value in recorded.history("loss")] == [(1, "0.5"), (2, "nan")]
    assert recorded.params == {"lr": "0.1"} and recorded.tags["team"] == "a"
    assert recorded.files["model.txt"] == b"weights" and staged.exists()
    with Journal(path) as journal:
        assert journal.deliveries()[MEMORY].state is DeliveryState.CLOSED


def test_metadata_reads_leniently_and_writes_only_its_fields() -> None:
    meta = RunMeta.from_rows([("created", '"yesterday"'), ("backends", '["mlflow"]'), ("added_later", "1")])
    assert meta.created is None and meta.backends == ("mlflow",)
    with pytest.raises(ValueError, match="not run metadata: stauts"):
        encode_meta(stauts="FINISHED")

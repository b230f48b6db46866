"""The run pipeline: queue -> journal -> ordered delivery with retry, acknowledgements, failure isolation."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import tracelet_core
from tracelet_core.pipeline.delivery import DeliveryService
from tracelet_core.pipeline.journal import Journal
from tracelet_core.testing import FAILING, HANGING, MEMORY, HangingBackend, InMemoryBackend


def _start(backends: list[str], **options: object) -> tracelet_core.Run:
    return tracelet_core.start_logging("pipeline", backends=backends, delivery="thread", **options)


def test_every_point_reaches_the_backend_in_order() -> None:
    run = _start([MEMORY], flush_interval=0.01)
    for step in range(500):
        run.log_metrics({"a": step * 1.0, "b": -step}, step=step)
    run.log_params({"model": {"layers": 3}})
    run.set_tags({"team": "vision"})
    report = run.finish()
    assert report.complete
    recorded = InMemoryBackend.runs[run.backend_run_ids[MEMORY]]
    assert recorded.history("a") == [(s, float(s)) for s in range(500)]
    assert recorded.history("b") == [(s, float(-s)) for s in range(500)]
    assert recorded.params["model/layers"] == "3"
    assert recorded.tags["team"] == "vision"
    assert recorded.status == "FINISHED"
    assert [a.name for a in recorded.artifacts] == ["tracelet/config.yaml"]


def test_the_journal_is_the_source_of_truth(isolated: Path) -> None:
    run = _start([])
    run.log_metric("loss", 0.5, step=3)
    run.log_metric("loss", float("nan"), step=4)
    run.log_metric("loss", float("-inf"), step=5)
    report = run.finish()
    assert report.backends == ()
    with Journal(run.journal_path) as journal:
        metrics = [e for e in journal.read(0) if e.kind == "metric"]
        assert journal.meta().status == "FINISHED"
    assert (metrics[0].step, metrics[0].value) == (3, 0.5)
    assert str(metrics[1].value) == "nan"
    assert metrics[2].value == float("-inf")
    assert run.journal_path.is_relative_to(isolated / ".tracelet" / "pipeline")


def test_failing_backend_never_reaches_training_and_is_reported() -> None:
    run = _start([FAILING, MEMORY], finish_timeout=1.0, max_retry_backoff=0.2)
    started = time.perf_counter()
    for step in range(2000):
        run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    logging_time = time.perf_counter() - started
    report = run.finish()
    by_name = {b.name: b for b in report.backends}
    assert by_name[MEMORY].complete
    assert not by_name[FAILING].complete
    assert by_name[FAILING].pending == report.total
    assert "ConnectionError" in (by_name[FAILING].error or "")
    assert "undelivered" in report.summary() and "tracelet sync" in report.summary()
    with Journal(run.journal_path) as journal:
        assert journal.count("metric") == 2000
    assert logging_time < 2.0  # generous: 2000 enqueues take milliseconds


def test_hanging_backend_blocks_neither_logging_nor_finish() -> None:
    HangingBackend.hold()
    run = _start([HANGING, MEMORY], finish_timeout=1.0)
    try:
        started = time.perf_counter()
        for step in range(1000):
            run.log_metric("x", step, step=step)
        assert time.perf_counter() - started < 2.0
        finish_started = time.perf_counter()
        report = run.finish()
        assert time.perf_counter() - finish_started < 5.0
        by_name = {b.name: b for b in report.backends}
        assert by_name[MEMORY].complete
        assert by_name[HANGING].pending > 0
    finally:
        HangingBackend.release()


def test_delivery_resumes_from_acknowledgements_without_duplicates(isolated: Path) -> None:
    run = _start([], flush_interval=0.01)
    for step in range(100):
        run.log_metric("x", step, step=step)
    run.finish()
    # Deliver half, "crash", then a second delivery picks up where the first stopped.
    with Journal(run.journal_path) as journal:
        journal.register_backends([MEMORY])
        events = journal.read(0)
        half = events[len(events) // 2].seq
    service = DeliveryService(run.journal_path, backends=[MEMORY], options={})
    service.start()
    assert service.wait(10)
    first = InMemoryBackend.runs[f"memory-{run.id}"]
    assert [s for s, _ in first.history("x")] == list(range(100))
    with Journal(run.journal_path) as journal:
        journal.update_delivery(MEMORY, acked_seq=half, state="open")
    first.metrics.clear()
    DeliveryService(run.journal_path, backends=[MEMORY], options={}).start().wait(10)
    again = [s for s, _ in first.history("x")]
    assert again == list(range(100))[-len(again) :]  # only the unacknowledged tail, once
    assert first.opened == 2  # re-opened the same native run to resume


def test_resume_appends_to_the_same_run() -> None:
    run = _start([MEMORY])
    run.log_metric("x", 1.0, step=1)
    run.finish()
    again = _start([MEMORY], run_id=run.id)
    assert again.resumed
    again.log_metric("x", 2.0, step=2)
    again.finish()
    recorded = InMemoryBackend.runs[f"memory-{run.id}"]
    assert recorded.history("x") == [(1, 1.0), (2, 2.0)]
    assert recorded.opened == 2


def test_a_deferred_run_opens_nothing_until_its_first_use(isolated: Path) -> None:
    from tracelet_core.api import start_run
    from tracelet_core.settings import load_settings

    settings = load_settings(experiment="pipeline", backends=[MEMORY], delivery="thread")
    run = start_run(settings, deferred=True)
    assert run.deferred and run.active
    assert not run.run_dir.exists() and f"memory-{run.id}" not in InMemoryBackend.runs

    run.log_metric("x", 1.0, step=1)  # the first use starts it
    assert not run.deferred and run.journal_path.exists()
    assert run.finish().complete
    assert InMemoryBackend.runs[f"memory-{run.id}"].history("x") == [(1, 1.0)]


def test_a_deferred_run_that_was_never_used_still_ends_in_the_tracker(isolated: Path) -> None:
    from tracelet_core.api import start_run
    from tracelet_core.settings import load_settings

    run = start_run(load_settings(backends=[MEMORY], delivery="thread"), deferred=True)
    run.restart_collectors(system_metrics=False)  # only changes the settings it will start with
    assert run.deferred and run.settings.system_metrics is False
    assert run.finish().complete
    assert InMemoryBackend.runs[f"memory-{run.id}"].status == "FINISHED"


def test_context_manager_marks_failures() -> None:
    with pytest.raises(RuntimeError), _start([MEMORY]) as run:
        run.log_metric("x", 1.0)
        raise RuntimeError("boom")
    assert run.status == "FAILED"
    assert InMemoryBackend.runs[f"memory-{run.id}"].status == "FAILED"


def test_disabled_makes_every_call_a_no_op(isolated: Path) -> None:
    run = tracelet_core.start_logging(enabled=False)
    run.log_metric("x", 1.0)
    run.log_params({"a": 1})
    assert run.finish().total == 0
    assert not (isolated / ".tracelet").exists()


def test_bad_metric_values_warn_once_and_lose_nothing_else() -> None:
    run = _start([MEMORY])
    with pytest.warns(tracelet_core.TraceletWarning, match="'name'") as caught:
        for step in range(5):
            run.log_metrics({"good": step, "name": "abc", "none": None}, step=step)
        run.finish()
    assert len([w for w in caught if "'name'" in str(w.message)]) == 1
    recorded = InMemoryBackend.runs[f"memory-{run.id}"]
    assert [s for s, _ in recorded.history("good")] == list(range(5))


def test_log_artifact_snapshots_the_file(isolated: Path) -> None:
    path = isolated / "model.txt"
    path.write_text("v1")
    run = _start([MEMORY])
    run.log_artifact(path, name="models/model.txt")
    path.unlink()  # gone before delivery: the run kept its own link
    run.finish()
    recorded = InMemoryBackend.runs[f"memory-{run.id}"]
    assert recorded.files["models/model.txt"] == b"v1"
    staged = Path(next(a.path for a in recorded.artifacts if a.name == "models/model.txt"))
    assert not staged.exists(), "the run's copy is deleted once every tracker has the file"
    with pytest.raises(FileNotFoundError, match="existing file"):
        _start([]).log_artifact(isolated / "missing.bin")


@pytest.mark.parametrize(("backends", "keep"), [([MEMORY], True), ([], False)])
def test_the_runs_copy_of_a_file_stays_when_asked_or_with_no_tracker(
    isolated: Path, backends: list[str], keep: bool
) -> None:
    path = isolated / "model.txt"
    path.write_text("v1")
    run = _start(backends, keep_uploaded_files=keep)
    run.log_artifact(path)
    run.finish()
    with Journal(run.journal_path) as journal:
        (event,) = [e for e in journal.read(0) if e.kind == "artifact"]
    assert Path(event.payload()["path"]).read_text() == "v1"


def test_media_are_encoded_off_the_training_thread() -> None:
    import numpy as np

    run = _start([MEMORY])
    run.log_image("samples", np.zeros((8, 8, 3), dtype=np.uint8), step=1)
    run.log_histogram("weights", np.random.default_rng(0).normal(size=1000), step=1)
    run.log_text("notes", "hello", step=2)
    run.finish()
    media = {m.kind: m for m in InMemoryBackend.runs[f"memory-{run.id}"].media}
    assert Path(media["image"].path or "").read_bytes().startswith(b"\x89PNG")
    assert len(media["histogram"].data["bins"]) == len(media["histogram"].data["counts"]) + 1
    assert media["text"].data == {"text": "hello"}


def test_logging_from_many_threads() -> None:
    run = _start([MEMORY])

    def worker(name: str) -> None:
        for step in range(200):
            run.log_metric(name, step, step=step)

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.finish()
    recorded = InMemoryBackend.runs[f"memory-{run.id}"]
    for i in range(4):
        assert [s for s, _ in recorded.history(f"t{i}")] == list(range(200))


def test_a_backend_registered_by_name_is_delivered_by_the_delivery_process(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """register_backend() runs in the training process only; the journal tells the delivery process the class."""
    from tracelet_core import register_backend, trackers

    monkeypatch.setattr(trackers, "_registered", {})  # the registration ends with this test
    register_backend("jsonl-for-test", "tests.support.jsonl_backend:JsonLinesBackend")
    run = tracelet_core.start_logging("registered", backends=["jsonl-for-test"], finish_timeout=60)
    run.log_metric("x", 1.5, step=3)
    report = run.finish()
    assert report.complete, report.summary()
    lines = (isolated / "jsonl-for-test.jsonl").read_text().splitlines()
    assert any('"x"' in line and "1.5" in line for line in lines)

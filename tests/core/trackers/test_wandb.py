"""The W&B backend against the real wandb SDK in offline mode, read back from the run's ``.wandb`` file."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tracelet_core
from tracelet_core.errors import BackendError, ErrorKind, TraceletWarning
from tracelet_core.events import ArtifactRef, Batch, MediaItem, MetricPoint, RunInfo, RunStatus
from tracelet_core.trackers import load_backend_class
from tracelet_core.trackers.wandb.backend import WandbBackend
from tracelet_core.trackers.wandb.mapping import (
    GLOBAL_STEP,
    STATUS_KEY,
    WALL_TIME,
    config_value,
    fit_histogram,
    group_rows,
    wandb_run_id,
)

wandb = pytest.importorskip("wandb")

from tests.support.http_stub import always, closed_port, http_stub  # noqa: E402
from tests.support.wandb_env import offline_wandb  # noqa: E402
from tests.support.wandb_reader import WandbRun, read_run, run_file, same_value  # noqa: E402

T0 = 1_790_000_000.0  # when points were "logged": far from the delivery time, to tell which one W&B keeps


@pytest.fixture(autouse=True)
def wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Offline wandb writing only under tmp_path, a fresh wandb singleton and fresh warn-once state."""
    with offline_wandb(tmp_path, monkeypatch):
        yield tmp_path


def run_info(tmp_path: Path, **changes: Any) -> RunInfo:
    fields: dict[str, Any] = {
        "run_id": "tl-run-1",
        "experiment": "digits",
        "run_name": "first run",
        "tags": {"team": "vision"},
        "start_time": T0,
        "run_dir": str(tmp_path / "run"),
    }
    return RunInfo(**(fields | changes))


def opened(tmp_path: Path, options: dict[str, Any] | None = None, **changes: Any) -> WandbBackend:
    backend = WandbBackend(options or {})
    backend.open(run_info(tmp_path, **changes), None)
    return backend


def finish(backend: WandbBackend, status: RunStatus = "FINISHED") -> WandbRun:
    location = backend.location()
    assert location is not None
    backend.close(status)
    return read_run(run_file(location))


def step_points(key: str, steps: range, value: Any, offset: float = 0.0) -> list[MetricPoint]:
    return [MetricPoint(key, value(s), s, T0 + s + offset) for s in steps]


# ---- pure helpers ------------------------------------------------------------------------------


@given(
    st.lists(
        st.tuples(st.sampled_from("abc"), st.one_of(st.none(), st.integers(0, 3)), st.integers(0, 2)),
        max_size=40,
    )
)
def test_group_rows_keeps_every_point_and_each_keys_order(spec: list[tuple[str, int | None, int]]) -> None:
    pts = [MetricPoint(k, float(i), step, T0 + t) for i, (k, step, t) in enumerate(spec)]
    rows = group_rows(pts)
    flattened = [(key, value, row.step) for row in rows for key, value in row.values.items()]
    assert sorted(flattened) == sorted((p.key, p.value, p.step) for p in pts)
    for key in "abc":
        assert [v for k, v, _ in flattened if k == key] == [p.value for p in pts if p.key == key]
    by_value = {p.value: p for p in pts}
    for row in rows:
        assert row.timestamp == max(by_value[v].timestamp for v in row.values.values())
        assert {by_value[v].step for v in row.values.values()} == {row.step}


def test_group_rows_shares_a_row_per_step_and_a_row_per_time_without_step() -> None:
    pts = [
        MetricPoint("loss", 1.0, 5, T0),
        MetricPoint("system/cpu", 50.0, None, T0 + 1),
        MetricPoint("acc", 0.5, 5, T0 + 2),
        MetricPoint("system/mem", 20.0, None, T0 + 1),
        MetricPoint("loss", 0.9, 6, T0 + 3),
        MetricPoint("val/loss", 1.1, 5, T0 + 4),  # validation at an earlier step joins step 5's row
        MetricPoint("system/cpu", 40.0, None, T0 + 11),
    ]
    assert [(r.step, r.values, r.timestamp) for r in group_rows(pts)] == [
        (5, {"loss": 1.0, "acc": 0.5, "val/loss": 1.1}, T0 + 4),
        (None, {"system/cpu": 50.0, "system/mem": 20.0}, T0 + 1),
        (6, {"loss": 0.9}, T0 + 3),
        (None, {"system/cpu": 40.0}, T0 + 11),
    ]


def test_config_values_are_typed_only_when_the_text_round_trips() -> None:
    typed = {"0.001": 0.001, "32": 32, "-7": -7, "1e+20": 1e20, "True": True, "False": False}
    for text, value in typed.items():
        assert config_value(text) == value
        assert type(config_value(text)) is type(value)
    for text in ["1e-3", "007", "nan", "inf", "None", "[1, 2]", "adam", "", " 1"]:
        assert config_value(text) == text


def test_histograms_over_512_bins_are_merged_without_losing_counts() -> None:
    counts, bins = fit_histogram(list(range(1500)), [i / 10 for i in range(1501)])
    assert len(counts) <= 512
    assert len(bins) == len(counts) + 1
    assert sum(counts) == sum(range(1500))
    assert bins[0] == 0
    assert bins[-1] == 150.0
    assert fit_histogram([1, 2], [0, 1, 2]) == ([1, 2], [0, 1, 2])


def test_importing_the_module_does_not_import_wandb_and_the_registry_finds_it() -> None:
    code = "import sys, tracelet_core.trackers.wandb.backend; assert 'wandb' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert load_backend_class("wandb") is WandbBackend
    assert WandbBackend.capabilities.media == {"image", "histogram", "text"}
    assert WandbBackend.capabilities.max_tag_length == 64


def test_use_before_open_is_an_error_and_close_without_open_does_nothing() -> None:
    backend = WandbBackend({})
    with pytest.raises(BackendError, match="before open"):
        backend.write(Batch(params={"a": "1"}))
    backend.close("FINISHED")
    assert backend.location() is None


# ---- against offline wandb ---------------------------------------------------------------------


def test_history_holds_every_point_against_the_global_step(tmp_path: Path) -> None:
    train = (
        step_points("train/loss", range(200), lambda s: 1 / (s + 1))
        + step_points("train/acc", range(200), lambda s: s / 200, 0.1)
        + step_points("lr", range(200), lambda s: 0.1, 0.2)
    )
    epochs = step_points("epoch", range(0, 200, 50), lambda s: float(s // 50), 0.05)
    val = step_points("val/loss", range(49, 200, 50), lambda s: 10.0 - s / 50, 1.3)  # after step s + 1
    system = [
        MetricPoint(key, float(i), None, T0 + 10 * i)
        for i in range(5)
        for key in ("system/cpu_percent", "system/memory_percent")
    ]
    special = [
        MetricPoint("train/loss", value, 200 + i, T0 + 200 + i)
        for i, value in enumerate([math.nan, math.inf, -math.inf])
    ]
    logged = sorted(train + epochs + val + system, key=lambda p: p.timestamp) + special

    def deliver() -> tuple[str, WandbRun]:  # from a worker thread, as Tracelet's delivery does
        backend = WandbBackend({})
        native_id = backend.open(run_info(tmp_path), None)
        for start in range(0, len(logged), 97):
            backend.write(Batch(metrics=logged[start : start + 97]))
        location = backend.location()
        run = finish(backend)
        assert run_file(location or "").stat().st_size > 2 * 32 * 1024  # records span several blocks
        return native_id, run

    with ThreadPoolExecutor(1) as worker:
        native_id, run = worker.submit(deliver).result(timeout=60)

    assert run.run.run_id == native_id
    for key in ("train/loss", "train/acc", "lr", "epoch", "val/loss"):
        expected = [(p.step, p.value) for p in logged if p.key == key]
        got = run.series(key)
        assert [step for step, _ in got] == [step for step, _ in expected], key
        assert all(same_value(g, e) for (_, g), (_, e) in zip(got, expected, strict=True)), key
    for key in ("system/cpu_percent", "system/memory_percent"):
        assert run.series(key, axis=WALL_TIME) == [(p.timestamp, p.value) for p in logged if p.key == key]
        assert all(GLOBAL_STEP not in row for row in run.history if key in row)
    assert run.metrics["train/loss"].step_metric == GLOBAL_STEP
    assert run.metrics["epoch"].step_metric == GLOBAL_STEP
    assert run.metrics["system/cpu_percent"].step_metric == WALL_TIME
    assert run.metrics[WALL_TIME].options.hidden
    stepped_rows = [row for row in run.history if GLOBAL_STEP in row]
    assert 203 <= len(stepped_rows) <= 203 + len(val)  # points of a step share one run.log call
    assert all(T0 <= row["_timestamp"] <= T0 + 300 for row in run.history)  # logging time, not delivery
    assert run.summary["train/loss"] == -math.inf
    assert run.summary["lr"] == 0.1


def test_params_go_to_the_config_and_can_change(tmp_path: Path) -> None:
    backend = opened(tmp_path)
    backend.write(Batch(params={"optimizer/lr": "0.001", "model/layers": "4", "name": "resnet", "x": "1e-3"}))
    backend.write(Batch(params={"optimizer/lr": "0.01", "flag": "True", "empty": "{}"}))
    run = finish(backend)
    assert {k: v for k, v in run.config.items() if k != "_wandb"} == {
        "optimizer/lr": 0.01,
        "model/layers": 4,
        "name": "resnet",
        "x": "1e-3",
        "flag": True,
        "empty": "{}",
    }


def test_tags_become_key_value_tags_replaced_per_key_and_truncated_to_64(tmp_path: Path) -> None:
    backend = opened(tmp_path, tags={"team": "vision", "baseline": ""})
    remote = "https://example.com/" + "very-long-group/" * 5 + "repo.git"
    with pytest.warns(TraceletWarning, match="at most 64 characters"):
        backend.write(Batch(tags={"team": "audio", "git.remote": remote, "git.dirty": "false"}))
    backend.write(Batch(tags={"team": "audio"}))  # re-delivery changes nothing
    run = finish(backend)
    long_tag = run.tags[2]
    assert run.tags == ["baseline", "team:audio", long_tag, "git.dirty:false"]
    assert long_tag.startswith("git.remote:https://")
    assert len(long_tag) == 64
    assert long_tag.endswith(f"...[truncated by Tracelet: {len('git.remote:' + remote)} chars]")


def test_artifacts_record_checkpoint_versions_with_aliases_and_plain_files(tmp_path: Path) -> None:
    backend = opened(tmp_path)
    first, second, config = tmp_path / "a.ckpt", tmp_path / "b.ckpt", tmp_path / "config.yaml"
    first.write_bytes(b"weights-1")
    second.write_bytes(b"weights-2")
    config.write_text("lr: 0.1\n")
    backend.log_artifact(ArtifactRef(str(first), "checkpoints/epoch=0.ckpt", {"aliases": ["best"], "score": 0.5}))
    backend.log_artifact(ArtifactRef(str(second), "checkpoints/last", {"checkpoint": "last", "aliases": ["a/b"]}))
    backend.log_artifact(ArtifactRef(str(config), "tracelet/config.yaml"))
    run_id = backend.open(run_info(tmp_path), None)  # a repeated open returns the run already open
    run = finish(backend)
    model = [a for a in run.artifacts if a.type == "model"]
    assert [a.name for a in model] == [f"model-{run_id}"] * 2
    assert sorted(model[0].aliases) == ["best", "latest"]
    assert sorted(model[1].aliases) == ["a-b", "latest"]
    assert json.loads(model[0].metadata) == {"score": 0.5}
    assert [c.path for c in model[0].manifest.contents] == ["checkpoints/epoch=0.ckpt"]
    assert [c.path for c in model[1].manifest.contents] == ["checkpoints/last"]
    (plain,) = [a for a in run.artifacts if a.type == "file"]
    assert plain.name == f"run-{run_id}-tracelet-config.yaml"
    assert list(plain.aliases) == ["latest"]
    assert [c.path for c in plain.manifest.contents] == ["tracelet/config.yaml"]


def test_media_images_histograms_and_texts(tmp_path: Path) -> None:
    from PIL import Image

    png = tmp_path / "sample.png"
    Image.new("RGB", (8, 6), (255, 0, 0)).save(png)
    backend = opened(tmp_path)
    location = Path(backend.location() or "")
    backend.log_media(MediaItem("image", "samples/input", 3, T0 + 3, path=str(png)))
    backend.log_media(
        MediaItem("histogram", "weights/fc1", 3, T0 + 3, data={"counts": [1, 4, 2], "bins": [0, 1, 2, 3]})
    )
    wide = {"counts": [1] * 1000, "bins": [i / 100 for i in range(1001)]}
    with pytest.warns(TraceletWarning, match="512 bins"):
        backend.log_media(MediaItem("histogram", "weights/wide", None, T0 + 4, data=wide))
    text_1 = MediaItem("text", "samples/text", 3, T0 + 3, data={"text": "hello"})
    backend.log_media(text_1)
    backend.log_media(text_1)  # re-delivered: logged once
    backend.log_media(MediaItem("text", "samples/text", 7, T0 + 7, data={"text": "wörld ✓"}))
    run = finish(backend)

    ((step, image),) = run.series("samples/input")
    assert step == 3
    assert image["_type"] == "image-file"
    assert (image["width"], image["height"]) == (8, 6)
    assert (location / "files" / image["path"]).is_file()
    ((step, hist),) = run.series("weights/fc1")
    assert step == 3
    assert hist == {"_type": "histogram", "values": [1, 4, 2], "bins": [0, 1, 2, 3]}
    ((when, wide_hist),) = run.series("weights/wide", axis=WALL_TIME)
    assert when == T0 + 4
    assert len(wide_hist["values"]) <= 512
    assert sum(wide_hist["values"]) == 1000
    texts = run.series("samples/text")
    assert [step for step, _ in texts] == [3, 7]
    rows = []
    for _, table in texts:  # each increment holds the rows added since the last one
        assert table["_type"] == "incremental-table-file"
        increment = json.loads((location / "files" / table["path"]).read_text())
        assert increment["columns"] == ["step", "text"]
        rows += increment["data"]
    assert rows == [[3, "hello"], [7, "wörld ✓"]]
    assert {a.type for a in run.artifacts} == {"wandb-run-incremental-table"}


@pytest.mark.parametrize(("status", "exit_code"), [("FINISHED", 0), ("FAILED", 1), ("KILLED", 1)])
def test_close_records_the_exit_code_and_tracelet_status(tmp_path: Path, status: RunStatus, exit_code: int) -> None:
    backend = opened(tmp_path)
    backend.write(Batch(metrics=[MetricPoint("loss", 1.0, 0, T0)]))
    run = finish(backend, status)
    assert run.exit is not None
    assert run.exit.exit_code == exit_code
    assert run.summary[STATUS_KEY] == status
    backend.close(status)  # a retried close is harmless


def test_resume_by_id_continues_the_same_run(tmp_path: Path) -> None:
    first = WandbBackend({})
    native_id = first.open(run_info(tmp_path), None)
    first.write(Batch(metrics=step_points("loss", range(10), float)))
    before = finish(first, "KILLED")

    second = WandbBackend({})
    assert second.open(run_info(tmp_path), native_id) == native_id
    second.write(Batch(metrics=step_points("loss", range(10, 20), float)))
    after = finish(second)

    assert before.run.run_id == after.run.run_id == native_id
    assert before.series("loss") == [(s, s) for s in range(10)]
    assert after.series("loss") == [(s, s) for s in range(10, 20)]
    assert after.metrics["loss"].step_metric == GLOBAL_STEP  # axes are defined again in the new segment


def test_keys_with_odd_characters_are_kept_and_reserved_ones_renamed(tmp_path: Path) -> None:
    keys = ["val acc@top1", "a.b/c", "损失/訓練", "x%y (ms)", "_step", GLOBAL_STEP, "_private"]
    backend = opened(tmp_path)
    with pytest.warns(TraceletWarning, match="reserves the key"):
        backend.write(Batch(metrics=[MetricPoint(k, float(i), 4, T0) for i, k in enumerate(keys)]))
    run = finish(backend)
    ((row,),) = [[r for r in run.history if "val acc@top1" in r]]
    assert {k: row[k] for k in ["val acc@top1", "a.b/c", "损失/訓練", "x%y (ms)"]} == {
        "val acc@top1": 0,
        "a.b/c": 1,
        "损失/訓練": 2,
        "x%y (ms)": 3,
    }
    assert row["user/_step"] == 4
    assert row[f"user/{GLOBAL_STEP}"] == 5
    assert row["user/_private"] == 6
    assert row[GLOBAL_STEP] == 4


def test_project_and_run_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    options = {"project": "proj", "group": "g1", "job_type": "train", "dir": str(tmp_path / "custom")}
    backend = opened(tmp_path, options, experiment="digits")
    assert str(tmp_path / "custom") in (backend.location() or "")
    run = finish(backend)
    assert (run.run.project, run.run.run_group, run.run.job_type) == ("proj", "g1", "train")
    assert run.run.display_name == "first run"

    run = finish(opened(tmp_path, experiment="my/exp:1"))
    assert run.run.project == "my-exp-1"

    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    wandb.teardown()
    run = finish(opened(tmp_path, experiment="digits"))
    assert run.run.project == "from-env"


@pytest.mark.parametrize("merged", [False, True], ids=["same-batch", "merged-with-later-points"])
def test_failed_batch_is_redelivered_without_duplicates(tmp_path: Path, merged: bool) -> None:
    class FailsOnce(str):
        """A key whose first use raises, like a transient SDK error in the middle of a batch."""

        failed = False

        def startswith(self, *args: Any) -> bool:
            if not FailsOnce.failed:
                FailsOnce.failed = True
                raise OSError("transient")
            return str.startswith(self, *args)

    batch = Batch(
        metrics=[
            MetricPoint("loss", 1.0, 0, T0),
            MetricPoint(FailsOnce("acc"), 0.5, 1, T0 + 1),
            MetricPoint("loss", 0.5, 2, T0 + 2),
        ]
    )
    later = [MetricPoint("loss", 0.25, 3, T0 + 3)] if merged else []
    backend = opened(tmp_path)
    with pytest.raises(OSError, match="transient"):
        backend.write(batch)
    backend.write(Batch(metrics=batch.metrics + later))  # the delivery worker's retry
    run = finish(backend)
    assert run.series("loss") == [(0, 1), (2, 0.5), (3, 0.25)][: 3 if merged else 2]
    assert run.series("acc") == [(1, 0.5)]


def test_several_runs_in_one_process_leave_a_users_own_run_alone(tmp_path: Path) -> None:
    users_run = wandb.init(project="mine", settings=wandb.Settings(x_disable_stats=True, console="off"))
    one, two = opened(tmp_path, run_id="a"), opened(tmp_path, run_id="b")
    one.write(Batch(metrics=[MetricPoint("loss", 1.0, 1, T0)]))
    two.write(Batch(metrics=[MetricPoint("loss", 2.0, 1, T0)]))
    run_one, run_two = finish(one), finish(two)
    assert wandb.run is users_run
    users_run.log({"still": 1})
    users_run.finish()
    assert run_one.series("loss") == [(1, 1)]
    assert run_two.series("loss") == [(1, 2)]
    assert run_one.run.run_id != run_two.run.run_id


def test_no_monotonic_step_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WANDB_SILENT", "false")
    wandb.teardown()
    control = wandb.init(project="control", settings=wandb.Settings(x_disable_stats=True, console="off"))
    control.log({"loss": 1.0}, step=5)
    control.log({"loss": 2.0}, step=3)
    control.finish()
    assert "monotonically increasing" in capfd.readouterr().err  # the warning is visible in this setup

    backend = opened(tmp_path)
    backend.write(Batch(metrics=step_points("loss", range(5, 8), float)))
    backend.write(Batch(metrics=[MetricPoint("val/loss", 1.0, 4, T0 + 9), MetricPoint("sys", 1.0, None, T0 + 9)]))
    backend.write(Batch(metrics=[MetricPoint("loss", 2.0, 3, T0 + 10)]))  # a step going back
    run = finish(backend)
    captured = capfd.readouterr()
    assert "monotonically" not in captured.err + captured.out
    assert run.series("loss") == [(5, 5), (6, 6), (7, 7), (3, 2)]


def test_disabled_mode_accepts_everything_and_has_no_location(tmp_path: Path) -> None:
    backend = opened(tmp_path, {"mode": "disabled"})
    (tmp_path / "m.ckpt").write_bytes(b"x")
    backend.write(Batch(metrics=[MetricPoint("loss", 1.0, 1, T0)], params={"lr": "0.1"}, tags={"a": "b"}))
    backend.log_artifact(ArtifactRef(str(tmp_path / "m.ckpt"), "m.ckpt"))
    backend.log_media(MediaItem("text", "notes", 1, T0, data={"text": "hi"}))
    assert backend.location() is None
    backend.close("FINISHED")
    assert not list((tmp_path / "wandb-dir").rglob("*.wandb"))


# ---- opening again, errors, and what W&B must not copy ------------------------------------------


_DIES_AFTER_OPEN = """
import os, signal
from tracelet_core.trackers.wandb.backend import WandbBackend
from tracelet_core.events import Batch, MetricPoint, RunInfo

backend = WandbBackend({})
print(backend.open(RunInfo("tl-run-1", "digits", "first run", {}, 0.0, "."), None), flush=True)
backend.write(Batch(metrics=[MetricPoint("loss", 1.0, 1, 1.0)]))
os.kill(os.getpid(), signal.SIGKILL)  # before the journal could record the W&B id
"""


def test_opening_again_after_the_delivery_process_died_continues_the_same_run(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(tracelet_core.__file__).parents[1]))
    died = subprocess.run([sys.executable, "-c", _DIES_AFTER_OPEN], env=env, capture_output=True, text=True, timeout=60)
    first_id = died.stdout.strip()
    assert first_id == wandb_run_id("tl-run-1"), died.stderr

    backend = WandbBackend({})
    assert backend.open(run_info(tmp_path), None) == first_id
    backend.write(Batch(metrics=step_points("loss", range(2, 5), float)))
    run = finish(backend)
    assert run.run.run_id == first_id
    assert run.series("loss") == [(2, 2), (3, 3), (4, 4)]
    # Two offline directories of one W&B run: `wandb sync` sends both into that run.
    directories = list((tmp_path / "wandb-dir" / "wandb").glob(f"offline-run-*-{first_id}*"))
    assert len(directories) == 2
    assert all((d / f"run-{first_id}.wandb").is_file() for d in directories)


def test_an_open_retried_in_the_same_process_continues_the_run_left_open(tmp_path: Path) -> None:
    """wandb-core refuses a second live run with the same id; the retry takes over the first one."""
    first = WandbBackend({})
    native_id = first.open(run_info(tmp_path), None)
    first.write(Batch(metrics=step_points("loss", range(3), float)))
    retry = WandbBackend({})  # the delivery worker drops a backend whose open failed, and makes another
    assert retry.open(run_info(tmp_path), None) == native_id
    retry.write(Batch(metrics=step_points("loss", range(3, 6), float)))
    run = finish(retry)
    assert run.series("loss") == [(s, s) for s in range(6)]
    again = WandbBackend({})  # the run is finished: a later open starts a new segment of it
    assert again.open(run_info(tmp_path), None) == native_id
    again.close("FINISHED")
    other = WandbBackend({})
    assert other.open(run_info(tmp_path, run_id="other"), None) != native_id
    other.close("FINISHED")


def test_wandb_run_ids_are_what_wandb_accepts() -> None:
    assert wandb_run_id("9993a005bc9a44b68c35e0a5116922e0") == "9993a005bc9a44b68c35e0a5116922e0"
    for odd in ["tl-run-1", "Run:1", "a/b", " x", "", "ü" * 40, "x" * 65]:
        derived = wandb_run_id(odd)
        assert derived == wandb_run_id(odd)
        assert len(derived) == 32 and derived.isalnum() and derived.islower()
        wandb.Settings(run_id=derived)  # the SDK's own validation


def test_a_sweep_agents_run_id_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_RUN_ID", "sweeprun1")
    wandb.teardown()
    backend = WandbBackend({})
    assert backend.open(run_info(tmp_path), None) == "sweeprun1"
    backend.close("FINISHED")


def test_no_secret_from_the_command_line_environment_or_git_reaches_wandb_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    for args in (["init", "-q"], ["remote", "add", "origin", "https://user:SECRET3@example.com/org/repo.git"]):
        subprocess.run(["git", *args], cwd=work, check=True, capture_output=True)
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "argv", ["train.py", "--api-key=SECRET1", "--lr", "0.1"])
    monkeypatch.setenv("SLURM_JOB_COMMENT", "password=SECRET2")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    wandb.teardown()
    backend = opened(tmp_path)
    backend.write(Batch(metrics=step_points("loss", range(5), float), params={"lr": "0.1"}))
    run = finish(backend)
    assert run.series("loss")  # the run was written

    leaks = [
        (str(path.relative_to(tmp_path)), secret)
        for path in tmp_path.rglob("*")
        if path.is_file() and ".git" not in path.parts
        for secret in (b"SECRET1", b"SECRET2", b"SECRET3")
        if secret in path.read_bytes()
    ]
    assert leaks == []
    assert any((tmp_path / "home").rglob("*.log"))  # W&B's debug logs were written, and searched


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Online mode against 127.0.0.1 only: returns ``connect(base_url, api_key)``."""
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")

    def connect(base_url: str, api_key: str | None) -> WandbBackend:
        monkeypatch.setenv("WANDB_MODE", "online")
        monkeypatch.setenv("WANDB_BASE_URL", base_url)
        monkeypatch.setenv("WANDB_INIT_TIMEOUT", "3")
        if api_key is None:
            monkeypatch.delenv("WANDB_API_KEY", raising=False)
        else:
            monkeypatch.setenv("WANDB_API_KEY", api_key)
        wandb.teardown()  # wandb reads its environment once per setup
        return WandbBackend({})

    return connect


def _refused(backend: WandbBackend, tmp_path: Path) -> Exception:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - any error: its classification is under test
        backend.open(run_info(tmp_path), None)
    return caught.value


VALID_KEY = "k" * 40  # the format W&B checks locally; the server decides the rest


@pytest.mark.timeout(60)
def test_start_errors_are_classified(tmp_path: Path, online: Any) -> None:
    port = f"http://127.0.0.1:{closed_port()}"
    no_key = _refused(online(port, None), tmp_path)
    assert isinstance(no_key, wandb.errors.UsageError)
    assert "No API key" in str(no_key)
    malformed = _refused(online(port, "short"), tmp_path)
    assert isinstance(malformed, wandb.errors.AuthenticationError)
    with http_stub(always(401, "Unauthorized")) as url:
        rejected = _refused(online(url, VALID_KEY), tmp_path)
    with http_stub(always(403, {"errors": [{"message": "permission denied"}]})) as url:
        forbidden = _refused(online(url, VALID_KEY), tmp_path)
    bad_project = WandbBackend({"project": "team/project"})
    bad_project_error = _refused(bad_project, tmp_path)
    started = time.monotonic()
    unreachable = _refused(online(port, VALID_KEY), tmp_path)  # retried by wandb-core until init_timeout
    assert time.monotonic() - started < 30

    backend = WandbBackend({})
    kinds = {
        name: backend.classify_error(exc, "start")
        for name, exc in {
            "no key": no_key,
            "malformed key": malformed,
            "401": rejected,
            "403": forbidden,
            "bad project": bad_project_error,
            "unreachable": unreachable,
        }.items()
    }
    assert kinds == {
        "no key": ErrorKind.CONFIGURATION,
        "malformed key": ErrorKind.CONFIGURATION,
        "401": ErrorKind.CONFIGURATION,
        "403": ErrorKind.CONFIGURATION,
        "bad project": ErrorKind.CONFIGURATION,
        "unreachable": ErrorKind.TRANSIENT,
    }
    assert isinstance(unreachable, wandb.errors.CommError)
    assert backend.classify_error(wandb.errors.CommError("Unauthorized"), "batch") is ErrorKind.TRANSIENT
    assert backend.classify_error(TypeError("wandb.log must be passed a dictionary"), "batch") is ErrorKind.PERMANENT

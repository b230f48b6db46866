"""The Aim backend against a real local Aim repository, read back with ``aim.Repo``.

One repository serves the whole module: the first run in a new repository costs seconds.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytest.importorskip("aim")

import tracelet_core
from tests.support.aim_reader import AimRunData, read_run
from tracelet_core.errors import BackendError, ErrorKind, TraceletWarning, TrackerConfigurationError
from tracelet_core.events import ArtifactRef, Batch, MediaItem, MetricPoint, RunInfo
from tracelet_core.trackers import load_backend_class
from tracelet_core.trackers.aim.backend import AimBackend
from tracelet_core.trackers.aim.mapping import sequence_of

T0 = 1_700_000_000.0
TRAIN, VAL, NONE = (("subset", "train"),), (("subset", "val"),), ()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("aim") / "aimrepo")


def info(run_dir: Path, **overrides: object) -> RunInfo:
    fields: dict = {
        "run_id": "tl-run-1",
        "experiment": "digits",
        "run_name": "first",
        "tags": {"team": "vision"},
        "start_time": T0,
        "run_dir": str(run_dir),
    }
    fields.update(overrides)
    return RunInfo(**fields)


def finished(repo: str, backend: AimBackend, run_hash: str, status: str = "FINISHED") -> AimRunData:
    backend.close(status)  # type: ignore[arg-type]
    return read_run(repo, run_hash)


def lightning_calls(steps: range, epoch_every: int) -> list[MetricPoint]:
    """Points as Lightning's log_metrics makes them: one timestamp per call, ``epoch`` last on change."""
    points: list[MetricPoint] = []
    for step in steps:
        ts = T0 + step
        points.append(MetricPoint("train/loss", 1.0 / (step + 1), step, ts))
        points.append(MetricPoint("val/acc", step / 1000, step, ts))
        points.append(MetricPoint("lr", 0.1 * 0.99**step, step, ts))
        if step % epoch_every == 0:
            points.append(MetricPoint("epoch", float(step // epoch_every), step, ts))
    return points


def test_importing_the_module_does_not_import_aim() -> None:
    code = "import sys, tracelet_core.trackers.aim.backend; assert 'aim' not in sys.modules, 'aim imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry_and_capabilities() -> None:
    assert load_backend_class("aim") is AimBackend
    AimBackend.check_available()
    assert AimBackend.capabilities.epoch_axis
    assert AimBackend.capabilities.media == {"image", "histogram", "text"}


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("train/loss", ("loss", {"subset": "train"})),
        ("test/a/b", ("a/b", {"subset": "test"})),
        ("val_acc", ("val_acc", {})),
        ("train/", ("train/", {})),
        ("system/cpu_percent", ("system/cpu_percent", {})),
        ("validation/loss", ("validation/loss", {})),
    ],
)
def test_key_to_sequence_mapping(key: str, expected: tuple[str, dict[str, str]]) -> None:
    assert sequence_of(key) == expected


def test_metrics_steps_epochs_values_and_times(repo: str, tmp_path: Path) -> None:
    backend = AimBackend({"repo": repo})
    run_hash = backend.open(info(tmp_path), None)
    odd = {10: math.nan, 11: math.inf}
    points = [
        MetricPoint(p.key, odd[p.step], p.step, p.timestamp) if p.key == "lr" and p.step in odd else p
        for p in lightning_calls(range(200), epoch_every=50)
    ]
    assert (points[154].key, points[154].step) == ("epoch", 50)  # it opens the 23rd batch of 7
    for start in range(0, len(points), 7):  # batch boundaries fall inside calls
        batch = Batch(metrics=points[start : start + 7])
        backend.write(batch)
        if start == 70:
            backend.write(batch)  # a re-delivered batch changes nothing
    backend.write(Batch(metrics=[MetricPoint("train/loss", 5.0, 200, T0 + 200)]))
    assert backend.location() == str(Path(repo).resolve())
    data = finished(repo, backend, run_hash)

    assert set(data.metrics) == {("loss", TRAIN), ("acc", VAL), ("lr", NONE)}  # epoch is an axis
    loss = data.metrics[("loss", TRAIN)]
    assert loss[:200] == [(s, s // 50, 1.0 / (s + 1)) for s in range(200)]
    assert loss[200] == (200, 3, 5.0)
    assert data.metrics[("acc", VAL)] == [(s, s // 50, s / 1000) for s in range(200)]
    lr = data.metrics[("lr", NONE)]
    assert [(s, e) for s, e, _ in lr] == [(s, s // 50) for s in range(200)]
    assert math.isnan(lr[10][2])
    assert lr[11][2] == math.inf
    assert lr[12][2] == pytest.approx(0.1 * 0.99**12)
    assert data.times[("acc", VAL)] == [T0 + s for s in range(200)]  # logged, not delivered, time
    assert data.tracelet["epoch"] == 3


def test_params_tags_and_run_fields(repo: str, tmp_path: Path) -> None:
    backend = AimBackend({"repo": repo})
    run_hash = backend.open(info(tmp_path, run_name="named", tags={"team": "vision", "flag": ""}), None)
    params = {
        "optimizer/lr": "0.001",
        "optimizer/betas": "[0.9, 0.99]",
        "optimizer/name": "adam",
        "epochs": "3",
        "amp": "False",
        "seed": "007",
        "big": str(2**70),
        "none": "None",
        "empty": "{}",
        "model/layers/0/size": "64",
    }
    backend.write(Batch(params=params, tags={"git.commit": "abc"}))
    backend.write(Batch(params={"optimizer/lr": "0.01", "epochs/max": "5"}, tags={"git.commit": "def"}))
    data = finished(repo, backend, run_hash)

    assert data.hparams == {
        "optimizer": {"lr": 0.01, "betas": "[0.9, 0.99]", "name": "adam"},
        "epochs": {"max": 5},  # a later subtree replaces an earlier leaf
        "amp": False,
        "seed": "007",
        "big": str(2**70),
        "none": "None",
        "empty": {},
        "model": {"layers": {"0": {"size": 64}}},
    }
    assert data.name == "named"
    assert data.experiment == "digits"
    assert data.tags == ["flag", "git.commit:def", "team:vision"]
    assert data.tracelet["tags"] == {"team": "vision", "flag": "", "git.commit": "def"}
    assert data.tracelet["run_id"] == "tl-run-1"
    assert data.tracelet["status"] == "FINISHED"
    assert not data.active


def test_system_metrics_without_step_are_numbered_once(repo: str, tmp_path: Path) -> None:
    backend = AimBackend({"repo": repo})
    run_hash = backend.open(info(tmp_path), None)
    system = Batch(metrics=[MetricPoint("system/cpu_percent", 10.0 * i, None, T0 + i) for i in range(3)])
    backend.write(system)
    backend.write(system)  # re-delivered: nothing new
    backend.write(Batch(metrics=[MetricPoint("system/cpu_percent", 99.0, None, T0 + 10)]))
    data = finished(repo, backend, run_hash)
    cpu = data.metrics[("system/cpu_percent", NONE)]
    assert [(s, v) for s, _, v in cpu] == [(0, 0.0), (1, 10.0), (2, 20.0), (3, 99.0)]
    assert data.times[("system/cpu_percent", NONE)] == [T0, T0 + 1, T0 + 2, T0 + 10]


def test_artifacts_and_checkpoint_metadata(repo: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("lr: 0.1\n")
    ckpt = tmp_path / "epoch=1.ckpt"
    ckpt.write_bytes(b"\x00weights")
    backend = AimBackend({"repo": repo})
    run_hash = backend.open(info(tmp_path), None)
    backend.log_artifact(ArtifactRef(str(config), "tracelet/config.yaml"))
    meta = {"score": 0.93, "aliases": ["best", "latest"]}
    backend.log_artifact(ArtifactRef(str(ckpt), "checkpoints/epoch=1.ckpt", meta))
    backend.log_artifact(ArtifactRef(str(ckpt), "checkpoints/epoch=1.ckpt", meta))  # re-delivered
    data = finished(repo, backend, run_hash)

    assert set(data.artifacts) == {"tracelet/config.yaml", "checkpoints/epoch=1.ckpt"}
    stored = Path(urlparse(data.artifacts["tracelet/config.yaml"]).path)
    assert stored == Path(repo).resolve() / "aim-artifacts" / run_hash / "tracelet/config.yaml"
    assert stored.read_text() == "lr: 0.1\n"
    assert Path(urlparse(data.artifacts["checkpoints/epoch=1.ckpt"]).path).read_bytes() == b"\x00weights"
    assert data.tracelet["checkpoints"] == {"checkpoints/epoch=1.ckpt": meta}


def test_artifacts_uri_option(repo: str, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    backend = AimBackend({"repo": repo, "artifacts_uri": target.as_uri()})
    run_hash = backend.open(info(tmp_path), None)
    (tmp_path / "a.txt").write_text("a")
    backend.log_artifact(ArtifactRef(str(tmp_path / "a.txt"), "files/a.txt"))
    finished(repo, backend, run_hash)
    assert (target / run_hash / "files" / "a.txt").read_text() == "a"


def test_media_images_histograms_texts(repo: str, tmp_path: Path) -> None:
    from PIL import Image

    png = tmp_path / "sample.png"
    Image.new("RGB", (4, 3), (255, 0, 0)).save(png)
    backend = AimBackend({"repo": repo})
    run_hash = backend.open(info(tmp_path), None)
    backend.write(Batch(metrics=[MetricPoint("epoch", 2.0, 5, T0)]))
    backend.log_media(MediaItem("image", "val/samples", 5, T0, path=str(png)))
    backend.log_media(MediaItem("image", "val/samples", 5, T0, path=str(png)))  # re-delivered
    hist = {"bins": [0.0, 0.5, 1.0, 1.5], "counts": [1, 4, 2]}
    backend.log_media(MediaItem("histogram", "weights/fc1", 5, T0, data=hist))
    backend.log_media(MediaItem("text", "train/note", 5, T0, data={"text": "hello"}))
    backend.log_media(MediaItem("text", "train/note", None, T0 + 1, data={"text": "no step"}))
    wide = {"bins": [i / 1000 for i in range(1001)], "counts": [1] * 1000}
    with pytest.warns(TraceletWarning, match="at most 512"):
        backend.log_media(MediaItem("histogram", "wide", 0, T0, data=wide))
    data = finished(repo, backend, run_hash)

    assert data.images == {("samples", VAL): [(5, (4, 3), "PNG")]}
    assert data.distributions[("weights/fc1", NONE)] == [(5, [1.0, 4.0, 2.0], (0.0, 1.5))]
    (step, counts, (lo, hi)), *_ = data.distributions[("wide", NONE)]
    assert (step, len(counts), sum(counts), counts[0], counts[-1]) == (0, 500, 1000, 2, 2)
    assert (lo, hi) == (0.0, pytest.approx(1.0))
    assert data.texts == {("note", TRAIN): [(5, "hello"), (6, "no step")]}


def test_resume_appends_to_the_same_run_and_status(repo: str, tmp_path: Path) -> None:
    first = AimBackend({"repo": repo})
    run_hash = first.open(info(tmp_path), None)
    first.write(Batch(metrics=lightning_calls(range(0, 20), epoch_every=10)))
    first.write(Batch(metrics=[MetricPoint("system/cpu_percent", 1.0, None, T0)]))
    first.write(Batch(params={"lr": "0.1"}, tags={"stage": "one"}))
    failed = finished(repo, first, run_hash, "FAILED")
    assert failed.tracelet["status"] == "FAILED"
    assert "tracelet.status:FAILED" in failed.tags

    second = AimBackend({"repo": repo})  # a new delivery process: nothing remembered in memory
    assert second.open(info(tmp_path), run_hash) == run_hash
    second.write(
        Batch(
            metrics=[
                MetricPoint("train/loss", 0.01, 20, T0 + 20),  # still epoch 1: read back from the run
                MetricPoint("system/cpu_percent", 1.0, None, T0),  # delivered before the restart
                MetricPoint("system/cpu_percent", 2.0, None, T0 + 30),
            ],
            params={"batch_size": "32"},
            tags={"stage": "two"},
        )
    )
    data = finished(repo, second, run_hash)

    loss = data.metrics[("loss", TRAIN)]
    assert [(s, e) for s, e, _ in loss] == [(s, s // 10) for s in range(20)] + [(20, 1)]
    assert data.metrics[("system/cpu_percent", NONE)] == [(0, 1, 1.0), (1, 1, 2.0)]
    assert data.hparams == {"lr": 0.1, "batch_size": 32}
    assert "stage:one" not in data.tags
    assert "stage:two" in data.tags
    assert data.tracelet["status"] == "FINISHED"
    assert not any(tag.startswith("tracelet.status:") for tag in data.tags)


def test_killed_status_is_a_tag(repo: str, tmp_path: Path) -> None:
    backend = AimBackend({"repo": repo})
    run_hash = backend.open(info(tmp_path), None)
    data = finished(repo, backend, run_hash, "KILLED")
    assert data.tracelet["status"] == "KILLED"
    assert "tracelet.status:KILLED" in data.tags
    assert not (Path(repo) / ".aim" / "locks" / f"{run_hash}.softlock").exists()  # lock released
    backend.close("KILLED")  # a second close is a no-op


def test_keys_aim_cannot_read_back_are_renamed(repo: str, tmp_path: Path) -> None:
    backend = AimBackend({"repo": repo})
    run_hash = backend.open(info(tmp_path), None)
    with pytest.warns(TraceletWarning, match="recorded as"):
        backend.write(Batch(metrics=[MetricPoint("", 1.0, 0, T0), MetricPoint("a\nb", 2.0, 0, T0)]))
    data = finished(repo, backend, run_hash)
    assert data.metrics[("_", NONE)] == [(0, None, 1.0)]
    assert data.metrics[("a_b", NONE)] == [(0, None, 2.0)]


def test_retried_open_reuses_the_run(repo: str, tmp_path: Path) -> None:
    backend = AimBackend({"repo": repo})
    run_hash = backend.open(info(tmp_path), None)
    assert backend.open(info(tmp_path), None) == run_hash
    backend.close("FINISHED")


def test_errors(repo: str, tmp_path: Path) -> None:
    backend = AimBackend({"repo": repo})
    with pytest.raises(BackendError, match="before open"):
        backend.write(Batch(params={"a": "1"}))


def test_a_run_missing_from_the_repo_continues_in_a_new_run(repo: str, tmp_path: Path) -> None:
    """Retrying cannot bring back a deleted run: delivery goes on in a new run, with one warning."""
    backend = AimBackend({"repo": repo})
    with pytest.warns(TraceletWarning, match="not in the Aim repository"):
        new_hash = backend.open(info(tmp_path), "0123456789abcdef01234567")
    assert new_hash != "0123456789abcdef01234567"
    backend.close("FINISHED")


def test_default_repo_is_created_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    backend = AimBackend({"repo": None})
    run_hash = backend.open(info(tmp_path), None)
    assert backend.location() == str(tmp_path)
    backend.close("FINISHED")
    assert (tmp_path / ".aim").is_dir()
    assert read_run(str(tmp_path), run_hash).tracelet["status"] == "FINISHED"


_DIES_AFTER_OPEN = """
import os, signal, sys
from tracelet_core.trackers.aim.backend import AimBackend
from tracelet_core.events import Batch, MetricPoint, RunInfo

backend = AimBackend({"repo": sys.argv[1]})
print(backend.open(RunInfo(sys.argv[2], "digits", "first", {}, 1_700_000_000.0, "."), None), flush=True)
backend.write(Batch(metrics=[MetricPoint("train/loss", float(s), s, 1_700_000_000.0 + s) for s in range(5)]))
if sys.argv[3] == "die":
    os.kill(os.getpid(), signal.SIGKILL)  # before the journal could record the run's hash
backend.close("FINISHED")
"""


def _python(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(tracelet_core.__file__).parents[1]))
    return subprocess.Popen([sys.executable, "-c", _DIES_AFTER_OPEN, *args], env=env, stdout=subprocess.PIPE, text=True)


def test_opening_again_continues_the_run_of_a_delivery_process_that_died(repo: str, tmp_path: Path) -> None:
    died = _python(repo, "died-run", "die")
    run_hash = (died.communicate(timeout=60)[0] or "").strip()
    assert died.returncode == -9 and run_hash

    backend = AimBackend({"repo": repo})
    assert backend.open(info(tmp_path, run_id="died-run"), None) == run_hash
    backend.write(Batch(metrics=[MetricPoint("train/loss", float(s), s, T0 + s) for s in range(5, 8)]))
    data = finished(repo, backend, run_hash)
    assert [(s, v) for s, _, v in data.metrics[("loss", TRAIN)]] == [(s, float(s)) for s in range(8)]
    other = AimBackend({"repo": repo})
    assert other.open(info(tmp_path, run_id="another-run"), None) != run_hash
    other.close("FINISHED")


def test_an_open_retried_in_the_same_process_continues_the_run_left_open(repo: str, tmp_path: Path) -> None:
    first = AimBackend({"repo": repo})  # its open failed after creating the run; the worker drops it
    run_hash = first.open(info(tmp_path, run_id="retried"), None)
    retry = AimBackend({"repo": repo})
    started = time.monotonic()
    assert retry.open(info(tmp_path, run_id="retried"), None) == run_hash
    assert time.monotonic() - started < 5  # not waiting for the run lock this process holds
    retry.write(Batch(metrics=[MetricPoint("train/loss", 1.0, 1, T0)]))
    assert finished(repo, retry, run_hash).metrics[("loss", TRAIN)] == [(1, None, 1.0)]
    again = AimBackend({"repo": repo})  # closed for good: a later open makes a new run
    assert again.open(info(tmp_path, run_id="retried"), None) != run_hash
    again.close("FINISHED")


@pytest.mark.slow
def test_runs_starting_at_once_on_a_new_repository(tmp_path: Path) -> None:
    """Without the store lock all but one fail: they read the repository half-made ("out of date")."""
    fresh = str(tmp_path / "fresh")
    procs = [_python(fresh, f"run-{i}", "close") for i in range(4)]
    hashes = [(proc.communicate(timeout=120)[0] or "").strip() for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 4
    for run_hash in hashes:
        assert len(read_run(fresh, run_hash).metrics[("loss", TRAIN)]) == 5


def test_errors_are_classified(tmp_path: Path) -> None:
    from aim.sdk.errors import MissingRunError, RunLockingError
    from filelock import Timeout

    old = tmp_path / "old"
    (old / ".aim").mkdir(parents=True)
    (old / ".aim" / "VERSION").write_text("0.1")  # a repository of an older Aim
    backend = AimBackend({"repo": str(old)})
    with pytest.raises(TrackerConfigurationError, match="older Aim") as refused:
        backend.open(info(tmp_path), None)
    kinds = {
        "old repository": backend.classify_error(refused.value, "start"),
        "legacy run lock": backend.classify_error(RunLockingError("Cannot acquire lock for Run 'x'"), "start"),
        "run deleted meanwhile": backend.classify_error(MissingRunError("Cannot find Run x"), "batch"),
        "run held by another process": backend.classify_error(Timeout("x.softlock"), "start"),
        "bad value": backend.classify_error(ValueError("bins"), "media"),
    }
    assert kinds == {
        "old repository": ErrorKind.CONFIGURATION,
        "legacy run lock": ErrorKind.CONFIGURATION,
        "run deleted meanwhile": ErrorKind.CONFIGURATION,
        "run held by another process": ErrorKind.TRANSIENT,
        "bad value": ErrorKind.PERMANENT,
    }

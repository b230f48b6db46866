"""Read TensorBoard event files (``tensorboard:LOGDIR``): the one place Tracelet reads them.

Every directory under LOGDIR (LOGDIR included) that holds event files is one run, as TensorBoard
itself shows them (``add_scalars`` and ``add_hparams`` write theirs into subdirectories, which are
therefore runs of their own), named by its path relative to LOGDIR; the experiment is LOGDIR's name.
TensorBoard has no run status: every run is FINISHED.

One pass over a run's events (:meth:`TensorBoardReader.replay`, with TensorBoard's own
``EventAccumulator``) hands every summary to a
:class:`~tracelet_core.tensorboard_summaries.SummaryReplay`, the mapping the live bridge uses too.
Two things consume it:

* ``tracelet import-tensorboard`` (:mod:`tracelet_core.tensorboard_import`) replays into a Tracelet
  run: everything, images, histograms and texts included.
* ``tracelet migrate --from tensorboard:LOGDIR`` and ``tracelet compare`` read a
  :class:`~tracelet_core.trackers.store.RunRecord` (:meth:`TensorBoardReader.read_run`): scalars as
  metric points with their step and wall time, ``add_hparams`` as params, audio, PR curves and
  custom-scalar layouts as files. A ``RunRecord`` has no place for images, histograms and texts yet:
  they are named in its notes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from tracelet_core.errors import BackendUnavailableError, ConfigurationError
from tracelet_core.events import ArtifactRef, MediaItem, MetricPoint
from tracelet_core.normalize import param_to_str
from tracelet_core.tensorboard_summaries import SummaryReplay
from tracelet_core.trackers.store import RunNotFoundError, RunRecord, SourceRun, StoreReader

__all__ = ["TensorBoardReader", "event_directories", "require_tensorboard"]

_HPARAMS_PLUGIN = "hparams"
_MEDIA_KINDS = ("images", "histograms")


def require_tensorboard() -> None:
    """Raise :class:`~tracelet_core.errors.BackendUnavailableError` unless the ``tensorboard`` package,
    which reads event files, can be imported."""
    try:
        from tensorboard.backend.event_processing import event_accumulator  # noqa: F401
    except ImportError:
        raise BackendUnavailableError(
            'Reading TensorBoard logs needs the tensorboard package: pip install "tracelet-lightning[tensorboard]"'
        ) from None


def event_directories(root: Path) -> list[Path]:
    """The directories under ``root`` (itself included) that hold TensorBoard event files, sorted.

    Example:
        >>> import tempfile
        >>> event_directories(Path(tempfile.mkdtemp()))
        []
    """
    found = {
        Path(directory)
        for directory, _, files in os.walk(root)
        if any("tfevents" in name for name in files)  # TensorBoard's own test for an event file
    }
    return sorted(found)


class TensorBoardReader(StoreReader):
    """Reads every run under a TensorBoard log directory.

    Args:
        location: the log directory (``tensorboard --logdir``); empty: the current directory.

    Raises:
        ConfigurationError: ``location`` is not a directory.

    Example:
        >>> import tempfile
        >>> TensorBoardReader(tempfile.mkdtemp()).list_runs()
        []
    """

    kind = "tensorboard"

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.root = Path(location or ".").expanduser().resolve()
        if not self.root.is_dir():
            raise ConfigurationError(f"TensorBoard log directory {str(self.root)!r} does not exist")
        self._dirs: dict[str, Path] = {}

    def list_runs(self, experiments: Collection[str] | None = None) -> list[SourceRun]:
        experiment = self.root.name
        if experiments is not None and experiment not in experiments:
            return []
        runs = []
        for folder in event_directories(self.root):
            relative = folder.relative_to(self.root).as_posix()
            name = experiment if relative == "." else relative
            self._dirs[name] = folder
            started = min(p.stat().st_mtime for p in folder.iterdir() if "tfevents" in p.name)
            runs.append(SourceRun(f"tensorboard:{folder}", name, experiment, name, {}, started))
        return runs

    def directory(self, run: SourceRun) -> Path:
        """The directory holding ``run``'s event files (resolved).

        Raises:
            RunNotFoundError: ``run`` is not a run of this log directory.
        """
        if run.native_id not in self._dirs:
            self.list_runs()
        try:
            return self._dirs[run.native_id]
        except KeyError:
            raise RunNotFoundError(f"No TensorBoard run {run.native_id!r} under {str(self.root)!r}") from None

    def replay(self, run: SourceRun, replay: SummaryReplay, *, media: bool = True) -> None:
        """Send everything ``run``'s event files hold to ``replay``: kind by kind, each tag in step order.

        Args:
            run: one of :meth:`list_runs`.
            replay: where the summaries go.
            media: False: of images and histograms, only one per tag is read (what needs their tags
                alone, such as a note naming them, reads far less into memory).

        Raises:
            BackendUnavailableError: the ``tensorboard`` package is not installed.
            RunNotFoundError: ``run`` is not a run of this log directory.
        """
        require_tensorboard()
        from tensorboard.backend.event_processing import event_accumulator

        sizes = dict.fromkeys(event_accumulator.DEFAULT_SIZE_GUIDANCE, 0)  # 0: keep every event
        if not media:
            sizes.update(dict.fromkeys(_MEDIA_KINDS, 1))
        accumulator = event_accumulator.EventAccumulator(str(self.directory(run)), size_guidance=sizes)
        accumulator.Reload()
        _replay_accumulator(accumulator, replay)

    def hparams_only(self, run: SourceRun) -> bool:
        """Whether ``run``'s directory holds only what one ``add_hparams`` call writes: the hparams and their
        metrics (PyTorch's ``add_hparams`` writes them into a timestamped subdirectory of the run).

        Raises:
            BackendUnavailableError: the ``tensorboard`` package is not installed.
        """
        require_tensorboard()
        from tensorboard.backend.event_processing import event_accumulator

        sizes = dict.fromkeys(event_accumulator.DEFAULT_SIZE_GUIDANCE, 1)  # the tags are enough
        accumulator = event_accumulator.EventAccumulator(str(self.directory(run)), size_guidance=sizes)
        accumulator.Reload()
        tags = accumulator.Tags()
        if any(tags.get(kind) for kind in ("images", "histograms", "audio")):
            return False
        try:
            return bool(accumulator.PluginTagToContent(_HPARAMS_PLUGIN))
        except KeyError:  # no add_hparams here
            return False

    def read_run(self, run: SourceRun, scratch: Path, *, artifacts: bool = True) -> RunRecord:
        record = RunRecord(run=run)
        target = _RecordTarget(record, scratch / "tensorboard-media" if artifacts else None)
        replay = SummaryReplay(target, scratch / "tensorboard" if artifacts else None)
        self.replay(run, replay, media=True)
        not_copied = sorted(target.not_carried | replay.skipped)
        if not_copied:
            record.notes.append(f"not copied: {', '.join(not_copied)}")
        return record


def _replay_accumulator(accumulator: Any, replay: SummaryReplay) -> None:
    tags = accumulator.Tags()
    try:
        hparams = accumulator.PluginTagToContent(_HPARAMS_PLUGIN)
    except KeyError:  # no add_hparams in this run
        hparams = {}
    for content in hparams.values():  # hparams summaries carry no value: only their plugin content
        replay.params(content)
    for tag in tags["scalars"]:
        for scalar in accumulator.Scalars(tag):
            replay.scalar(tag, scalar.value, scalar.step, scalar.wall_time)
    for tag in tags["histograms"]:
        for histogram in accumulator.Histograms(tag):
            replay.histogram(tag, histogram.histogram_value, histogram.step, histogram.wall_time)
    for tag in tags["images"]:
        for image in accumulator.Images(tag):
            replay.image(tag, image.encoded_image_string, image.step, image.wall_time)
    for tag in tags["audio"]:
        for audio in accumulator.Audio(tag):
            replay.audio(tag, audio.encoded_audio_string, audio.step)
    for tag in tags["tensors"]:
        plugin = accumulator.SummaryMetadata(tag).plugin_data
        if plugin.plugin_name == _HPARAMS_PLUGIN:  # sent above, from the plugin data
            continue
        for tensor in accumulator.Tensors(tag):
            replay.tensor(tag, plugin.plugin_name, plugin.content, tensor.tensor_proto, tensor.step, tensor.wall_time)


class _RecordTarget:
    """A :class:`~tracelet_core.tensorboard_summaries.SummaryTarget` that fills a ``RunRecord``: images are
    encoded as PNG files under ``media_dir``; without one (no files wanted), images are only named in
    ``not_carried``."""

    active = True

    def __init__(self, record: RunRecord, media_dir: Path | None) -> None:
        self.record = record
        self.media_dir = media_dir
        self.not_carried: set[str] = set()

    def log_metric(self, key: str, value: Any, step: int | None = None, timestamp: float | None = None) -> None:
        when = time.time() if timestamp is None else timestamp
        self.record.metrics.append(MetricPoint(key, float(value), step, when))

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.record.params.update({key: param_to_str(value) for key, value in params.items()})

    def log_histogram(self, key: str, values: Any, step: int | None = None, timestamp: float | None = None) -> None:
        self._media("histogram", key, values, step, timestamp)

    def log_image(self, key: str, image: Any, step: int | None = None, timestamp: float | None = None) -> None:
        if self.media_dir is None:
            self.not_carried.add(f"{key} (images)")
            return
        self._media("image", key, image, step, timestamp)

    def log_text(self, key: str, text: str, step: int | None = None, timestamp: float | None = None) -> None:
        self._media("text", key, text, step, timestamp)

    def _media(self, kind: str, key: str, obj: Any, step: int | None, timestamp: float | None) -> None:
        from tracelet_core.media import encode_media

        encoded = encode_media(kind, key, obj, step, self.media_dir or Path("."))
        when = time.time() if timestamp is None else timestamp
        self.record.media.append(MediaItem(kind, key, step, when, encoded["path"], encoded["data"]))  # type: ignore[arg-type]

    def log_artifact(self, path: str | PathLike[str], name: str | None = None) -> None:
        self.record.artifacts.append(ArtifactRef(str(path), name or Path(path).name))

"""Import existing TensorBoard logs into the trackers: the migration path behind ``tracelet import-tensorboard``.

Every directory under LOGDIR that holds event files is one TensorBoard run, as TensorBoard itself
shows them (``add_scalars`` and ``add_hparams`` write theirs into subdirectories, which therefore
come in as runs of their own). Each becomes one Tracelet run named after its path relative to
LOGDIR, replayed with the same mapping as the live bridge
(:mod:`tracelet_core.tensorboard_summaries`) and finished before the next one starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracelet_core.errors import TraceletError
from tracelet_core.run import Run
from tracelet_core.settings import load_settings
from tracelet_core.tensorboard_summaries import SummaryReplay

__all__ = ["ImportedRun", "find_tensorboard_runs", "import_logdir"]


@dataclass(frozen=True)
class ImportedRun:
    """One TensorBoard run as it was imported.

    Attributes:
        name: the run's directory relative to LOGDIR (LOGDIR's own name for event files directly in it);
            also the Tracelet run's name.
        run_id: the Tracelet run's id (``tracelet show <run_id>``).
        source: the run's directory.
        backend_run_ids: each tracker's native id of the run, e.g. ``{"mlflow": "<run id>"}``.
        complete: whether every tracker acknowledged everything; what was not is delivered later
            by ``tracelet sync``.
        scalars, histograms, images, texts, params, artifacts: how many of each were sent.
    """

    name: str
    run_id: str
    source: str
    backend_run_ids: dict[str, str] = field(default_factory=dict)
    complete: bool = True
    scalars: int = 0
    histograms: int = 0
    images: int = 0
    texts: int = 0
    params: int = 0
    artifacts: int = 0


def find_tensorboard_runs(logdir: str | Path) -> list[Path]:
    """The directories under ``logdir`` (itself included) that hold TensorBoard event files, sorted.

    Raises:
        FileNotFoundError: ``logdir`` is not a directory.
    """
    root = Path(logdir)
    if not root.is_dir():
        raise FileNotFoundError(f"import-tensorboard needs a directory of TensorBoard logs; {str(root)!r} is not one")
    found = {
        Path(directory)
        for directory, _, files in os.walk(root)
        if any("tfevents" in name for name in files)  # TensorBoard's own test for an event file
    }
    return sorted(found)


def import_logdir(
    logdir: str | Path,
    *,
    experiment: str | None = None,
    backends: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[ImportedRun]:
    """Send every TensorBoard run under ``logdir`` to the configured trackers, one Tracelet run each.

    Scalars keep their steps and wall times; histograms, images, texts, hyperparameters (``add_hparams``),
    PR curves, audio and custom-scalar layouts are sent as the live bridge sends them. The runs are
    delivered from this process (``delivery="thread"``) and record no system metrics, git or
    environment: those would describe this machine now, not the run then. Runs started with
    ``start_logging`` are left alone (the imported runs never become the active run).

    Args:
        logdir: the directory given to ``SummaryWriter`` / ``tensorboard --logdir``.
        experiment: the experiment to import into; default ``TRACELET_EXPERIMENT`` or ``tracelet``.
        backends: trackers to send to; default ``TRACELET_BACKENDS``, else MLflow if installed.
        progress: called as ``progress(done, total)`` in runs: ``(0, total)`` first, then after each run.

    Returns:
        One :class:`ImportedRun` per TensorBoard run, in path order.

    Raises:
        FileNotFoundError: ``logdir`` is not a directory.
        ConfigurationError: a setting is invalid.
        TraceletError: the ``tensorboard`` package (which reads event files) is not installed.

    Example:
        >>> import tempfile
        >>> import_logdir(tempfile.mkdtemp(), backends=[])  # a directory without event files
        []
    """
    try:
        from tensorboard.backend.event_processing import event_accumulator
    except ImportError:
        raise TraceletError(
            'Reading TensorBoard logs needs the tensorboard package: pip install "tracelet-lightning[tensorboard]"'
        ) from None
    root = Path(logdir)
    directories = find_tensorboard_runs(root)
    base = load_settings(
        experiment=experiment, backends=backends, delivery="thread", system_metrics=False, git=False, environment=False
    )
    total = len(directories)
    if progress is not None:
        progress(0, total)
    imported = []
    for done, directory in enumerate(directories, start=1):
        relative = directory.relative_to(root).as_posix()
        name = root.resolve().name if relative == "." else relative
        accumulator = event_accumulator.EventAccumulator(
            str(directory), size_guidance=dict.fromkeys(event_accumulator.DEFAULT_SIZE_GUIDANCE, 0)
        )
        accumulator.Reload()
        run = Run(load_settings(base, run_name=name)).start()
        run.set_tags({"tensorboard.imported_from": str(directory.resolve())})
        replay = SummaryReplay(run)
        try:
            _replay(accumulator, replay)
        except BaseException:
            run.finish("FAILED")
            raise
        report = run.finish()
        imported.append(
            ImportedRun(
                name=name,
                run_id=run.id,
                source=str(directory),
                backend_run_ids={b.name: b.native_id for b in report.backends if b.native_id},
                complete=report.complete,
                **{kind: replay.counts[kind] for kind in ("scalars", "histograms", "images", "texts", "params")},
                artifacts=replay.counts["artifacts"],
            )
        )
        if progress is not None:
            progress(done, total)
    return imported


def _replay(accumulator: Any, replay: SummaryReplay) -> None:
    """Everything one run's accumulator holds, kind by kind, each tag in step order."""
    tags = accumulator.Tags()
    try:
        hparams = accumulator.PluginTagToContent("hparams")
    except KeyError:  # no add_hparams in this run
        hparams = {}
    for content in hparams.values():
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
        if plugin.plugin_name == "hparams":  # sent above, from the plugin data
            continue
        for tensor in accumulator.Tensors(tag):
            replay.tensor(tag, plugin.plugin_name, plugin.content, tensor.tensor_proto, tensor.step, tensor.wall_time)

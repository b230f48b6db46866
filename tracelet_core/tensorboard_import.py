"""Import existing TensorBoard logs into the trackers: the migration path behind ``tracelet import-tensorboard``.

A thin layer over the TensorBoard reader (:mod:`tracelet_core.trackers.tensorboard.reader`, which
``tracelet migrate --from tensorboard:LOGDIR`` uses too): every TensorBoard run it finds under LOGDIR
becomes one Tracelet run, named after its path relative to LOGDIR, replayed with the same mapping as
the live bridge (:mod:`tracelet_core.tensorboard_summaries`) and finished before the next one starts.
The subdirectory PyTorch's ``add_hparams`` writes per call (named after the time, or ``run_name``) is
not a run of its own: its hyperparameters and metrics go into the run it is in, as the live bridge
sends them to the active run.
Unlike ``migrate``, whose runs carry scalars, params and files only, the runs are Tracelet runs: they
carry images, histograms and texts as well, and what a tracker does not take stays in the journal
for ``tracelet sync``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tracelet_core.run import Run
from tracelet_core.settings import TraceletSettings, load_settings
from tracelet_core.tensorboard_summaries import SummaryReplay
from tracelet_core.trackers.store import SourceRun
from tracelet_core.trackers.tensorboard.reader import TensorBoardReader, event_directories, require_tensorboard

__all__ = ["ImportedRun", "find_tensorboard_runs", "import_logdir"]

_COUNTED = ("scalars", "histograms", "images", "texts", "params", "artifacts")


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
        merged: the ``add_hparams`` subdirectories merged into the run (relative to LOGDIR).
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
    merged: tuple[str, ...] = ()


def find_tensorboard_runs(logdir: str | Path) -> list[Path]:
    """The directories under ``logdir`` (itself included) that hold TensorBoard event files, sorted.

    Raises:
        FileNotFoundError: ``logdir`` is not a directory.
    """
    return event_directories(_logdir(logdir))


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
        BackendUnavailableError: the ``tensorboard`` package (which reads event files) is not installed.

    Example:
        >>> import tempfile
        >>> import_logdir(tempfile.mkdtemp(), backends=[])  # a directory without event files
        []
    """
    require_tensorboard()
    root = _logdir(logdir)
    reader = TensorBoardReader(str(root))
    runs = _with_hparams_merged(reader, reader.list_runs())
    settings = load_settings(
        experiment=experiment, backends=backends, delivery="thread", system_metrics=False, git=False, environment=False
    )
    if progress is not None:
        progress(0, len(runs))
    imported = []
    for done, (source, merged) in enumerate(runs, start=1):
        imported.append(_import_run(reader, source, merged, root, settings))
        if progress is not None:
            progress(done, len(runs))
    return imported


def _with_hparams_merged(reader: TensorBoardReader, runs: list[SourceRun]) -> list[tuple[SourceRun, list[SourceRun]]]:
    """Each run to import, with the ``add_hparams`` subdirectories that go into it."""
    by_directory = {reader.directory(run): run for run in runs}
    chosen: dict[str, tuple[SourceRun, list[SourceRun]]] = {}
    for run in runs:  # in path order: a parent directory comes before its subdirectories
        parent = by_directory.get(reader.directory(run).parent)
        if parent is not None and parent.native_id in chosen and reader.hparams_only(run):
            chosen[parent.native_id][1].append(run)
        else:
            chosen[run.native_id] = (run, [])
    return list(chosen.values())


def _logdir(logdir: str | Path) -> Path:
    root = Path(logdir)
    if not root.is_dir():
        raise FileNotFoundError(f"import-tensorboard needs a directory of TensorBoard logs; {str(root)!r} is not one")
    return root


def _import_run(
    reader: TensorBoardReader, source: SourceRun, merged: list[SourceRun], root: Path, settings: TraceletSettings
) -> ImportedRun:
    """One TensorBoard run (and its ``add_hparams`` subdirectories) replayed into a new Tracelet run, finished
    before this returns."""
    directory = reader.directory(source)
    run = Run(load_settings(settings, run_name=source.name)).start()
    run.set_tags({"tensorboard.imported_from": str(directory)})
    replay = SummaryReplay.into_run(run)
    try:
        for part in (source, *merged):
            reader.replay(part, replay)
    except BaseException:
        run.finish("FAILED")
        raise
    report = run.finish()
    return ImportedRun(
        name=source.name or source.native_id,
        run_id=run.id,
        source=str(root / directory.relative_to(reader.root)),
        backend_run_ids={b.name: b.native_id for b in report.backends if b.native_id},
        complete=report.complete,
        **{kind: replay.counts[kind] for kind in _COUNTED},
        merged=tuple(part.name or part.native_id for part in merged),
    )

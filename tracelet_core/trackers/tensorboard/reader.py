"""Read TensorBoard event files (``tensorboard:LOGDIR``) with TensorBoard's own ``EventAccumulator``.

Every directory under LOGDIR (LOGDIR included) that holds ``*tfevents*`` files is one run, named
by its path relative to LOGDIR; the experiment is LOGDIR's name. Scalars (``add_scalar``, and TF2
scalar summaries stored as tensors) become metric points with their step and wall time; the
hyperparameters of ``add_hparams`` become params. Images, histograms, audio and text are counted in
the notes, not copied. TensorBoard has no run status: every run is FINISHED.

``tracelet import-tensorboard`` sends a log directory to the configured trackers directly; this
reader is what ``tracelet migrate --from tensorboard:LOGDIR`` uses.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from tracelet_core.events import MetricPoint
from tracelet_core.trackers.store import RunRecord, SourceRun, StoreReader

__all__ = ["TensorBoardReader"]

_SCALARS_PLUGIN = "scalars"
_HPARAMS_PLUGIN = "hparams"
_MEDIA = ("images", "audio", "histograms")


def _hparam_value(value: Any) -> str:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        return str(int(number)) if number.is_integer() else repr(number)
    if kind == "bool_value":
        return str(value.bool_value)
    return str(getattr(value, kind)) if kind else ""


def _plugin_content(accumulator: Any, plugin: str) -> dict[str, bytes]:
    try:
        return dict(accumulator.PluginTagToContent(plugin))
    except KeyError:  # no summary of this plugin in the run
        return {}


class TensorBoardReader(StoreReader):
    """Reads every run under a TensorBoard log directory.

    Raises:
        ConfigurationError: ``location`` is not a directory.
    """

    kind = "tensorboard"

    def __init__(self, location: str) -> None:
        super().__init__(location)
        from tracelet_core.errors import ConfigurationError

        self.root = Path(location or ".").expanduser().resolve()
        if not self.root.is_dir():
            raise ConfigurationError(f"TensorBoard log directory {str(self.root)!r} does not exist")
        self._dirs: dict[str, Path] = {}

    def list_runs(self, experiments: Collection[str] | None = None) -> list[SourceRun]:
        experiment = self.root.name
        if experiments is not None and experiment not in experiments:
            return []
        folders = sorted({p.parent for p in self.root.rglob("*tfevents*") if p.is_file()})
        runs = []
        for folder in folders:
            relative = folder.relative_to(self.root).as_posix()
            name = experiment if relative == "." else relative
            self._dirs[name] = folder
            started = min(p.stat().st_mtime for p in folder.glob("*tfevents*"))
            runs.append(SourceRun(f"tensorboard:{folder}", name, experiment, name, {}, started))
        return runs

    def read_run(self, run: SourceRun, scratch: Path, *, artifacts: bool = True) -> RunRecord:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        from tensorboard.plugins.hparams import metadata as hparams_metadata
        from tensorboard.util import tensor_util

        if run.native_id not in self._dirs:
            self.list_runs()
        accumulator = EventAccumulator(
            str(self._dirs[run.native_id]),
            size_guidance={"scalars": 0, "tensors": 0, "images": 1, "audio": 1, "histograms": 1},
        )
        accumulator.Reload()
        tags = accumulator.Tags()
        record = RunRecord(run=run)
        for tag in tags.get("scalars", []):
            for event in accumulator.Scalars(tag):
                record.metrics.append(MetricPoint(tag, float(event.value), int(event.step), float(event.wall_time)))
        skipped: list[str] = []
        for tag in tags.get("tensors", []):
            plugin = accumulator.SummaryMetadata(tag).plugin_data.plugin_name
            if plugin == _SCALARS_PLUGIN:
                for event in accumulator.Tensors(tag):
                    value = float(tensor_util.make_ndarray(event.tensor_proto).item())
                    record.metrics.append(MetricPoint(tag, value, int(event.step), float(event.wall_time)))
            elif plugin != _HPARAMS_PLUGIN:
                skipped.append(f"{tag} ({plugin or 'tensor'})")
        # hparams summaries carry no value: the accumulator keeps only their plugin content.
        content = _plugin_content(accumulator, _HPARAMS_PLUGIN).get(hparams_metadata.SESSION_START_INFO_TAG)
        if content is not None:
            info = hparams_metadata.parse_session_start_info_plugin_data(content)
            record.params.update({k: _hparam_value(v) for k, v in info.hparams.items()})
        for kind in _MEDIA:
            skipped.extend(f"{tag} ({kind})" for tag in tags.get(kind, []))
        if skipped:
            record.notes.append(f"only scalars and hparams are copied; not copied: {', '.join(sorted(skipped))}")
        return record

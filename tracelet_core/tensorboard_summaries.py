"""What each kind of TensorBoard summary becomes in a Tracelet run.

Shared by the live bridge (:mod:`tracelet_core.tensorboard`, one call per summary value that is not a
plain scalar) and by the TensorBoard reader (:mod:`tracelet_core.trackers.tensorboard.reader`, one
call per stored event), which replays event files into a run (``tracelet import-tensorboard``) or
into a ``RunRecord`` (``tracelet migrate``). The mapping, for ``torch.utils.tensorboard`` and
``tensorboardX`` alike:

=====================================  =====================================================================
TensorBoard                            Tracelet run
=====================================  =====================================================================
``add_scalar`` (old and new style)     metric ``tag`` at the step, with the event's wall time
``add_scalars(main, {tag: v})``        metric ``main/tag`` (the bridge names these; see ``tensorboard.py``)
``add_histogram``                      histogram ``tag`` (TensorBoard's own buckets, empty end buckets dropped)
``add_image(s)``, ``add_figure``       image ``tag`` (the PNG TensorBoard encoded; GIF for ``add_video``)
``add_text``                           text ``tag`` (without TensorBoard's ``/text_summary`` suffix)
``add_audio``                          artifact ``tensorboard/audio/<tag>/step-<step>.wav``
``add_pr_curve``                       artifact ``tensorboard/pr_curves/<tag>/step-<step>.json``
``add_hparams``                        params (its metrics arrive as scalars)
``add_custom_scalars*``                artifact ``tensorboard/custom_scalars.json`` (the layout)
meshes, graphs, embeddings             not forwarded (TensorBoard's files still have them); one warning
=====================================  =====================================================================

Protobuf modules are imported here lazily; numpy only for tensor-valued summaries.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tracelet_core.errors import warn_once

if TYPE_CHECKING:
    import numpy as np

    from tracelet_core.run import Run

__all__ = ["SummaryReplay", "SummaryTarget", "histogram_data"]

TEXT_SUFFIX = "/text_summary"
_PR_ROWS = ("true_positives", "false_positives", "true_negatives", "false_negatives", "precision", "recall")
_UNSAFE = re.compile(r"[^\w.\- /]")
# TensorProto dtype enum -> (numpy dtype, repeated field holding the values when tensor_content is empty)
_DTYPES = {
    1: ("float32", "float_val"),
    2: ("float64", "double_val"),
    3: ("int32", "int_val"),
    4: ("uint8", "int_val"),
    5: ("int16", "int_val"),
    6: ("int8", "int_val"),
    9: ("int64", "int64_val"),
    10: ("bool", "bool_val"),
    17: ("uint16", "int_val"),
    19: ("float16", "half_val"),
    22: ("uint32", "uint32_val"),
    23: ("uint64", "uint64_val"),
}
_DT_HALF = 19


def histogram_data(histo: Any) -> dict[str, list[float]] | None:
    """TensorBoard's histogram buckets as Tracelet's ``{"bins": edges, "counts": counts}``.

    Args:
        histo: a ``HistogramProto`` or the importer's ``HistogramValue`` (``min``, ``max``,
            ``bucket_limit``: right edges, ``bucket``: counts).

    Returns:
        ``len(bins) == len(counts) + 1``; empty buckets at both ends are dropped (TensorBoard keeps
        one below the data whose left edge it does not record), the outer edges are the data's
        min and max. None for an empty histogram.

    Example:
        >>> from types import SimpleNamespace
        >>> histogram_data(SimpleNamespace(min=0.5, max=2.5, bucket_limit=[0.0, 1.0, 2.0, 3.0], bucket=[0, 2, 0, 1]))
        {'bins': [0.5, 1.0, 2.0, 2.5], 'counts': [2.0, 0.0, 1.0]}
    """
    limits = [float(x) for x in histo.bucket_limit]
    counts = [float(x) for x in histo.bucket]
    first, last = 0, len(counts)
    while first < last and counts[first] == 0:
        first += 1
    while last > first and counts[last - 1] == 0:
        last -= 1
    if first == last:
        return None
    low, high = float(histo.min), float(histo.max)
    bins = [limits[first - 1] if first > 0 else min(low, limits[0]), *limits[first:last]]
    # The outer buckets reach past the data (TensorFlow's last limit can be DBL_MAX): end them at it.
    if bins[0] < low < bins[1]:
        bins[0] = low
    if bins[-2] < high < bins[-1]:
        bins[-1] = high
    return {"bins": bins, "counts": counts[first:last]}


def tensor_array(tensor: Any) -> np.ndarray:
    """A numeric ``TensorProto`` (tensorboard's or tensorboardX's) as a numpy array."""
    import numpy as np

    try:
        dtype_name, field = _DTYPES[tensor.dtype]
    except KeyError:
        raise ValueError(f"unsupported tensor dtype {tensor.dtype}") from None
    shape = [dim.size for dim in tensor.tensor_shape.dim]
    if tensor.tensor_content:
        return np.frombuffer(tensor.tensor_content, dtype=dtype_name).reshape(shape)
    raw = getattr(tensor, field)
    values = np.array(raw, dtype="uint16").view("float16") if tensor.dtype == _DT_HALF else np.array(raw, dtype_name)
    size = int(np.prod(shape)) if shape else 1
    if 0 < values.size < size:  # TensorFlow stores a run of equal trailing values once
        values = np.concatenate([values, np.full(size - values.size, values[-1], dtype=values.dtype)])
    return values.reshape(shape)


def safe_name(tag: str) -> str:
    """A tag as a relative artifact path: odd characters become ``_``, no empty, ``.`` or ``..`` parts."""
    parts = [part for part in _UNSAFE.sub("_", tag).split("/") if part not in ("", ".", "..")]
    return "/".join(parts) or "_"


class SummaryTarget(Protocol):
    """What :class:`SummaryReplay` sends summaries to: a :class:`~tracelet_core.run.Run`, or anything
    with the same methods (the TensorBoard reader fills a ``RunRecord`` this way)."""

    @property
    def active(self) -> bool:
        """Whether it still takes values (files are only written for a target that does)."""

    def log_metric(self, key: str, value: Any, step: int | None = None, timestamp: float | None = None) -> None:
        """One metric value."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Hyperparameters (plain Python values)."""

    def log_histogram(self, key: str, values: Any, step: int | None = None, timestamp: float | None = None) -> None:
        """A histogram as ``{"bins": edges, "counts": counts}``."""

    def log_image(self, key: str, image: Any, step: int | None = None, timestamp: float | None = None) -> None:
        """An image as encoded bytes (PNG; GIF for videos)."""

    def log_text(self, key: str, text: str, step: int | None = None, timestamp: float | None = None) -> None:
        """A piece of text."""

    def log_artifact(self, path: str | PathLike[str], name: str | None = None) -> None:
        """A file, stored as ``name``."""


class SummaryReplay:
    """Sends TensorBoard summaries of any kind to one target (see the module docstring for the mapping).

    Args:
        target: what receives them: a run (see :meth:`into_run`), or a reader's record.
        files: the directory where summaries sent as files (audio, PR curves, layouts) are written
            before they are handed to ``target``; None: those are not sent (and not counted).

    Attributes:
        counts: how many values of each kind were sent: ``scalars``, ``histograms``, ``images``,
            ``texts``, ``params``, ``artifacts``.
        skipped: the summaries not forwarded at all, as ``"tag (kind)"`` (meshes, graphs...; one
            warning per kind).

    Example:
        >>> import tracelet_core, tempfile
        >>> run = tracelet_core.start_logging(backends=[], journal_dir=tempfile.mkdtemp(),
        ...                                   system_metrics=False, git=False, environment=False)
        >>> replay = SummaryReplay.into_run(run)
        >>> replay.scalar("loss", 0.5, step=1, wall_time=1.7e9)
        >>> replay.counts["scalars"]
        1
        >>> _ = run.finish()
    """

    def __init__(self, target: SummaryTarget, files: Path | None) -> None:
        self.target = target
        self.files = files
        self.counts: Counter[str] = Counter()
        self.skipped: set[str] = set()

    @classmethod
    def into_run(cls, run: Run) -> SummaryReplay:
        """A replay into ``run``, writing its files under the run's directory."""
        return cls(run, run.run_dir / "tensorboard")

    def value(self, value: Any, step: int, wall_time: float) -> None:
        """Send one ``Summary.Value`` as written by a SummaryWriter."""
        kind = value.WhichOneof("value")
        if kind == "simple_value":
            self.scalar(value.tag, value.simple_value, step, wall_time)
        elif kind == "histo":
            self.histogram(value.tag, value.histo, step, wall_time)
        elif kind == "image":
            self.image(value.tag, value.image.encoded_image_string, step, wall_time)
        elif kind == "audio":
            self.audio(value.tag, value.audio.encoded_audio_string, step)
        elif kind == "tensor" or kind is None:  # add_hparams writes plugin data with no value at all
            plugin = value.metadata.plugin_data
            self.tensor(value.tag, plugin.plugin_name, plugin.content, value.tensor, step, wall_time)
        else:
            self._skip(str(kind), value.tag)

    def scalar(self, key: str, value: float, step: int, wall_time: float) -> None:
        """A metric value at ``step``, recorded with TensorBoard's wall time."""
        self.target.log_metric(key, value, step=step, timestamp=wall_time)
        self.counts["scalars"] += 1

    def histogram(self, tag: str, histo: Any, step: int, wall_time: float) -> None:
        """A histogram from TensorBoard's buckets (see :func:`histogram_data`)."""
        data = histogram_data(histo)
        if data is not None:
            self.target.log_histogram(tag, data, step=step, timestamp=wall_time)
            self.counts["histograms"] += 1

    def image(self, tag: str, encoded: bytes, step: int, wall_time: float) -> None:
        """An image TensorBoard already encoded (PNG; GIF for videos), passed on without decoding."""
        self.target.log_image(tag, encoded, step=step, timestamp=wall_time)
        self.counts["images"] += 1

    def audio(self, tag: str, encoded: bytes, step: int) -> None:
        """A WAV clip, as an artifact."""
        self._artifact(f"audio/{safe_name(tag)}/step-{step:09d}.wav", encoded)

    def params(self, content: bytes) -> None:
        """The hyperparameters of an ``add_hparams`` call, from its hparams plugin data."""
        hparams = _session_hparams(content)
        if hparams:
            self.target.log_params(hparams)
            self.counts["params"] += len(hparams)

    def tensor(self, tag: str, plugin: str, content: bytes, tensor: Any, step: int, wall_time: float) -> None:
        """A tensor summary, dispatched on the TensorBoard plugin that wrote it."""
        if plugin == "scalars":
            self.scalar(tag, float(tensor_array(tensor).reshape(-1)[0]), step, wall_time)
        elif plugin == "text":
            text = "\n".join(s.decode("utf-8", "replace") for s in tensor.string_val)
            self.target.log_text(tag.removesuffix(TEXT_SUFFIX), text, step=step, timestamp=wall_time)
            self.counts["texts"] += 1
        elif plugin == "hparams":
            self.params(content)
        elif plugin == "pr_curves":
            self._pr_curve(tag, tensor, step, wall_time)
        elif plugin == "custom_scalars":
            self._artifact("custom_scalars.json", _layout_json(tensor.string_val[0]))
        elif plugin == "histograms":  # TensorFlow 2 writers: rows of (left edge, right edge, count)
            rows = tensor_array(tensor).astype(float).reshape(-1, 3)
            if len(rows):
                bins = [*rows[:, 0].tolist(), float(rows[-1, 1])]
                self.target.log_histogram(
                    tag, {"bins": bins, "counts": rows[:, 2].tolist()}, step=step, timestamp=wall_time
                )
                self.counts["histograms"] += 1
        elif plugin == "images" and len(tensor.string_val) > 2:  # TensorFlow 2: width, height, images...
            self.image(tag, tensor.string_val[2], step, wall_time)
        else:
            self._skip(plugin or "tensor", tag)

    def _pr_curve(self, tag: str, tensor: Any, step: int, wall_time: float) -> None:
        data = tensor_array(tensor).astype(float).reshape(len(_PR_ROWS), -1)
        count = data.shape[1]
        payload: dict[str, Any] = {"tag": tag, "step": step, "wall_time": wall_time}
        payload["thresholds"] = [i / max(count - 1, 1) for i in range(count)]
        payload.update({name: data[row].tolist() for row, name in enumerate(_PR_ROWS)})
        self._artifact(f"pr_curves/{safe_name(tag)}/step-{step:09d}.json", json.dumps(payload).encode())

    def _artifact(self, name: str, content: bytes) -> None:
        if self.files is None or not self.target.active:
            return
        # A fresh directory per file: the run hard-links what it is given, so a file rewritten in
        # place (a second layout) would change the copy still waiting for delivery.
        path = self.files / uuid.uuid4().hex[:12] / Path(name).name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        self.target.log_artifact(path, name=f"tensorboard/{name}")
        self.counts["artifacts"] += 1

    def _skip(self, kind: str, tag: str) -> None:
        self.skipped.add(f"{tag} ({kind})")
        warn_once(
            f"tensorboard-skip:{kind}",
            f"TensorBoard {kind} summaries (e.g. {tag!r}) stay in TensorBoard's files; Tracelet does not forward them.",
        )


def _session_hparams(content: bytes) -> dict[str, Any]:
    try:
        from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
    except ImportError:  # tensorboardX ships its own copy of the proto
        from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    data = HParamsPluginData.FromString(content)
    if data.WhichOneof("data") != "session_start_info":
        return {}
    return {name: _plain(value) for name, value in data.session_start_info.hparams.items()}


def _plain(value: Any) -> Any:
    """A ``google.protobuf.Value`` as Python; whole numbers as ints (the proto keeps every number as a double)."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() else number
    if kind in ("string_value", "bool_value"):
        return getattr(value, kind)
    return None


def _layout_json(serialized: bytes) -> bytes:
    # protobuf ships no type stubs (types-protobuf is not a dev dependency); unused-ignore keeps
    # this line quiet once they are installed.
    from google.protobuf import json_format  # type: ignore[import-untyped, unused-ignore]

    try:
        from tensorboard.plugins.custom_scalar.layout_pb2 import Layout
    except ImportError:
        from tensorboardX.proto.layout_pb2 import Layout

    return json_format.MessageToJson(Layout.FromString(serialized)).encode()

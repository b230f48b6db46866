"""Turning logged images, histograms and texts into files and plain data, off the training thread.

Called by the journal writer thread; numpy and Pillow are imported here, lazily.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import Any

__all__ = ["encode_media"]

HISTOGRAM_BINS = 64
_UNSAFE = re.compile(r"[^\w.-]+")


def encode_media(kind: str, key: str, obj: Any, step: int | None, media_dir: Path) -> dict[str, Any]:
    """Encode one media object into the payload a :class:`~tracelet_core.events.MediaItem` is made of.

    Args:
        kind: ``image``, ``histogram`` or ``text``.
        key: the name it was logged under.
        obj: for images a file path, PIL image, numpy array or tensor (HW, HWC or CHW; floats in
            [0, 1] or integers in [0, 255]), a matplotlib figure, or encoded PNG/GIF bytes; for
            histograms a sequence, array or tensor of values, or a ``{"bins": [...], "counts": [...]}``
            mapping; for texts a string.
        step: the step it was logged at (used in the file name).
        media_dir: where image files are written.

    Returns:
        ``{"kind": ..., "path": str | None, "data": {...}}``.

    Raises:
        ValueError: the object cannot be turned into this kind of media.
    """
    if kind == "text":
        return {"kind": kind, "path": None, "data": {"text": str(obj)}}
    if kind == "histogram":
        return {"kind": kind, "path": None, "data": _histogram(obj)}
    if kind == "image":
        media_dir.mkdir(parents=True, exist_ok=True)
        suffix = ".gif" if isinstance(obj, bytes) and obj.startswith(b"GIF8") else ".png"
        stem = f"{_UNSAFE.sub('_', key)}-{'none' if step is None else step}-{uuid.uuid4().hex[:8]}"
        target = media_dir / (stem + suffix)
        _write_png(obj, target)
        return {"kind": kind, "path": str(target), "data": {}}
    raise ValueError(f"unknown media kind {kind!r}; use image, histogram or text")


def _to_numpy(obj: Any) -> Any:
    import numpy as np

    if hasattr(obj, "detach"):
        obj = obj.detach().cpu().numpy()
    return np.asarray(obj)


def _histogram(obj: Any) -> dict[str, Any]:
    import numpy as np

    if isinstance(obj, dict) and "bins" in obj and "counts" in obj:
        edges_given, counts_given = list(map(float, obj["bins"])), list(map(float, obj["counts"]))
        if len(edges_given) != len(counts_given) + 1:
            raise ValueError("a histogram needs one more bin edge than counts")
        return {"bins": edges_given, "counts": counts_given}
    values = _to_numpy(obj).astype("float64").ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("a histogram needs at least one finite value")
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
    return {
        "bins": edges.tolist(),
        "counts": counts.astype(float).tolist(),
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": float(values.mean()),
        "count": int(values.size),
    }


def _write_png(obj: Any, target: Path) -> None:
    if isinstance(obj, bytes):  # already encoded (TensorBoard summaries): kept byte for byte
        target.write_bytes(obj)
        return
    if isinstance(obj, str | Path):
        source = Path(obj)
        if source.suffix.lower() == ".png":
            shutil.copyfile(source, target)
            return
        from PIL import Image

        with Image.open(source) as opened:
            opened.save(target, format="PNG")
        return
    if hasattr(obj, "savefig"):  # a matplotlib figure
        obj.savefig(target, format="png")
        return
    if hasattr(obj, "save") and hasattr(obj, "mode"):  # a PIL image
        obj.save(target, format="PNG")
        return
    import numpy as np
    from PIL import Image

    array = _to_numpy(obj)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.transpose(array, (1, 2, 0))  # CHW -> HWC, the torch convention
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3):
        raise ValueError(f"an image must be HW, HWC or CHW; got shape {array.shape}")
    if array.dtype.kind == "f":
        array = np.clip(np.nan_to_num(array), 0.0, 1.0) * 255.0
    Image.fromarray(array.astype(np.uint8)).save(target, format="PNG")

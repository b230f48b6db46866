"""What a logged step, timestamp, metric value or artifact name may be: the rules at Tracelet's boundary.

Every front end (``Run``, ``TraceletLogger``, ``TraceletCallback``, the TensorBoard bridge) hands its
inputs over raw; the journal writer checks them here, off the training thread (a tensor on a device
is read here, never there):

* a step is an integer in ``[0, 2**63)``: Python and numpy ints, one-element tensors and arrays, and
  integral floats (``3.0``) are accepted and become a Python ``int``;
* a timestamp is a finite number of seconds between 1970-01-01 and 2100-01-01;
* a metric value is a real number (NaN and ±inf kept);
* an artifact name is a relative ``/``-separated path without ``.`` or ``..`` segments.

Anything else raises :class:`ValueError` (or, for a metric value, gives None) with the value named;
the caller drops that one input with a warning and keeps everything else.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = [
    "artifact_name",
    "element_count",
    "is_tensor_like",
    "preview",
    "to_metric_value",
    "to_step",
    "to_timestamp",
]

# Trackers store steps as signed 64-bit integers.
_STEP_LIMIT = 2**63
_LATEST_TIMESTAMP = 4_102_444_800.0  # 2100-01-01T00:00:00Z
_DRIVE = re.compile(r"^[A-Za-z]:")


def is_tensor_like(value: Any) -> bool:
    """Whether ``value`` is a torch tensor or a numpy array or scalar (never imported: duck-typed by module)."""
    module = type(value).__module__
    return (module.startswith("torch") or module.startswith("numpy")) and hasattr(value, "tolist")


def element_count(value: Any) -> int | None:
    """Elements in a tensor (``numel()``) or array (``size``); None when the value does not say."""
    numel = getattr(value, "numel", None)
    if callable(numel):
        return int(numel())
    size = getattr(value, "size", None)
    return size if isinstance(size, int) else None


def _item(value: Any) -> Any:
    """The Python scalar in a numpy scalar or one-element tensor/array; None when it holds no single value."""
    try:
        return value.item() if element_count(value) in (1, None) else None
    except Exception:  # a user's object, or a tensor on a failed device, may raise anything here
        return None


def preview(value: Any) -> str:
    """A short ``repr`` for messages, that never raises (a user's object may break in its ``__repr__``)."""
    try:
        text = repr(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def _to_float(number: int | float) -> float:
    """An int or float as exactly ``float``; an int beyond a float's range becomes ±inf."""
    if isinstance(number, float):
        return float.__float__(number)
    try:
        return int.__float__(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf


def to_metric_value(value: Any) -> float | None:
    """A metric value as a float, or None when it is not a number. Never raises.

    Accepts bools, ints (beyond a float's range: ±inf, which the caller reports), floats (NaN and
    ±inf kept), numeric strings (``"1e400"`` is inf), numpy scalars and one-element tensors or
    arrays (read here, off the training thread). Anything else, and any value whose ``item()`` or
    ``__float__`` raises, is None.

    Args:
        value: what the user logged as a metric.

    Returns:
        Exactly a ``float``, or None when ``value`` is not a number.

    Example:
        >>> to_metric_value("0.5"), to_metric_value(True), to_metric_value(None), to_metric_value("abc")
        (0.5, 1.0, None, None)
        >>> to_metric_value(10**400), to_metric_value(-(10**400))
        (inf, -inf)
    """
    try:
        if is_tensor_like(value) or hasattr(value, "item"):
            value = _item(value)
        if value is None:
            return None
        if isinstance(value, int | float):
            return _to_float(value)
        return float(value.strip() if isinstance(value, str) else value)
    except Exception:  # whatever a user's object raises, the metric is dropped, not the call
        return None


def to_step(value: Any) -> int | None:
    """A step as an int in ``[0, 2**63)``, or None for None.

    Accepts ints, numpy integers, integral floats (``3.0``) and one-element tensors or arrays holding
    one of those (read here, so call it off the training thread). Bools are refused: ``step=True`` is
    almost surely a bug, not step 1.

    Args:
        value: the step the user logged, or None for none.

    Returns:
        Exactly an ``int``, or None.

    Raises:
        ValueError: anything else (negative, ``2**63`` or more, ``2.5``, NaN, inf, a string, a bool);
            the message names the value and the range.

    Example:
        >>> to_step(None), to_step(3), to_step(3.0)
        (None, 3, 3)
        >>> to_step(-1)
        Traceback (most recent call last):
        ...
        ValueError: step must be an integer in [0, 2**63); got -1 (int)
    """
    if value is None:
        return None
    number = _item(value) if is_tensor_like(value) else value
    step: int | None = None
    if isinstance(number, int) and not isinstance(number, bool):
        step = int.__int__(number)
    elif isinstance(number, float) and number.is_integer():
        step = int(number)
    if step is None or not 0 <= step < _STEP_LIMIT:
        raise ValueError(f"step must be an integer in [0, 2**63); got {preview(value)} ({type(value).__name__})")
    return step


def to_timestamp(value: Any) -> float:
    """A timestamp as seconds since the epoch, after 1970-01-01 and before 2100-01-01 (UTC).

    Accepts ints, floats, numpy numbers and one-element tensors or arrays; bools are refused.

    Args:
        value: the timestamp the user logged (Tracelet passes ``time.time()`` when there is none).

    Returns:
        Exactly a ``float``.

    Raises:
        ValueError: anything else (NaN, inf, out of range, a string, None); the message names the
            value and the range.

    Example:
        >>> to_timestamp(1_700_000_000)
        1700000000.0
        >>> to_timestamp(1.7e12)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: timestamp must be seconds since the epoch, ...; got 1700000000000.0 (float)
    """
    number = _item(value) if is_tensor_like(value) else value
    if isinstance(number, int | float) and not isinstance(number, bool):
        seconds = _to_float(number)
        if 0.0 < seconds < _LATEST_TIMESTAMP:
            return seconds
    raise ValueError(
        "timestamp must be seconds since the epoch, between 1970-01-01 and 2100-01-01; "
        f"got {preview(value)} ({type(value).__name__})"
    )


def artifact_name(name: str) -> str:
    """The name a file is stored under in the trackers: relative, ``/``-separated, without ``..``.

    Backslashes become ``/``; leading ``/`` and a drive letter (``C:``) are removed; empty segments
    and segments of only dots and spaces (``.``, ``..``, and ``.. `` which Windows reads as ``..``)
    are dropped. Callers compare the result with ``name`` to decide whether to warn.

    Args:
        name: the name the user asked for.

    Returns:
        The safe name, never empty.

    Raises:
        ValueError: nothing is left of ``name`` (``""``, ``"/"``, ``".."``).

    Example:
        >>> artifact_name("../../etc/passwd"), artifact_name("C:\\\\runs\\\\x.txt"), artifact_name("a/./b//c")
        ('etc/passwd', 'runs/x.txt', 'a/b/c')
    """
    parts = name.replace("\\", "/").split("/")
    while True:  # until no drive is left in front: "C:C:/x" and "C:/./D:x" are "x" too
        parts = [part for part in parts if part.strip(". ")]
        if not parts or not _DRIVE.match(parts[0]):
            break
        parts[0] = parts[0][2:]
    safe = "/".join(parts)
    if not safe:
        raise ValueError(
            f"Artifact name {name!r} names no file once '.', '..', empty segments, a leading '/' and a drive "
            "letter are removed; pass a relative name such as 'checkpoints/best.ckpt'."
        )
    return safe

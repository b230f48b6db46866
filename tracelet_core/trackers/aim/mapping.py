"""How Tracelet's keys, params and tags map onto Aim's sequences, contexts, run params and tags.

Pure functions, shared by the backend (writing) and the reader (reading a repository back).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from typing import Any

from tracelet_core.errors import warn_once

__all__ = [
    "EPOCH_KEY",
    "STATUS_TAG",
    "SUBSETS",
    "distribution",
    "param_value",
    "sequence_of",
    "tag_label",
    "unflatten_params",
]

SUBSETS = ("train", "val", "test")
EPOCH_KEY = "epoch"
STATUS_TAG = "tracelet.status"
_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][-+]?[0-9]+)?")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9]")  # "007" is an identifier, not a number
_INT64 = 2**63  # Aim's tree stores ints as C longs
MAX_BINS = 512  # Aim's documented limit for one Distribution


def sequence_of(key: str) -> tuple[str, dict[str, str]]:
    """The Aim sequence name and context for a Tracelet metric or media key.

    Example:
        >>> sequence_of("train/loss"), sequence_of("val/top/1"), sequence_of("val_acc")
        (('loss', {'subset': 'train'}), ('top/1', {'subset': 'val'}), ('val_acc', {}))
    """
    head, sep, rest = key.partition("/")
    if sep and rest and head in SUBSETS:
        return rest, {"subset": head}
    return key, {}


def param_value(text: str) -> Any:
    """A param value from its journal string: plain int, float and bool literals become numbers.

    Anything else (lists, ``None``, ``nan``, ints beyond 64 bits, ``007``) stays a string, and
    ``{}`` (an empty mapping) becomes an empty dict.

    Example:
        >>> [param_value(s) for s in ["3", "-0.5", "1e-3", "True", "adam", "007", "[1, 2]", "{}"]]
        [3, -0.5, 0.001, True, 'adam', '007', '[1, 2]', {}]
    """
    if text in ("True", "False"):
        return text == "True"
    if _LEADING_ZERO.match(text):
        return text
    if _INT.fullmatch(text):
        number = int(text)
        return number if -_INT64 <= number < _INT64 else text
    if _FLOAT.fullmatch(text):
        return float(text)
    return {} if text == "{}" else text


def unflatten_params(flat: Mapping[str, str], into: dict[str, Any], sep: str = "/") -> dict[str, Any]:
    """Merge ``/``-flattened params into the nested dict ``into``; a later value wins over an earlier one.

    Example:
        >>> unflatten_params({"optimizer/lr": "0.1", "optimizer/name": "adam", "epochs": "3"}, {})
        {'optimizer': {'lr': 0.1, 'name': 'adam'}, 'epochs': 3}
    """
    for key, text in flat.items():
        parts = [part or "_" for part in key.split(sep)]
        node = into
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = param_value(text)
    return into


def tag_label(key: str, value: str) -> str:
    return f"{key}:{value}" if value else key


def distribution(key: str, data: Mapping[str, Any]) -> Any:
    """An ``aim.Distribution`` of a histogram ``{"bins", "counts"}``, within Aim's bin limit (one warning per key)."""
    import aim

    bins = [float(b) for b in data["bins"]]
    counts = list(data["counts"])
    widths = [hi - lo for lo, hi in itertools.pairwise(bins)]
    if any(not math.isclose(w, widths[0], rel_tol=1e-6, abs_tol=1e-12) for w in widths):
        warn_once(
            f"aim-uneven-bins:{key}",
            f"Aim draws histograms with equal-width bins; {key!r} has uneven bins, shown evenly "
            f"spaced between {bins[0]} and {bins[-1]}.",
        )
    hi = bins[-1]
    if len(counts) > MAX_BINS:
        group = math.ceil(len(counts) / MAX_BINS)
        counts += [0] * (-len(counts) % group)  # pad, and widen the range, to whole groups
        hi = bins[0] + (bins[-1] - bins[0]) * len(counts) / (len(bins) - 1)
        counts = [sum(counts[i : i + group]) for i in range(0, len(counts), group)]
        warn_once(
            f"aim-bins:{key}",
            f"Aim stores at most {MAX_BINS} histogram bins; {key!r} is merged {group} bins to one.",
        )
    return aim.Distribution(hist=counts, bin_range=(bins[0], hi))

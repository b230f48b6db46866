"""Turning what users log into what trackers accept: flat params, safe keys, plain values, limits.

Every function here is pure. Backends call the key and limit helpers with their own rules; the
run calls :func:`flatten_params` and :func:`to_plain` once per ``log_params``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from argparse import Namespace
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

__all__ = [
    "TRUNCATION_MARKER",
    "KeySanitizer",
    "deep_merge",
    "flatten_params",
    "param_to_str",
    "sanitize_key",
    "to_metric_value",
    "to_plain",
    "truncate",
]

TRUNCATION_MARKER = "...[truncated by Tracelet: {total} chars]"
MAX_DEPTH = 32
_ARRAY_PREVIEW = 64


def _is_tensor_like(value: Any) -> bool:
    # torch and numpy are never imported here: core stays light, so duck-type by module name.
    module = type(value).__module__
    return (module.startswith("torch") or module.startswith("numpy")) and hasattr(value, "tolist")


def to_plain(value: Any, _depth: int = 0, _seen: frozenset[int] = frozenset()) -> Any:
    """Convert a hyperparameter value to plain YAML/JSON data (dicts, lists, str, int, float, bool, None).

    Namespaces and dataclasses become dicts, Enums ``Type.NAME``, paths and callables strings,
    tensors and arrays lists (or a scalar). Cycles and nesting deeper than 32 levels become strings.

    Example:
        >>> import enum, pathlib
        >>> class Opt(enum.Enum):
        ...     ADAM = "adam"
        >>> to_plain({"opt": Opt.ADAM, "dir": pathlib.PurePosixPath("/d"), "fn": len})
        {'opt': 'Opt.ADAM', 'dir': '/d', 'fn': 'builtins.len'}
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, PurePath):
        return str(value)
    if _is_tensor_like(value):
        plain = value.tolist()
        return plain if not isinstance(plain, list) or len(plain) <= _ARRAY_PREVIEW else str(plain)
    if _depth >= MAX_DEPTH or id(value) in _seen:
        return repr(value)
    seen = _seen | {id(value)}
    if isinstance(value, Namespace):
        value = vars(value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_plain(v, _depth + 1, seen) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [to_plain(v, _depth + 1, seen) for v in items]
    if callable(value):
        module = getattr(value, "__module__", None) or ""
        name = getattr(value, "__qualname__", None) or type(value).__qualname__
        return f"{module}.{name}" if module else name
    return str(value)


def param_to_str(value: Any) -> str:
    """The string a tracker shows for one (already plain) param value.

    Example:
        >>> param_to_str(0.1), param_to_str(None), param_to_str([1, 2])
        ('0.1', 'None', '[1, 2]')
    """
    plain = to_plain(value)
    return plain if isinstance(plain, str) else repr(plain) if isinstance(plain, float) else str(plain)


def flatten_params(params: Any, sep: str = "/") -> dict[str, str]:
    """Flatten nested hyperparameters into ``{"optimizer/lr": "0.001", ...}``.

    Mappings, Namespaces and dataclasses are descended into; lists and everything else become one
    string value. An empty mapping is kept as ``"{}"`` so that its key is not lost.

    Args:
        params: a mapping, Namespace or dataclass instance.
        sep: separator between nesting levels.

    Returns:
        Flat keys to string values, in the order given.

    Example:
        >>> flatten_params({"optimizer": {"lr": 0.001, "betas": (0.9, 0.99)}, "epochs": 3})
        {'optimizer/lr': '0.001', 'optimizer/betas': '[0.9, 0.99]', 'epochs': '3'}
    """
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            if not value and prefix:
                flat[prefix] = "{}"
            for key, child in value.items():
                walk(f"{prefix}{sep}{key}" if prefix else str(key), child)
        else:
            flat[prefix] = param_to_str(value)

    walk("", to_plain(params))
    return flat


def sanitize_key(key: str, invalid: re.Pattern[str], replacement: str = "_", max_length: int | None = None) -> str:
    """Replace every character matched by ``invalid`` and shorten to ``max_length``.

    Example:
        >>> sanitize_key("val acc@top1", re.compile(r"[^\\w./ -]"))
        'val acc_top1'
    """
    cleaned = invalid.sub(replacement, key) or replacement
    if max_length is not None and len(cleaned) > max_length:
        cleaned = cleaned[:max_length]
    return cleaned


class KeySanitizer:
    """Remembers how keys were changed, warns once per changed key, and keeps distinct keys distinct.

    Args:
        backend: name used in the warning.
        invalid: characters the tracker rejects.
        max_length: longest key the tracker accepts.
        warn: called with (warning key, message) the first time a key is changed.

    Example:
        >>> s = KeySanitizer("demo", re.compile(r"[^a-z]"), warn=lambda k, m: None)
        >>> s("a b"), s("a?b"), s("a b")
        ('a_b', 'a_b_2', 'a_b')
    """

    def __init__(
        self,
        backend: str,
        invalid: re.Pattern[str],
        max_length: int | None = None,
        warn: Callable[[str, str], object] | None = None,
    ) -> None:
        from tracelet_core.errors import warn_once

        self._backend = backend
        self._invalid = invalid
        self._max_length = max_length
        self._warn = warn or warn_once
        self._mapping: dict[str, str] = {}
        self._taken: set[str] = set()

    def __call__(self, key: str) -> str:
        known = self._mapping.get(key)
        if known is not None:
            return known
        cleaned = sanitize_key(key, self._invalid, max_length=self._max_length)
        if cleaned != key and cleaned in self._taken:
            n = 2
            while f"{cleaned}_{n}" in self._taken:
                n += 1
            cleaned = f"{cleaned}_{n}"
        if cleaned != key:
            self._warn(
                f"key:{self._backend}:{key}",
                f"{self._backend} does not accept the key {key!r}; it is recorded as {cleaned!r}.",
            )
        self._mapping[key] = cleaned
        self._taken.add(cleaned)
        return cleaned


def truncate(text: str, limit: int | None) -> str:
    """Shorten ``text`` to at most ``limit`` characters, ending with a marker that says so.

    Example:
        >>> truncate("x" * 100, 50)
        'xxxxxxxxxxxxx...[truncated by Tracelet: 100 chars]'
        >>> len(truncate("x" * 100, 50))
        50
    """
    if limit is None or len(text) <= limit:
        return text
    marker = TRUNCATION_MARKER.format(total=len(text))
    return text[: max(0, limit - len(marker))] + marker[:limit]


def to_metric_value(value: Any) -> float | None:
    """A metric value as a float, or None when it is not a number.

    Accepts bools, ints, floats (NaN and ±inf kept), numeric strings, numpy scalars and one-element
    tensors or arrays (converted here, off the training thread).

    Example:
        >>> to_metric_value("0.5"), to_metric_value(True), to_metric_value(None), to_metric_value("abc")
        (0.5, 1.0, None, None)
    """
    if isinstance(value, float):
        return value
    if isinstance(value, bool | int):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    if _is_tensor_like(value) or hasattr(value, "item"):
        try:
            if getattr(value, "numel", None) is not None and value.numel() != 1:
                return None
            if getattr(value, "size", 1) not in (1, None) and not callable(value.size):
                return None
            return float(value.item())
        except (TypeError, ValueError, RuntimeError, AttributeError):
            return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def is_finite(value: float) -> bool:
    """``math.isfinite`` under a name that reads well at call sites."""
    return math.isfinite(value)


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``update``, nested dicts merged key by key (neither argument is changed).

    Example:
        >>> deep_merge({"model": {"layers": 2, "width": 64}}, {"model": {"layers": 3}, "lr": 0.1})
        {'model': {'layers': 3, 'width': 64}, 'lr': 0.1}
    """
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged

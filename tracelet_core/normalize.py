"""Hyperparameters as trackers take them: plain values, flat keys, secrets masked.

Every function here is pure (apart from one warning for a value that cannot be printed). The run
calls :func:`to_plain`, :func:`mask_secret_params` and :func:`flatten_params` once per
``log_params``. Steps, timestamps, metric values and artifact names are checked in
:mod:`tracelet_core.inputs`; keys are made valid for each tracker in :mod:`tracelet_core.names`.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from argparse import Namespace
from collections.abc import Callable, Iterable, Mapping
from fnmatch import fnmatchcase
from pathlib import PurePath
from typing import Any, TypeVar, cast

from tracelet_core.errors import warn_once
from tracelet_core.inputs import element_count, is_tensor_like

__all__ = [
    "DEFAULT_SECRET_PARAMS",
    "MASK",
    "deep_merge",
    "flatten_params",
    "is_secret_key",
    "mask_secret_params",
    "param_to_str",
    "to_plain",
]

# Hyperparameters whose value is a secret, matched (as globs, any case) against the last segment of
# the key: `api_key`, `hf_token`, `db_password` and `secret` are masked; `pad_token_id`,
# `max_new_tokens` and `author` are not. TRACELET_SECRET_PARAMS replaces this list.
DEFAULT_SECRET_PARAMS = (
    "*password",
    "*passwd",
    "*passphrase",
    "*secret",
    "*token",
    "*api_key",
    "*apikey",
    "*access_key",
    "*access_key_id",
    "*secret_key",
    "*private_key",
    "*credential",
    "*credentials",
    "auth",
    "*_auth",
)
# The same string as collectors.environment.MASK; importing it would be a cycle at `import tracelet_core`
# (collectors/__init__ -> collectors.runner -> normalize).
MASK = "***"
MAX_DEPTH = 32
_ARRAY_PREVIEW = 64
# Python refuses str() of an int with more digits than sys.get_int_max_str_digits(), which is at least
# 640; YAML and JSON both need that str(). Ints up to 2000 bits (603 digits) always print; longer
# ones are stored as their decimal text, or as a placeholder where Python refuses to print them.
_ALWAYS_PRINTABLE_BITS = 2000
_T = TypeVar("_T")


def _safe_str(value: Any, text: Callable[[Any], str] = str) -> str:
    """``text(value)`` as an exact ``str``; ``"<unprintable Type>"`` (and one warning) when it raises."""
    try:
        # str() lets __str__ return a str subclass, which yaml.safe_dump refuses.
        return str.__str__(text(value))
    except Exception:
        name = type(value).__name__
        warn_once(
            f"unprintable:{type(value).__module__}.{type(value).__qualname__}",
            f"A logged value of type {name} raised when converted to text; it is recorded as '<unprintable {name}>'.",
        )
        return f"<unprintable {name}>"


def _builtin_scalar(value: int | float | str) -> int | float | str:
    """``value`` as exactly ``int``, ``float`` or ``str``: subclasses (numpy, enums) make YAML and JSON fail."""
    if isinstance(value, int):
        number = int.__int__(value)
        return number if number.bit_length() <= _ALWAYS_PRINTABLE_BITS else _safe_str(number)
    if isinstance(value, float):
        return float.__float__(value)
    return str.__str__(value)


def _callable_name(value: Any) -> str:
    module = getattr(value, "__module__", None)
    name = getattr(value, "__qualname__", None)
    if not (isinstance(name, str) and name):
        name = type(value).__qualname__
    return f"{module}.{name}" if isinstance(module, str) and module else str.__str__(name)


def to_plain(value: Any, _depth: int = 0, _seen: frozenset[int] = frozenset()) -> Any:
    """Convert a hyperparameter value to plain YAML/JSON data (dicts, lists, str, int, float, bool, None).

    Scalars become exactly ``bool``/``int``/``float``/``str`` (numpy scalars and subclasses too, so
    ``yaml.safe_dump`` and ``json.dumps`` always work on the result). Namespaces and dataclasses
    become dicts with string keys, int and str Enums their value, other Enums ``Type.NAME``, paths
    and callables strings, tensors and arrays lists (a scalar when 0-d, their printout past 64
    elements), sets sorted lists. Cycles and nesting deeper than 32 levels become strings; a value
    whose ``str()`` raises becomes ``"<unprintable Type>"`` with one warning. Never raises for that.

    Example:
        >>> import enum, pathlib
        >>> class Opt(enum.Enum):
        ...     ADAM = "adam"
        >>> class Level(enum.IntEnum):
        ...     HIGH = 3
        >>> to_plain({"opt": Opt.ADAM, "level": Level.HIGH, "dir": pathlib.PurePosixPath("/d"), "fn": len})
        {'opt': 'Opt.ADAM', 'level': 3, 'dir': '/d', 'fn': 'builtins.len'}
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum) and not isinstance(value, int | float | str):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, int | float | str):
        return _builtin_scalar(value)
    if isinstance(value, PurePath):
        return _safe_str(value)
    if is_tensor_like(value):
        try:
            count = element_count(value)
            if count is not None and count > _ARRAY_PREVIEW:
                # Their printout, on one line: numpy and torch summarise big arrays; tolist() would not.
                return " ".join(_safe_str(value).split())
            return to_plain(value.tolist(), _depth + 1, _seen)
        except Exception:  # tolist() fails for tensors on some devices; their printout is all we have
            return _safe_str(value)
    if _depth >= MAX_DEPTH or id(value) in _seen:
        return _safe_str(value, repr)
    seen = _seen | {id(value)}
    if isinstance(value, Namespace):
        value = vars(value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {_plain_key(k): to_plain(v, _depth + 1, seen) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [to_plain(v, _depth + 1, seen) for v in value]
        # Sorted by the plain form: a set's order changes between processes, its sorted repr does not.
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if callable(value):
        return _callable_name(value)
    return _safe_str(value)


def _plain_key(key: Any) -> str:
    plain = to_plain(key)
    return plain if isinstance(plain, str) else _safe_str(plain)


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


def is_secret_key(key: str, patterns: Iterable[str] = DEFAULT_SECRET_PARAMS) -> bool:
    """Whether the last segment of ``key`` (after its last ``/`` or ``.``) matches a glob, in any case.

    Trailing separators are ignored, so ``"db/password/"`` is a secret too.

    Args:
        key: a param key, flat (``"db/password"``, ``"optimizer.token"``) or one level of a nested dict.
        patterns: globs such as ``"*token"``; :data:`DEFAULT_SECRET_PARAMS` unless the settings say otherwise.

    Returns:
        True when the value of ``key`` must not be recorded.

    Example:
        >>> is_secret_key("db/password"), is_secret_key("optimizer.HF_TOKEN"), is_secret_key("pad_token_id")
        (True, True, False)
    """
    segment = re.split(r"[/.]", key.rstrip("/."))[-1].lower()
    return any(fnmatchcase(segment, pattern.lower()) for pattern in patterns)


def mask_secret_params(params: _T, patterns: Iterable[str] = DEFAULT_SECRET_PARAMS) -> _T:
    """``params`` with the value of every secret key (:func:`is_secret_key`) replaced by ``"***"``.

    Walks plain nested data (dicts, lists, tuples, as :func:`to_plain` returns); a nested dict's keys
    are segments of their own. A secret key keeps its key, and its whole value (a dict or list too)
    becomes ``"***"``. ``params`` itself is not changed.

    Args:
        params: plain hyperparameters, nested or flat (``{"db/password": ...}``).
        patterns: globs matched against the last segment of each key, in any case.

    Returns:
        A copy of ``params`` of the same shape with secrets masked.

    Example:
        >>> mask_secret_params({"db": {"password": "hunter2", "host": "h"}, "api_key": {"a": 1}})
        {'db': {'password': '***', 'host': 'h'}, 'api_key': '***'}
    """
    globs = tuple(patterns)  # read once: an iterator would be used up by the first key

    def walk(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {
                key: MASK if isinstance(key, str) and is_secret_key(key, globs) else walk(child)
                for key, child in value.items()
            }
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, tuple):
            return tuple(walk(item) for item in value)
        return value

    return cast(_T, walk(params))


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

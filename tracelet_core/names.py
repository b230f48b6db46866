"""Keys and values made valid for one tracker: characters it refuses replaced, lengths capped, and
distinct keys kept distinct.

Backends call these with their own rules (MLflow: ``[/\\w.\\- :]``, 250 characters; W&B: 64-character
tags...). A sanitised key never shares its name with another key: a key cut to the limit ends with a
hash of the whole key (the same in every process), and a name already taken gets a number.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from tracelet_core.errors import warn_once

__all__ = ["TRUNCATION_MARKER", "KeySanitizer", "sanitize_key", "truncate"]

TRUNCATION_MARKER = "...[truncated by Tracelet: {total} chars]"
# Suffixes that keep sanitised keys distinct use only these, which every tracker here accepts.
_SUFFIX_CHARACTERS = "_-0123456789abcdef"
_HASH_LENGTH = 8
_MIN_KEY_LENGTH = 16


def sanitize_key(key: str, invalid: re.Pattern[str], replacement: str = "_", max_length: int | None = None) -> str:
    """Replace every character matched by ``invalid`` and shorten to ``max_length``.

    Shortening here is a plain cut: two long keys may become one. :class:`KeySanitizer` keeps them apart.

    Example:
        >>> sanitize_key("val acc@top1", re.compile(r"[^\\w./ -]"))
        'val acc_top1'
    """
    cleaned = invalid.sub(replacement, key) or replacement
    if max_length is not None and len(cleaned) > max_length:
        cleaned = cleaned[:max_length]
    return cleaned


class KeySanitizer:
    """Makes keys valid for one tracker, warns once per changed key, and never gives two keys one name.

    Invalid characters become ``_``. A key longer than ``max_length`` is cut and ends with ``-`` and
    8 hex digits of the SHA-1 of the whole key, so the same key gets the same name in every process
    and long keys with a common prefix stay apart. A name already given to another key gets ``_2``,
    ``_3``, ... (within ``max_length``): the first key keeps its series, the later one is told.

    Args:
        backend: name used in the warning.
        invalid: characters the tracker rejects; it must accept letters, digits, ``_`` and ``-``.
        max_length: longest key the tracker accepts (at least 16).
        warn: called with (warning key, message) the first time a key is changed.

    Raises:
        ValueError: ``invalid`` rejects a character of the suffixes, or ``max_length`` is below 16.

    Example:
        >>> s = KeySanitizer("demo", re.compile(r"[^\\w-]"), max_length=16, warn=lambda k, m: None)
        >>> s("a b"), s("a?b"), s("a b")
        ('a_b', 'a_b_2', 'a_b')
        >>> s("x@1"), s("x_1")
        ('x_1', 'x_1_2')
        >>> s("a_very_long_key_name"), s("a_very_long_key_name_2")
        ('a_very_-f4b728c1', 'a_very_-89b689e6')
    """

    def __init__(
        self,
        backend: str,
        invalid: re.Pattern[str],
        max_length: int | None = None,
        warn: Callable[[str, str], object] | None = None,
    ) -> None:
        if invalid.search(_SUFFIX_CHARACTERS):
            raise ValueError(
                f"KeySanitizer for {backend}: the pattern {invalid.pattern!r} rejects one of {_SUFFIX_CHARACTERS!r}, "
                "which keep sanitised keys distinct; let it accept letters, digits, '_' and '-'."
            )
        if max_length is not None and max_length < _MIN_KEY_LENGTH:
            raise ValueError(
                f"KeySanitizer for {backend}: max_length={max_length} leaves no room for a distinguishing "
                f"suffix; it must be at least {_MIN_KEY_LENGTH}."
            )
        self._backend = backend
        self._invalid = invalid
        self._max_length = max_length
        self._warn = warn or warn_once
        self._names: dict[str, str] = {}  # original key -> name
        self._owners: dict[str, str] = {}  # name -> original key

    def __call__(self, key: str) -> str:
        known = self._names.get(key)
        if known is not None:
            return known
        name = sanitize_key(key, self._invalid)
        reasons: list[str] = []
        if name != key:
            reasons.append("it has characters the tracker rejects" if key else "it is empty")
        if self._max_length is not None and len(name) > self._max_length:
            digest = hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LENGTH]
            name = f"{name[: self._max_length - _HASH_LENGTH - 1]}-{digest}"
            reasons.append(f"it is longer than {self._max_length} characters")
        owner = self._owners.get(name)
        if owner is not None:
            reasons.append(f"{name!r} already records the key {owner!r}")
            name = self._numbered(name)
        if reasons:
            self._warn(
                f"key:{self._backend}:{key}",
                f"{self._backend} cannot record the key {key!r} as is ({'; '.join(reasons)}); "
                f"it is recorded as {name!r}.",
            )
        self._names[key] = name
        self._owners[name] = key
        return name

    def _numbered(self, name: str) -> str:
        """The first of ``name_2``, ``name_3``, ... (cut to fit ``max_length``) that no key has."""
        n = 2
        while True:
            suffix = f"_{n}"
            base = name if self._max_length is None else name[: self._max_length - len(suffix)]
            if base + suffix not in self._owners:
                return base + suffix
            n += 1


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

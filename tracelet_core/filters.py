"""A small filter language for runs: ``status=FINISHED tag.team=vision param.lr>0.01 since=2d``.

One condition per word; every condition must hold. A condition is ``FIELD OP VALUE``:

- fields: ``status``, ``name``, ``experiment``, ``id``, ``tag.KEY``, ``param.KEY``, ``metric.KEY`` (its
  last value), ``since`` and ``until`` (when the run started; a duration back from now, ``30m``,
  ``2d``, ``1w``, or an ISO date/time, ``2026-01-31``, ``2026-01-31T12:00``);
- operators: ``=``, ``!=``, ``>``, ``>=``, ``<``, ``<=``, ``~`` (contains, ignoring case);
- values compare as numbers when both sides read as numbers (``param.lr>0.01``), else as text;
  ``status`` ignores case. A run without the tag, param or metric matches only ``!=``.

Quote a value with spaces the way a shell does (``'name=my run'``). A mistake raises
:class:`FilterError`, whose message points at the bad word. This module imports nothing of the
command line: the server and dashboard use the same language.

Example:
    >>> wanted = parse_filter("status=finished param.lr>0.01 tag.team~vis")
    >>> run = RunFacts(status="FINISHED", params={"lr": "0.1"}, tags={"team": "vision"})
    >>> wanted.matches(run), wanted.matches(RunFacts(status="FAILED", params={"lr": "0.1"}))
    (True, False)
    >>> wanted.needs_contents
    True
"""

from __future__ import annotations

import difflib
import math
import operator
import re
import shlex
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tracelet_core.errors import ConfigurationError

__all__ = ["Condition", "Filter", "FilterError", "RunFacts", "parse_duration", "parse_filter", "parse_time"]

PLAIN_FIELDS = ("status", "name", "experiment", "id", "since", "until")
PREFIXES = ("tag.", "param.", "metric.")
_CONDITION = re.compile(r"^(?P<field>[^=!<>~\s]+)(?P<op>!=|>=|<=|=|>|<|~)(?P<value>.*)$", re.DOTALL)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class FilterError(ConfigurationError):
    """A filter that cannot be read; the message quotes the filter and marks the bad word.

    Attributes:
        text: the whole filter; start, end: where the bad word is in it.
    """

    def __init__(self, reason: str, text: str, start: int, end: int) -> None:
        self.reason, self.text, self.start, self.end = reason, text, start, end
        marker = " " * start + "^" * max(1, end - start)
        super().__init__(f"bad filter: {reason}\n  {text}\n  {marker}")


@dataclass(frozen=True)
class RunFacts:
    """What a filter can look at in one run (each caller fills it from its own store).

    Attributes:
        status, name, experiment, run_id: the run's own.
        created: when it started (seconds since the epoch).
        tags, params: text values by key; metrics: each metric's last value.
    """

    status: str = ""
    name: str | None = None
    experiment: str = ""
    run_id: str = ""
    created: float | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Condition:
    """One ``FIELD OP VALUE`` word of a filter (``since``/``until`` hold their time as a number)."""

    field: str
    op: str
    value: str

    def matches(self, run: RunFacts) -> bool:
        """Whether ``run`` meets this condition."""
        if self.field in ("since", "until"):
            if run.created is None:
                return False
            bound = float(self.value)
            return run.created >= bound if self.field == "since" else run.created <= bound
        actual = _lookup(run, self.field)
        if actual is None:
            return self.op == "!="
        if self.op == "~":
            return self.value.lower() in actual.lower()
        if self.field == "status":
            return _COMPARE[self.op](actual.upper(), self.value.upper())
        left, right = _number(actual), _number(self.value)
        if left is not None and right is not None:
            return _COMPARE[self.op](left, right)
        return _COMPARE[self.op](actual, self.value)


@dataclass(frozen=True)
class Filter:
    """Conditions that must all hold; an empty filter matches every run."""

    conditions: tuple[Condition, ...] = ()

    def matches(self, run: RunFacts) -> bool:
        """Whether ``run`` meets every condition."""
        return all(condition.matches(run) for condition in self.conditions)

    @property
    def needs_contents(self) -> bool:
        """Whether a condition looks at tags, params or metrics (which a store may read separately)."""
        return any(c.field.startswith(PREFIXES) for c in self.conditions)

    def __bool__(self) -> bool:
        return bool(self.conditions)


def parse_filter(words: str | Iterable[str], now: float | None = None) -> Filter:
    """Read a filter: one string (split as a shell does) or words already split.

    Args:
        words: ``"status=FINISHED param.lr>0.01"`` or ``["status=FINISHED", "param.lr>0.01"]``.
        now: the time durations count back from (default: now).

    Raises:
        FilterError: a word is not ``FIELD OP VALUE``, names an unknown field, or has a bad time.

    Example:
        >>> parse_filter(["name~base", "metric.val/acc>=0.9"]).conditions[1]
        Condition(field='metric.val/acc', op='>=', value='0.9')
        >>> parse_filter("stauts=FINISHED")
        Traceback (most recent call last):
        ...
        tracelet_core.filters.FilterError: bad filter: unknown field 'stauts' (did you mean 'status'?); fields: ...
          stauts=FINISHED
          ^^^^^^
    """
    if isinstance(words, str):
        text = words
        try:
            split = shlex.split(words)
        except ValueError as exc:
            raise FilterError(str(exc), text, 0, len(text)) from exc
    else:
        split = list(words)
        text = " ".join(shlex.quote(word) if " " in word else word for word in split)
    now = time.time() if now is None else now
    conditions = []
    position = 0
    for word in split:
        shown = shlex.quote(word) if " " in word else word
        start = max(text.find(shown, position), 0)
        position = start + len(shown)
        conditions.append(_condition(word, text, start, now))
    return Filter(tuple(conditions))


def _condition(word: str, text: str, start: int, now: float) -> Condition:
    end = start + len(word)
    found = _CONDITION.match(word)
    if found is None:
        why = f"{word!r} is not FIELD OP VALUE (operators: = != > >= < <= ~), e.g. status=FINISHED"
        raise FilterError(why, text, start, end)
    name, op, value = found["field"], found["op"], found["value"]
    field_end = start + len(name)
    if name.startswith(PREFIXES):
        if name.endswith("."):
            raise FilterError(f"{name!r} needs a key, e.g. {name}lr", text, start, field_end)
    elif name.lower() in PLAIN_FIELDS:
        name = name.lower()
    else:
        raise FilterError(_unknown_field(name), text, start, field_end)
    if not value:
        raise FilterError(f"{name}{op} needs a value", text, start, end)
    if name in ("since", "until"):
        if op != "=":
            raise FilterError(f"{name} takes '=' (e.g. {name}=2d)", text, field_end, field_end + len(op))
        try:
            value = repr(parse_time(value, now))
        except ValueError as exc:
            raise FilterError(str(exc), text, field_end + len(op), end) from exc
    return Condition(name, op, value)


def _unknown_field(name: str) -> str:
    known = [*PLAIN_FIELDS, *(prefix + "KEY" for prefix in PREFIXES)]
    close = difflib.get_close_matches(name.lower(), [*PLAIN_FIELDS, "tag", "param", "metric"], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown field {name!r}{hint}; fields: {', '.join(known)}"


def parse_duration(text: str) -> float:
    """Seconds in ``30s``, ``15m``, ``3h``, ``2d``, ``1w``.

    Raises:
        ValueError: not a number followed by one of s, m, h, d, w.

    Example:
        >>> parse_duration("2d"), parse_duration("90m"), parse_duration("1.5h")
        (172800.0, 5400.0, 5400.0)
    """
    found = _DURATION.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not a duration (e.g. 30m, 3h, 2d, 1w)")
    return float(found[1]) * _UNIT_SECONDS[found[2].lower()]


def parse_time(text: str, now: float | None = None) -> float:
    """A point in time: a duration back from ``now`` (``2d``) or an ISO date or date and time (local time).

    Raises:
        ValueError: neither a duration nor an ISO date.

    Example:
        >>> parse_time("1h", now=10_000.0)
        6400.0
    """
    now = time.time() if now is None else now
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (30m, 3h, 2d, 1w) nor an ISO date (2026-01-31)") from None


def _lookup(run: RunFacts, name: str) -> str | None:
    if name.startswith("tag."):
        return run.tags.get(name[4:])
    if name.startswith("param."):
        return run.params.get(name[6:])
    if name.startswith("metric."):
        value = run.metrics.get(name[7:])
        return None if value is None else repr(value)
    plain = {"status": run.status, "name": run.name, "experiment": run.experiment, "id": run.run_id}
    return plain[name]


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value

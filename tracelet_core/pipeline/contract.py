"""What a run's journal holds: the contract between the training process and the delivery process.

The training process writes a run's journal, the delivery process (and ``tracelet sync``, ``runs``,
``show``) reads it and writes back how far each tracker got. Both sides go through these types; no
module spells an event kind, a metadata key or a delivery state as a string of its own. The values
are the text in the journal's SQLite columns, unchanged since the first journal, so every journal
any Tracelet wrote still reads.

Example:
    >>> EventKind("metric") is EventKind.METRIC, f"{DeliveryState.GAVE_UP}", DeliveryState.GAVE_UP.stopped
    (True, 'gave_up', True)
    >>> RunMeta.from_rows([("status", '"FINISHED"'), ("created", '"not a time"'), ("unknown", "1")]).status
    'FINISHED'
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any

from tracelet_core.events import MediaKind, RunInfo

__all__ = [
    "BATCHED_KINDS",
    "SCHEMA_VERSION",
    "ArtifactPayload",
    "BackendDelivery",
    "DeliveryState",
    "EventKind",
    "EventRow",
    "JournalEvent",
    "MediaPayload",
    "RejectedEvent",
    "RunMeta",
    "SessionStart",
    "encode_meta",
    "event_kind",
    "metric_columns",
]

SCHEMA_VERSION = 1


class _Text(str, Enum):
    """A string enum that prints as its value on every supported Python (``StrEnum`` is 3.11+)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class EventKind(_Text):
    """What one row of the journal's ``events`` table records (its ``kind`` column).

    ``metric``: ``key``, the value in ``num`` (NaN and ±inf as text in ``text``), ``step``.
    ``param`` and ``tag``: ``key`` and ``text``. ``start``: a session starts; ``text`` is a
    :class:`SessionStart`. ``finish``: the session ends; ``text`` is its status. ``artifact``: ``key``
    is the file's name, ``text`` an :class:`ArtifactPayload`. ``media``: ``key``, ``step``, ``text`` a
    :class:`MediaPayload`.
    """

    METRIC = "metric"
    PARAM = "param"
    TAG = "tag"
    START = "start"
    FINISH = "finish"
    ARTIFACT = "artifact"
    MEDIA = "media"


# Delivered together, in one Batch per call; every other kind is a call of its own.
BATCHED_KINDS = frozenset({EventKind.METRIC, EventKind.PARAM, EventKind.TAG})
_KINDS = {kind.value: kind for kind in EventKind}


def event_kind(text: str) -> EventKind | str:
    """The kind a row's ``kind`` column names; a kind this version does not know stays its text
    (delivery skips it, readers leave it out), so a journal from a newer Tracelet still reads."""
    return _KINDS.get(text, text)


class DeliveryState(_Text):
    """How far one backend has got with a run (the ``state`` column of the journal's ``deliveries``)."""

    PENDING = "pending"  # not opened yet
    OPEN = "open"
    RETRYING = "retrying"  # the tracker cannot be reached, or the journal cannot be read, for now
    CLOSED = "closed"  # the run's end is delivered
    GAVE_UP = "gave_up"  # stopped retrying; the rest waits in the journal
    UNAVAILABLE = "unavailable"  # the tracker's SDK is missing
    MISCONFIGURED = "misconfigured"  # the tracker refuses the configuration

    @property
    def stopped(self) -> bool:
        """The backend's worker has stopped for good (until ``tracelet sync`` tries again)."""
        return self in _STOPPED


_STOPPED = frozenset({DeliveryState.UNAVAILABLE, DeliveryState.MISCONFIGURED, DeliveryState.GAVE_UP})


# -- events ---------------------------------------------------------------------------------------


# One row for the ``events`` table, as the journal writer appends it (the journal numbers it):
# (kind, key, num, text, step, ts), the kind an EventKind or its value. A tuple: the writer makes one
# per metric value, off the training thread but under the same GIL; and it binds the kind's plain
# text, as SQLite binds a str subclass through its adapter lookup (~0.4 µs more a row).
EventRow = tuple[str, str | None, float | None, str | None, int | None, float]


def metric_columns(value: float) -> tuple[float | None, str | None]:
    """Split a float into the (num, text) columns: finite values in num, NaN/inf as text."""
    if math.isfinite(value):
        return value, None
    return None, repr(value)


@dataclass(frozen=True, slots=True)
class JournalEvent:
    """One journaled event; :class:`EventKind` says what each kind carries."""

    seq: int
    kind: EventKind | str
    key: str | None
    num: float | None
    text: str | None
    step: int | None
    ts: float

    @property
    def value(self) -> float:
        """The metric value; non-finite values are stored as text because SQLite turns NaN into NULL."""
        if self.num is not None:
            return self.num
        return float(self.text or "nan")

    def payload(self) -> Any:
        """The JSON payload of start, artifact and media events, as stored."""
        return json.loads(self.text or "null")


@dataclass(frozen=True)
class SessionStart:
    """The payload of a ``start`` event: what a backend needs to open (or re-open) the native run."""

    run_id: str
    experiment: str
    run_name: str | None
    tags: dict[str, str]
    start_time: float
    run_dir: str
    resumed: bool = False

    def to_json(self) -> str:
        """The event's ``text``."""
        return json.dumps(
            {
                "run_id": self.run_id,
                "experiment": self.experiment,
                "run_name": self.run_name,
                "tags": self.tags,
                "start_time": self.start_time,
                "run_dir": self.run_dir,
                "resumed": self.resumed,
            }
        )

    @classmethod
    def of(cls, event: JournalEvent) -> SessionStart:
        """Read a start event (its time stands in for a start time the payload lacks).

        Raises:
            KeyError, TypeError, ValueError: a damaged payload.
        """
        data = event.payload()
        return cls(
            run_id=data["run_id"],
            experiment=data["experiment"],
            run_name=data.get("run_name"),
            tags={str(k): str(v) for k, v in (data.get("tags") or {}).items()},
            start_time=float(data.get("start_time") or event.ts),
            run_dir=data["run_dir"],
            resumed=bool(data.get("resumed")),
        )

    def run_info(self) -> RunInfo:
        """What :meth:`~tracelet_core.trackers.base.Backend.open` receives."""
        return RunInfo(self.run_id, self.experiment, self.run_name, dict(self.tags), self.start_time, self.run_dir)


@dataclass(frozen=True)
class ArtifactPayload:
    """The payload of an ``artifact`` event (the name is the event's key): the file and its metadata."""

    path: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The event's ``text``."""
        return json.dumps({"path": self.path, "metadata": self.metadata}, default=str)

    @classmethod
    def of(cls, event: JournalEvent) -> ArtifactPayload:
        """Read an artifact event (raises KeyError, TypeError or ValueError for a damaged payload)."""
        data = event.payload()
        return cls(str(data["path"]), dict(data.get("metadata") or {}))


@dataclass(frozen=True)
class MediaPayload:
    """The payload of a ``media`` event, as :func:`tracelet_core.media.encode_media` makes it."""

    kind: MediaKind
    path: str | None
    data: dict[str, Any]

    @classmethod
    def of(cls, event: JournalEvent) -> MediaPayload:
        """Read a media event (raises KeyError, TypeError or ValueError for a damaged payload)."""
        data = event.payload()
        return cls(data["kind"], data.get("path"), dict(data["data"]))


# -- deliveries -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackendDelivery:
    """How far one backend has got with a run: one row of the journal's ``deliveries`` table."""

    backend: str
    acked_seq: int
    native_id: str | None
    location: str | None
    state: DeliveryState
    error: str | None
    failures: int


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    """An event one backend's tracker refused for good (a dead letter): its seq, kind, key and why."""

    backend: str
    seq: int
    kind: str
    key: str | None
    reason: str
    ts: float


# -- the run's metadata ---------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _count(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and math.isfinite(number) else None


def _names(value: Any) -> tuple[str, ...] | None:
    return tuple(str(item) for item in value) if isinstance(value, list) else None


def _mapping(value: Any) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, dict) else None


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _read_by(decode: Callable[[Any], Any]) -> dict[str, Any]:
    """A metadata field's ``metadata``: how a stored value is read (None: not understood, the default stands)."""
    return {"decode": decode}


@dataclass(frozen=True)
class RunMeta:
    """A run's metadata: the journal's ``meta`` table, one JSON value per field.

    A default is what a journal that lacks the key means (an older Tracelet did not write it); a
    stored value of the wrong type (a damaged record) reads as the default too.

    Attributes:
        run_id: Tracelet's id of the run (None in a damaged journal: its directory's name stands in).
        experiment: the experiment name.
        run_name: the run's display name.
        backends: every backend the run was ever sent to.
        backend_options: their options, without credentials (see :mod:`.credentials`).
        backend_paths: ``module:Class`` of backends registered by name in the training process.
        trainer_pid: the training process (the last session's).
        trainer_create_time: its start time, which tells it from a later process with the same pid.
        trainer_host: the host it runs on.
        give_up_after: seconds the delivery process retries without progress once the trainer is gone.
        max_retry_backoff: longest pause between two delivery attempts.
        keep_uploaded_files: keep the run's copy of an uploaded file (journals from before the setting keep it).
        status: RUNNING, FINISHED, FAILED or KILLED.
        created: when the run first started; ended: when its last session ended.
        dropped_events: invalid values dropped before the journal; lost_events: events it could not keep.
        schema_version: the journal's layout.
    """

    run_id: str | None = field(default=None, metadata=_read_by(_text))
    experiment: str | None = field(default=None, metadata=_read_by(_text))
    run_name: str | None = field(default=None, metadata=_read_by(_text))
    backends: tuple[str, ...] = field(default=(), metadata=_read_by(_names))
    backend_options: dict[str, dict[str, Any]] = field(default_factory=dict, metadata=_read_by(_mapping))
    backend_paths: dict[str, str] = field(default_factory=dict, metadata=_read_by(_mapping))
    trainer_pid: int | None = field(default=None, metadata=_read_by(_count))
    trainer_create_time: float | None = field(default=None, metadata=_read_by(_number))
    trainer_host: str | None = field(default=None, metadata=_read_by(_text))
    give_up_after: float = field(default=300.0, metadata=_read_by(_number))
    max_retry_backoff: float = field(default=30.0, metadata=_read_by(_number))
    # Journals from before the setting keep every file: nothing told their delivery to delete one.
    keep_uploaded_files: bool = field(default=True, metadata=_read_by(_flag))
    status: str = field(default="RUNNING", metadata=_read_by(_text))
    created: float | None = field(default=None, metadata=_read_by(_number))
    ended: float | None = field(default=None, metadata=_read_by(_number))
    dropped_events: int = field(default=0, metadata=_read_by(_count))
    lost_events: int = field(default=0, metadata=_read_by(_count))
    schema_version: int = field(default=SCHEMA_VERSION, metadata=_read_by(_count))

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str]]) -> RunMeta:
        """Read the ``(key, value)`` rows of a ``meta`` table; keys a newer Tracelet added are left out."""
        decoders = {f.name: f.metadata["decode"] for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, text in rows:
            decode = decoders.get(key)
            if decode is None:
                continue
            try:
                stored = json.loads(text)
            except json.JSONDecodeError:
                stored = text
            value = decode(stored)
            if value is not None:
                values[key] = value
        return cls(**values)

    def changes(self) -> dict[str, Any]:
        """Every field but the schema version (the journal's own), for :meth:`Journal.set_meta` of another journal."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "schema_version"}


_META_FIELDS = frozenset(f.name for f in fields(RunMeta))


def encode_meta(**changes: Any) -> list[tuple[str, str]]:
    """The ``(key, value)`` rows of a ``meta`` table that store ``changes`` to fields of :class:`RunMeta`.

    Raises:
        ValueError: a name is not a field of :class:`RunMeta`.

    Example:
        >>> encode_meta(backends=("mlflow",), ended=1.5)
        [('backends', '["mlflow"]'), ('ended', '1.5')]
    """
    unknown = sorted(set(changes) - _META_FIELDS)
    if unknown:
        raise ValueError(f"not run metadata: {', '.join(unknown)}; the fields are {', '.join(sorted(_META_FIELDS))}")
    return [(key, json.dumps(value)) for key, value in changes.items()]

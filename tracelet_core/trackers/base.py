"""The contract between Tracelet's delivery workers and one tracker.

A backend lives in the delivery process (or thread), never on the training thread. It receives
batches, not single calls, in the order they were logged:

``open(run, native_id) -> native id``, then any number of ``write(batch)``,
``log_artifact(artifact)`` and ``log_media(item)``, then ``close(status)``.

Any exception a backend raises is caught by its worker, logged to the run's delivery log and
classified by the backend (:meth:`Backend.classify_error`): a transient error is retried with
backoff, so a backend must make re-delivery of the same batch harmless (points carry their original
timestamp for that purpose); a permanent one sets the event aside (a dead letter) and delivery goes
on; a configuration error stops this backend's delivery and tells the user at once. A backend
whose SDK is missing raises :class:`~tracelet_core.errors.BackendUnavailableError` from
:meth:`Backend.check_available`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from importlib.util import find_spec
from pathlib import Path
from typing import Any, ClassVar

from tracelet_core.errors import (
    BackendUnavailableError,
    ErrorKind,
    PermanentDeliveryError,
    TrackerConfigurationError,
    warn_once,
)
from tracelet_core.events import ArtifactRef, Batch, MediaItem, RunInfo, RunStatus
from tracelet_core.names import KeySanitizer, truncate

__all__ = ["Backend", "Capabilities", "StagedFile", "classify_common_error"]

_NOTHING_INVALID = re.compile(r"(?!)")  # fit() only shortens keys: each tracker knows its own characters

# Errors that say the event itself is wrong (its type, its value, its encoding): sending it again
# cannot succeed. Raised by an SDK's own validation, or by a backend mapping an event.
_PERMANENT_TYPES: tuple[type[BaseException], ...] = (
    TypeError,
    ValueError,
    KeyError,
    IndexError,
    OverflowError,
    UnicodeError,
)


def classify_common_error(exc: BaseException) -> ErrorKind:
    """The kind of an error no backend-specific rule knows.

    Tracelet's own :class:`~tracelet_core.errors.PermanentDeliveryError` and
    :class:`~tracelet_core.errors.TrackerConfigurationError` say what they are; errors about the
    event's content (``TypeError``, ``ValueError``, ``UnicodeError``...) are permanent; anything else
    (connection, timeout, a locked store, an unknown SDK error) is transient and retried.

    Example:
        >>> classify_common_error(ConnectionError()).value, classify_common_error(TypeError()).value
        ('transient', 'permanent')
    """
    if isinstance(exc, TrackerConfigurationError):
        return ErrorKind.CONFIGURATION
    if isinstance(exc, PermanentDeliveryError):
        return ErrorKind.PERMANENT
    if isinstance(exc, FileNotFoundError | IsADirectoryError | NotADirectoryError) and exc.filename:
        return ErrorKind.PERMANENT  # a local file to upload that is not there (or not a file)
    if isinstance(exc, OSError | TimeoutError | ConnectionError):
        return ErrorKind.TRANSIENT
    if isinstance(exc, _PERMANENT_TYPES):
        return ErrorKind.PERMANENT
    return ErrorKind.TRANSIENT


@dataclass(frozen=True)
class Capabilities:
    """What a tracker stores natively, and its limits. Tracelet's delivery acts on them, so a backend
    (a third-party one included) never receives what it declares it cannot take: media of a kind not in
    ``media`` are stored as files by :meth:`Backend.log_media`'s default, files are not sent to a tracker
    without ``artifacts`` (with a note), and :meth:`Backend.fit` shortens keys and values to the limits.

    Attributes:
        media: media kinds stored natively (``"image"``, ``"histogram"``, ``"text"``).
        artifacts: whether files can be uploaded.
        epoch_axis: whether the tracker has an epoch axis of its own (else ``epoch`` is a metric).
        max_key_length: longest metric/param/tag key accepted, or None.
        max_param_length: longest param value accepted, or None.
        max_tag_length: longest tag value accepted, or None.
    """

    media: frozenset[str] = frozenset()
    artifacts: bool = True
    epoch_axis: bool = False
    max_key_length: int | None = None
    max_param_length: int | None = None
    max_tag_length: int | None = None


class Backend(ABC):
    """One tracker. Subclasses set ``name``, ``sdk_module``, ``extra`` and ``capabilities``.

    Args:
        options: this backend's options section of the settings (e.g. ``settings.mlflow``), as a dict.

    Example:
        >>> from tracelet_core.testing import InMemoryBackend
        >>> backend = InMemoryBackend({})
        >>> info = RunInfo("r1", "exp", None, {}, 0.0, "/tmp")
        >>> backend.open(info, None)
        'memory-r1'
        >>> backend.write(Batch(params={"lr": "0.1"}))
        >>> backend.close("FINISHED")
        >>> InMemoryBackend.runs["memory-r1"].status
        'FINISHED'
    """

    name: ClassVar[str] = ""
    _fitted_keys: KeySanitizer | None = None  # made at the first key over max_key_length
    sdk_module: ClassVar[str | None] = None
    extra: ClassVar[str | None] = None
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options: dict[str, Any] = dict(options or {})

    @classmethod
    def check_available(cls) -> None:
        """Raise :class:`BackendUnavailableError` naming the install command if the SDK is missing."""
        if cls.sdk_module and find_spec(cls.sdk_module) is None:
            extra = cls.extra or cls.name
            raise BackendUnavailableError(
                f"The {cls.name} backend needs the {cls.sdk_module!r} package, which is not installed. "
                f'Install it with: pip install "tracelet-lightning[{extra}]"'
            )

    @classmethod  # noqa: B027 - an optional hook: most trackers need nothing process-wide
    def prepare_delivery_process(cls, options: Mapping[str, Any]) -> None:
        """Process-wide SDK settings this tracker wants, made once in Tracelet's delivery process (which is
        Tracelet's own) before any run is opened: e.g. MLflow's request retries. Never called in the user's
        process (``TRACELET_DELIVERY=thread``), whose process-wide state Tracelet leaves alone.
        """

    @classmethod  # noqa: B027 - an optional hook
    def warm_up(cls, options: Mapping[str, Any]) -> None:
        """Get ready while training runs, in a delivery process started ahead of its run (see
        :mod:`tracelet_core.pipeline.standby`): import the store's modules, create a local store. ``options``
        are the tracker's options without credentials. Errors are ignored (the run's open meets them again).
        """

    @abstractmethod
    def open(self, run: RunInfo, native_id: str | None) -> str:
        """Create the native run, or re-open ``native_id`` when resuming; return the native id."""

    @abstractmethod
    def write(self, batch: Batch) -> None:
        """Record a batch of metrics, params and tags."""

    @abstractmethod
    def close(self, status: RunStatus) -> None:
        """Mark the native run as ended with ``status`` and release the SDK's resources.

        The run ends now, or at ``end_time`` of the :class:`RunInfo` it was opened with, where the tracker
        lets a client say (a run copied by ``tracelet migrate`` ended long ago).
        """

    def log_artifact(self, artifact: ArtifactRef) -> None:
        """Upload a file. The default says once that this tracker takes no files."""
        warn_once(
            f"no-artifacts:{self.name}",
            f"The {self.name} backend does not store files; {artifact.name!r} and later files are "
            "kept only in the local run directory.",
        )

    def log_media(self, item: MediaItem) -> None:
        """Record an image, histogram or text. The default stores it as an artifact and says so once."""
        warn_once(
            f"media-as-artifact:{self.name}:{item.kind}",
            f"The {self.name} backend has no native {item.kind} support; Tracelet stores them as files "
            f"under tracelet/media/.",
        )
        step = "none" if item.step is None else f"{item.step:09d}"
        stem = f"tracelet/media/{item.key}/{step}"
        if item.path is not None:
            self.log_artifact(ArtifactRef(item.path, stem + Path(item.path).suffix))
            return
        with StagedFile(json.dumps(item.data, default=str).encode(), Path(stem + ".json").name) as path:
            self.log_artifact(ArtifactRef(str(path), stem + ".json"))

    def deliver_batch(self, batch: Batch) -> None:
        """What delivery calls for a batch: :meth:`write` of the batch :meth:`fit` to this tracker's limits."""
        self.write(self.fit(batch))

    def deliver_artifact(self, artifact: ArtifactRef) -> None:
        """What delivery calls for a file: :meth:`log_artifact`, unless ``capabilities.artifacts`` is False
        (then the default's note that files stay local)."""
        if self.capabilities.artifacts:
            self.log_artifact(artifact)
        else:
            Backend.log_artifact(self, artifact)

    def deliver_media(self, item: MediaItem) -> None:
        """What delivery calls for media: :meth:`log_media` for the kinds in ``capabilities.media``, else the
        default, which stores them as files."""
        if item.kind in self.capabilities.media:
            self.log_media(item)
        else:
            Backend.log_media(self, item)

    def fit(self, batch: Batch) -> Batch:
        """The batch within this tracker's declared limits (:class:`Capabilities`), as delivery hands it over.

        Keys longer than ``max_key_length`` are shortened and end with a hash of the whole key (distinct
        keys stay distinct); param and tag values longer than ``max_param_length`` / ``max_tag_length`` are
        truncated with a marker (the whole value stays in ``tracelet/config.yaml``). One warning per key.

        Example:
            >>> from tracelet_core.testing import InMemoryBackend
            >>> class Short(InMemoryBackend):
            ...     capabilities = Capabilities(max_key_length=20, max_param_length=30)
            >>> fitted = Short().fit(Batch(params={"a" * 25: "x" * 40}))
            >>> [(len(k), len(v)) for k, v in fitted.params.items()]
            [(20, 30)]
        """
        caps = self.capabilities
        if caps.max_key_length is None and caps.max_param_length is None and caps.max_tag_length is None:
            return batch
        if caps.max_key_length is None:
            keys: Callable[[str], str] = str
        else:
            if self._fitted_keys is None:
                self._fitted_keys = KeySanitizer(self.name, _NOTHING_INVALID, caps.max_key_length)
            keys = self._fitted_keys
        metrics = [
            point if keys(point.key) == point.key else replace(point, key=keys(point.key)) for point in batch.metrics
        ]
        return Batch(
            metrics=metrics,
            params={keys(k): self._truncated(k, v, caps.max_param_length, "param") for k, v in batch.params.items()},
            tags={keys(k): self._truncated(k, v, caps.max_tag_length, "tag") for k, v in batch.tags.items()},
        )

    def _truncated(self, key: str, value: str, limit: int | None, what: str) -> str:
        if limit is not None and len(value) > limit:
            warn_once(
                f"limit:{self.name}:{what}:{key}",
                f"{self.name} keeps at most {limit} characters of a {what} value; {key!r} ({len(value)} characters) "
                "is truncated there (the whole value is in tracelet/config.yaml).",
            )
        return truncate(value, limit)

    def location(self) -> str | None:
        """Where the run can be found (a URI, path or URL, never with credentials), for the summary a
        user reads. None if unknown."""
        return None

    def classify_error(self, exc: BaseException, during: str) -> ErrorKind:
        """What a failed call means: retry it, set its event aside, or stop and tell the user.

        Backends override this to map their SDK's errors (HTTP status, error codes) and fall back on
        :func:`classify_common_error`. A PERMANENT error while opening the run (``during == "start"``)
        is treated as CONFIGURATION by the worker: without a run nothing else can be written.

        Args:
            exc: the exception the call raised.
            during: the event kind being delivered: ``start``, ``batch``, ``artifact``, ``media``, ``finish``.
        """
        return classify_common_error(exc)


class StagedFile:
    """A temporary file named ``filename`` holding ``content`` (bytes) or a copy of the file ``content``.

    Trackers name uploaded files after the local file, so renaming an artifact means copying it.

    Example:
        >>> with StagedFile(b"x", "a.txt") as p:
        ...     p.name, p.read_bytes()
        ('a.txt', b'x')
    """

    def __init__(self, content: bytes | str | os.PathLike[str], filename: str) -> None:
        self._content = content
        self._filename = filename
        self._dir: str | None = None

    def __enter__(self) -> Path:
        self._dir = tempfile.mkdtemp(prefix="tracelet-stage-")
        target = Path(self._dir) / self._filename
        if isinstance(self._content, bytes):
            target.write_bytes(self._content)
        else:
            shutil.copyfile(self._content, target)
        return target

    def __exit__(self, *exc: object) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

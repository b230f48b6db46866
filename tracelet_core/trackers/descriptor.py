"""``Tracker``: everything Tracelet knows about one tracker, in one place.

A tracker is a store runs can be sent to (its *backend*), read back from (its *reader*, for ``tracelet
sync``, ``migrate`` and ``compare``), configured (its *options*, the ``TRACELET_<NAME>__<OPTION>``
section) and checked (its *doctor* check). The built-in trackers each live in one folder,
``tracelet_core/trackers/<name>/``, whose ``__init__`` holds their descriptor; a third-party tracker
declares one in the ``tracelet.trackers`` entry-point group and gets every feature the same way.

Code is named by import path (``"module:attribute"``) and loaded when first needed, so that
``import tracelet_core`` imports no tracker SDK.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from tracelet_core.errors import ConfigurationError

if TYPE_CHECKING:
    from tracelet_core.trackers.base import Backend
    from tracelet_core.trackers.store import StoreReader

__all__ = ["Tracker", "load_object"]


def load_object(path: str) -> Any:
    """The object an import path ``package.module:attribute.sub`` names.

    Raises:
        ConfigurationError: the module or the attribute cannot be loaded.

    Example:
        >>> load_object("tracelet_core.trackers.descriptor:Tracker").__name__
        'Tracker'
    """
    module_name, _, attribute = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in filter(None, attribute.split(".")):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"Cannot load {path!r}: {exc}") from exc
    return obj


@dataclass(frozen=True)
class Tracker:
    """A tracker's descriptor.

    Attributes:
        name: what users put in ``backends=[...]`` and ``TRACELET_BACKENDS``.
        backend: import path of its :class:`~tracelet_core.trackers.base.Backend` (None: read-only store).
        reader: import path of its :class:`~tracelet_core.trackers.store.StoreReader` (None: write-only).
        kinds: the store specs it answers to (``tracelet migrate --from KIND:LOCATION``); the first one
            is its reader's; default: its name.
        options: its settings section, a pydantic model (``TRACELET_<NAME>__<OPTION>``).
        doctor: import path of ``check(options: dict) -> Check`` for ``tracelet doctor``.
        destination: import path of ``destination(kind, location, options) -> (options, reader spec, env)``
            for ``tracelet migrate --to``; default: the location is ignored, read back with its reader.
        sdk: the import name of its SDK (checked before use: a missing SDK names ``pip install``).
        distribution: the PyPI distribution of the SDK, for its version (default: ``sdk``).
        min_version: the oldest SDK version it works with.
        extra: the ``tracelet-lightning[<extra>]`` that installs the SDK.
        sdk_variables: each option's counterpart among the SDK's own environment variables
            (``{"tracking_uri": "MLFLOW_TRACKING_URI"}``), which apply when the option is unset.
        description: one line for ``tracelet doctor`` and the docs.

    Example:
        >>> from tracelet_core.trackers import get_tracker
        >>> mlflow = get_tracker("mlflow")
        >>> mlflow.kinds, mlflow.sdk_variables["tracking_uri"]
        (('mlflow',), 'MLFLOW_TRACKING_URI')
    """

    name: str
    backend: str | None = None
    reader: str | None = None
    kinds: tuple[str, ...] = ()
    options: type[BaseModel] | None = None
    doctor: str | None = None
    destination: str | None = None
    sdk: str | None = None
    distribution: str | None = None
    min_version: str | None = None
    extra: str | None = None
    sdk_variables: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if not self.kinds:
            object.__setattr__(self, "kinds", (self.name,))

    @property
    def reader_kind(self) -> str | None:
        """The spec kind its reader is opened with (``wandb-offline``), or None without a reader."""
        return self.kinds[0] if self.reader else None

    def backend_class(self) -> type[Backend]:
        """Import its backend class.

        Raises:
            ConfigurationError: it has none, or the path does not name a Backend subclass.
        """
        from tracelet_core.trackers.base import Backend

        if self.backend is None:
            raise ConfigurationError(f"{self.name!r} is a store Tracelet reads, not a tracker it sends runs to")
        cls = load_object(self.backend)
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            raise ConfigurationError(f"Backend {self.name!r} ({self.backend}) is not a tracelet_core Backend subclass")
        return cls

    def reader_class(self) -> type[StoreReader]:
        """Import its reader class.

        Raises:
            ConfigurationError: it has none.
        """
        if self.reader is None:
            raise ConfigurationError(f"Tracelet cannot read runs back from {self.name!r}")
        cls: type[StoreReader] = load_object(self.reader)
        return cls

"""The trackers: built-in ones (one folder each), those declared by entry points, and those registered here.

Each tracker is a :class:`~tracelet_core.trackers.descriptor.Tracker`: its backend (writer), reader,
settings section, ``doctor`` check and SDK facts. Where they come from, later winning:

* third-party packages, through the entry-point group ``tracelet.trackers`` (a ``Tracker`` object) or
  the older ``tracelet.backends`` (a Backend class: a tracker that only receives runs);
* the built-in ones: ``mlflow``, ``wandb``, ``clearml``, ``aim``, ``tracelet`` (Tracelet's own server),
  and the stores Tracelet only reads, ``journal`` and ``tensorboard``;
* :func:`register_tracker` / :func:`register_backend` in this process.

A backend may also be named by its import path (``package.module:Class``). The delivery process runs
in another interpreter, so a tracker registered in this process must live in an importable module
(not ``__main__``); the run records its path in the journal (:func:`registered_paths`).
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from tracelet_core.errors import ConfigurationError
from tracelet_core.trackers import aim, clearml, journal, mlflow, tensorboard, tracelet, wandb
from tracelet_core.trackers.descriptor import Tracker, load_object

if TYPE_CHECKING:
    from tracelet_core.trackers.base import Backend

__all__ = [
    "ENTRY_POINT_GROUPS",
    "Tracker",
    "all_trackers",
    "available_backend_names",
    "get_tracker",
    "is_import_path",
    "load_backend_class",
    "register_backend",
    "register_tracker",
    "registered_paths",
    "tracker_for_kind",
]

ENTRY_POINT_GROUPS = ("tracelet.trackers", "tracelet.backends")  # the second one from before trackers had readers
_BUILTIN = {t.name: t for t in (mlflow.TRACKER, wandb.TRACKER, clearml.TRACKER, aim.TRACKER, journal.TRACKER)}
_BUILTIN[tensorboard.TRACKER.name] = tensorboard.TRACKER
_BUILTIN[tracelet.TRACKER.name] = tracelet.TRACKER  # Tracelet's own server (tracelet_core/server)
_registered: dict[str, Tracker] = {}


def is_import_path(name: str) -> bool:
    """True for ``module:Class`` names, which load a backend class directly."""
    return ":" in name


def _from_entry_point(name: str, value: str) -> Tracker | None:
    """A tracker from an entry point's object: a Tracker, or a Backend class (a tracker that only receives)."""
    from tracelet_core.trackers.base import Backend

    try:
        obj = load_object(value)
    except ConfigurationError:
        # A broken plugin must not break Tracelet: named in backends=[...], it fails with this message.
        return Tracker(name=name, backend=value)
    if isinstance(obj, Tracker):
        return obj
    if isinstance(obj, type) and issubclass(obj, Backend):
        return Tracker(name=name, backend=value, sdk=obj.sdk_module, extra=obj.extra)
    return None


@lru_cache(maxsize=1)
def _entry_point_trackers() -> dict[str, Tracker]:
    found: dict[str, Tracker] = {}
    for group in reversed(ENTRY_POINT_GROUPS):  # the newer group wins
        for entry in entry_points(group=group):
            tracker = _from_entry_point(entry.name, entry.value)
            if tracker is not None:
                found[tracker.name] = tracker
    return found


def all_trackers() -> dict[str, Tracker]:
    """Every tracker known in this process, by name."""
    return {**_entry_point_trackers(), **_BUILTIN, **_registered}


def get_tracker(name: str) -> Tracker:
    """The tracker called ``name``.

    Raises:
        ConfigurationError: there is none; the message lists the names there are.
    """
    tracker = all_trackers().get(name)
    if tracker is None:
        raise ConfigurationError(f"Unknown backend {name!r}; allowed: {', '.join(sorted(available_backend_names()))}")
    return tracker


def tracker_for_kind(kind: str) -> Tracker | None:
    """The tracker whose store specs include ``kind`` (``wandb-offline`` → wandb), or None."""
    return next((t for t in all_trackers().values() if kind in t.kinds), None)


def available_backend_names() -> set[str]:
    """Every name that can be put in ``TRACELET_BACKENDS`` (trackers that receive runs)."""
    return {name for name, tracker in all_trackers().items() if tracker.backend is not None}


def register_tracker(tracker: Tracker) -> Tracker:
    """Make a tracker available in this process (and, through the run's journal, in its delivery process).

    Raises:
        ConfigurationError: its code lives in ``__main__``, which the delivery process cannot import.
    """
    for path in (tracker.backend, tracker.reader, tracker.doctor, tracker.destination):
        if path is not None and path.startswith("__main__:"):
            raise ConfigurationError(
                f"Tracker {tracker.name!r} is defined in __main__, which Tracelet's delivery process cannot import. "
                "Move it into a module, or declare it in the 'tracelet.trackers' entry-point group."
            )
    _registered[tracker.name] = tracker
    return tracker


def register_backend(name: str, backend: type[Backend] | str) -> None:
    """Make a backend available under ``name`` in this process: a tracker that only receives runs.

    Args:
        name: the name users put in ``backends=[...]``.
        backend: the class, or its ``module:Class`` import path.

    Raises:
        ConfigurationError: the class is defined in ``__main__``, which the delivery process cannot import.
    """
    path = backend if isinstance(backend, str) else f"{backend.__module__}:{backend.__qualname__}"
    register_tracker(Tracker(name=name, backend=path))


def registered_paths(names: list[str]) -> dict[str, str]:
    """Backend import paths of the names registered in this process with :func:`register_tracker`.

    The run records them in its journal, so that the delivery process, where the registration never
    ran, loads the same classes.
    """
    return {name: path for name in names if name in _registered and (path := _registered[name].backend)}


def load_backend_class(name: str) -> type[Backend]:
    """Import and return the backend class for ``name`` (a tracker's name or ``module:Class``).

    Raises:
        ConfigurationError: the name is unknown or does not point to a Backend subclass.
    """
    tracker = Tracker(name=name, backend=name) if is_import_path(name) else get_tracker(name)
    return tracker.backend_class()

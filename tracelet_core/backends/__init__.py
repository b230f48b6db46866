"""Backend registry: the built-in trackers, the ``tracelet.backends`` entry points, and import paths.

A backend is named by a short name (``mlflow``) or by an import path (``package.module:Class``).
The delivery process loads backends by name, so a backend registered with :func:`register_backend`
must live in an importable module (not ``__main__``).
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from tracelet_core.errors import ConfigurationError

if TYPE_CHECKING:
    from tracelet_core.backends.base import Backend

__all__ = [
    "available_backend_names",
    "is_import_path",
    "load_backend_class",
    "register_backend",
    "registered_paths",
]

_BUILTIN: dict[str, str] = {
    "mlflow": "tracelet_core.backends.mlflow:MlflowBackend",
    "wandb": "tracelet_core.backends.wandb:WandbBackend",
    "clearml": "tracelet_core.backends.clearml:ClearMLBackend",
    "aim": "tracelet_core.backends.aim:AimBackend",
}
_registered: dict[str, str] = {}


def is_import_path(name: str) -> bool:
    """True for ``module:Class`` names, which load a backend class directly."""
    return ":" in name


@lru_cache(maxsize=1)
def _entry_point_backends() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="tracelet.backends")}


def _all_backends() -> dict[str, str]:
    return {**_entry_point_backends(), **_BUILTIN, **_registered}


def available_backend_names() -> set[str]:
    """Every backend name that can be put in ``TRACELET_BACKENDS``."""
    return set(_all_backends())


def register_backend(name: str, backend: type[Backend] | str) -> None:
    """Make a backend available under ``name`` in this process.

    Args:
        name: the name users put in ``backends=[...]``.
        backend: the class, or its ``module:Class`` import path.

    Raises:
        ConfigurationError: the class is defined in ``__main__``, which the delivery process cannot import.
    """
    path = backend if isinstance(backend, str) else f"{backend.__module__}:{backend.__qualname__}"
    if path.startswith("__main__:"):
        raise ConfigurationError(
            f"Backend {name!r} is defined in __main__, which Tracelet's delivery process cannot import. "
            "Move it into a module, or register it through the 'tracelet.backends' entry point."
        )
    _registered[name] = path


def registered_paths(names: list[str]) -> dict[str, str]:
    """Import paths of the names registered in this process with :func:`register_backend`.

    The run records them in its journal, so that the delivery process, where the registration never
    ran, loads the same classes.
    """
    return {name: _registered[name] for name in names if name in _registered}


def load_backend_class(name: str) -> type[Backend]:
    """Import and return the backend class for ``name`` (a registered name or ``module:Class``).

    Raises:
        ConfigurationError: the name is unknown or does not point to a Backend subclass.
    """
    from tracelet_core.backends.base import Backend

    path = name if is_import_path(name) else _all_backends().get(name)
    if path is None:
        raise ConfigurationError(f"Unknown backend {name!r}; allowed: {', '.join(sorted(available_backend_names()))}")
    module_name, _, attr = path.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"Cannot load backend {name!r} from {path!r}: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, Backend)):
        raise ConfigurationError(f"Backend {name!r} ({path}) is not a tracelet_core Backend subclass")
    return obj

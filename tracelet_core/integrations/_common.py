"""What the integrations share: which run they record into, and the files they attach to it."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tracelet_core.api import get_active_run, start_logging
from tracelet_core.run import Run

__all__ = ["EndsRun", "RunSource", "importance_files", "require", "scratch_dir"]


class RunSource:
    """The run an integration records into: one given, else the active run, else a new one it owns.

    Only a run the integration started itself is finished by it; a run the user passed (or started
    with ``start_logging``) stays open for the user to finish.

    Args:
        run: a run to record into.
        start_options: arguments for :func:`tracelet_core.start_logging` when a new run is started.

    Example:
        >>> import tempfile
        >>> source = RunSource(None, dict(backends=[], journal_dir=tempfile.mkdtemp(), system_metrics=False,
        ...                               git=False, environment=False))
        >>> run = source.get()
        >>> source.owned, source.get() is run
        (True, True)
        >>> source.finish("FINISHED"); run.status
        'FINISHED'
    """

    def __init__(self, run: Run | None, start_options: Mapping[str, Any]) -> None:
        self._given = run
        self._options = dict(start_options)
        self.run: Run | None = None
        self.owned = False

    def get(self) -> Run:
        """The run to record into, starting one at the first call if none was given or active."""
        if self.run is None:
            active = get_active_run()
            if self._given is not None:
                self.run = self._given
            elif active is not None and active.active:
                self.run = active
            else:
                self.run, self.owned = start_logging(**self._options), True
        return self.run

    def finish(self, status: str) -> None:
        """End the run if this integration started it (``status``: FINISHED or FAILED)."""
        if self.run is not None and self.owned and self.run.active:
            self.run.finish("FAILED" if status == "FAILED" else "FINISHED")


def importance_files(
    importances: Mapping[str, Mapping[str, float]], directory: Path, title: str
) -> list[tuple[Path, str]]:
    """Write feature importances as ``feature_importance.json`` and one bar chart per kind.

    Args:
        importances: ``{kind: {feature: value}}`` (e.g. ``{"gain": {"f0": 1.5}}``).
        directory: where to write the files.
        title: the charts' title prefix.

    Returns:
        ``(path, artifact name)`` of each file written.
    """
    files = []
    data = directory / "feature_importance.json"
    data.write_text(json.dumps({k: dict(v) for k, v in importances.items()}, indent=1, sort_keys=True))
    files.append((data, "feature_importance/feature_importance.json"))
    for kind, values in importances.items():
        if not values:
            continue
        chart = directory / f"feature_importance_{kind}.png"
        _bar_chart(dict(values), f"{title}: feature importance ({kind})", chart)
        files.append((chart, f"feature_importance/{chart.name}"))
    return files


def _bar_chart(values: dict[str, float], title: str, path: Path, top: int = 30) -> None:
    # The object API, not pyplot: no global figure state and no GUI backend in the user's process.
    from matplotlib.figure import Figure

    ranked = sorted(values.items(), key=lambda item: item[1])[-top:]
    figure = Figure(figsize=(6, 0.25 * len(ranked) + 1.2))
    axes = figure.add_subplot()
    axes.barh([name for name, _ in ranked], [value for _, value in ranked])
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=80)


def scratch_dir(run: Run, prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A temporary directory inside the run's directory for files handed to ``log_artifact``.

    Same file system as the run's journal, so ``log_artifact`` hard-links at once and the directory
    can be removed right after (a file on another file system would be copied later, from its path).
    """
    return tempfile.TemporaryDirectory(prefix=f"{prefix}-", dir=run.run_dir)


def require(module: str, extra: str) -> Any:
    """Import ``module``, or raise an ImportError that names the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f'This integration needs {module}: pip install "tracelet-lightning[{extra}]"') from exc


class EndsRun:
    """What the integrations' callbacks share: used as ``with callback:``, the block's end ends the run
    (FAILED when the block raised), and the run is ended once whoever ends it first."""

    _source: RunSource
    _ended = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._end("FAILED" if exc_type is not None else "FINISHED")

    def _end(self, status: str) -> None:
        if self._ended:
            return
        self._ended = True
        self._before_end(status)
        self._source.finish(status)

    def _before_end(self, status: str) -> None:
        """What a callback records last (a model, importances) before the run ends with ``status``."""

"""The ``tracelet`` command (``tracelet --help``): doctor, runs, show, open, sync, migrate, compare,
import-tensorboard, rm, prune.

Built on Typer and Rich, which only this package imports: ``import tracelet_core`` never loads them.
Every subcommand prints tables for people and, with ``--json``, JSON for scripts; long work shows
progress bars on stderr, so stdout stays clean for ``--json``.
"""

from __future__ import annotations

from tracelet_core.cli import compare, doctor, manage, migrate, runs, server, show, sync
from tracelet_core.cli._app import app

__all__ = ["app", "main"]

_COMMANDS = (
    compare,
    doctor,
    manage,
    migrate,
    runs,
    server,
    show,
    sync,
)  # imported for the commands they register on `app`


def main() -> None:
    """Entry point of the ``tracelet`` console script."""
    app(prog_name="tracelet")

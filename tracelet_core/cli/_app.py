"""The ``tracelet`` Typer application and what its commands share: consoles, JSON, formats, errors."""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperArgument, TyperGroup, TyperOption

from tracelet_core.collectors.git import strip_credentials
from tracelet_core.errors import ConfigurationError, TraceletError

__all__ = [
    "JournalDirOption",
    "JsonOption",
    "app",
    "console_output",
    "emit_json",
    "err",
    "escape",
    "fail",
    "format_duration",
    "format_time",
    "format_value",
    "journal_dir",
    "out",
    "print_table",
    "progress_bars",
    "redact",
    "user_errors",
]

COMMAND_ORDER = (
    "doctor",
    "runs",
    "show",
    "open",
    "sync",
    "migrate",
    "compare",
    "import-tensorboard",
    "rm",
    "prune",
    "server",
)


class _Argument(TyperArgument):
    """An argument shown as ``RUN`` / ``[RUN]`` in the usage line (Typer writes ``{run}``)."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        return (name if self.required else f"[{name}]") + ("..." if self.nargs != 1 else "")

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def _plain_help(params: list[Any]) -> None:
    """Show parameters as a usual command line does: ``--json``, ``--limit INTEGER``, ``RUN``.

    Typer 0.2x labels every value with its Python type (``--json <bool>``, ``--to <list[str]>``) and
    names arguments ``{run}``; a metavar of our own overrides both.
    """
    for param in params:
        if isinstance(param, TyperArgument):
            param.__class__ = _Argument
            if param.metavar is None:
                param.metavar = (param.name or "value").upper()
        elif isinstance(param, TyperOption) and param.metavar is None:
            if param.is_flag or param.count:
                param.metavar = ""
            else:
                param.metavar = _value_metavar(param)


_TYPE_METAVAR = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT"}


def _value_metavar(option: TyperOption) -> str:
    """``TEXT``, ``INTEGER``, ``FLOAT``, ``PATH``, or the choices ``[a|b]``."""
    described = option.type_descriptor
    if described.is_choice:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in described.choices or ()) + "]"
    if described.is_path:
        return "PATH"
    bare = option.bare_type().removeprefix("list[").removesuffix("]")
    return _TYPE_METAVAR.get(bare, bare.upper())


class _Commands(TyperGroup):
    """Lists the commands in the order a user meets them, not alphabetically, with plain help (see _plain_help)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():  # also what reads the commands without a context (the docs)
            _plain_help(command.params)

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda name: COMMAND_ORDER.index(name) if name in COMMAND_ORDER else len(names))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _plain_help([*command.params, command.get_help_option(ctx)])
        return command

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        _plain_help(params)
        return params


app = typer.Typer(
    name="tracelet",
    cls=_Commands,
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from tracelet_core import __version__

        typer.echo(f"tracelet {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Tracelet's command line: check the setup, list and inspect local runs, deliver what the trackers missed,
    copy runs between trackers, and compare runs with statistics. Shell completion: --install-completion."""


# Messages are not broken at 80 columns when piped (soft wrap); tables are laid out by print_table.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of tables.")]
JournalDirOption = Annotated[
    Path | None,
    typer.Option(
        "--journal-dir",
        help="Where the journals are (default: TRACELET_JOURNAL_DIR or ./.tracelet).",
        show_default=False,
    ),
]


PIPED_WIDTH = 200


def print_table(table: Table) -> None:
    """Print a table on stdout: fitted to a terminal, unwrapped (up to 200 columns) when piped or redirected."""
    # Rich caps a print at the console's width (80 when not a terminal), so piped output needs its own console.
    console = out if out.is_terminal else Console(highlight=False, width=max(out.width, PIPED_WIDTH))
    console.print(table)


def progress_bars(disable: bool, *extra: ProgressColumn) -> Progress:
    """Progress bars on stderr (stdout stays clean for ``--json``): label, bar, done/total, elapsed, ``extra``."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), *extra)
    return Progress(*columns, console=err, disable=disable)


def redact(text: str | None) -> str | None:
    """``text`` without the credentials of any URL in it: what the CLI prints of a location or an error.

    A backend's location or error in an older journal, or an SDK's message, may hold ``user:password@``.

    Example:
        >>> redact("cannot reach http://alice:s3cret@10.0.0.5:5000/api"), redact(None)
        ('cannot reach http://10.0.0.5:5000/api', None)
    """
    return None if text is None else strip_credentials(text)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` (credentials removed) as an error and leave with ``code``."""
    err.print(f"[bold red]error:[/] {escape(strip_credentials(message))}")
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn Tracelet's errors into a one-line message: exit 2 for bad configuration, 1 otherwise."""
    try:
        yield
    except ConfigurationError as exc:
        fail(str(exc), 2)
    except TraceletError as exc:
        fail(str(exc), 1)


# Loggers whose INFO lines (MLflow's "Creating initial MLflow database tables...", alembic's migrations,
# Tracelet's end-of-run summary, which the command's own table repeats) would break a progress bar:
# raised to WARNING while a command draws one. MLflow sets its "mlflow" logger's level when it is
# imported, so its store's logger is named as well.
_CHATTY_LOGGERS = ("tracelet", "mlflow", "mlflow.store", "alembic", "wandb", "aim", "clearml", "urllib3")


@contextmanager
def console_output(console: Console) -> Iterator[None]:
    """Warnings and log records printed through ``console``, so they go above a progress bar instead of
    through it: a warning as ``warning: MESSAGE`` (not Tracelet's source file and line, which tell a user
    nothing), SDKs' INFO chatter silenced.
    """
    from rich.logging import RichHandler

    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        console.print(f"[yellow]warning:[/] {escape(str(message))}")

    previous_show = warnings.showwarning
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    saved = [(logger.level, logger.handlers[:]) for logger in loggers]
    handler = RichHandler(console=console, show_time=False, show_path=False, level=logging.WARNING)
    root = logging.getLogger()
    warnings.showwarning = show
    for logger in loggers:
        logger.setLevel(logging.WARNING)
        # A handler of its own (Tracelet's default one, MLflow's) writes to stderr past the console.
        logger.handlers = [handler] if logger.handlers else []
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for logger, (level, handlers) in zip(loggers, saved, strict=True):
            logger.setLevel(level)
            logger.handlers = handlers
        warnings.showwarning = previous_show


def journal_dir(given: Path | None) -> Path:
    """The journal directory: the option, else the settings (``TRACELET_JOURNAL_DIR``, ``.env``, default)."""
    if given is not None:
        return given
    from tracelet_core.settings import load_settings

    return Path(load_settings().journal_dir)


def _plain(value: Any) -> Any:
    """JSON has no NaN or infinity: those become the strings "nan", "inf", "-inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def emit_json(payload: Any) -> None:
    """Print ``payload`` as JSON on stdout (strict JSON: no NaN)."""
    typer.echo(json.dumps(_plain(payload), indent=2, default=str, allow_nan=False))


def format_time(timestamp: float | None) -> str:
    """Local time ``YYYY-MM-DD HH:MM:SS``, or ``-``."""
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def format_duration(seconds: float | None) -> str:
    """``4s``, ``3m05s``, ``2h07m``, ``3d04h``.

    Example:
        >>> format_duration(4.2), format_duration(185), format_duration(7620), format_duration(None)
        ('4s', '3m05s', '2h07m', '-')
    """
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def format_value(value: float | None) -> str:
    """A metric value in at most 6 significant digits (``-`` for none).

    Example:
        >>> format_value(0.123456789), format_value(1234567.0), format_value(float("nan"))
        ('0.123457', '1.23457e+06', 'nan')
    """
    return "-" if value is None else f"{value:.6g}"

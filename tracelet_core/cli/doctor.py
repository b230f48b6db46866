"""``tracelet doctor``: is this setup going to work, and if not, what to change."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from tracelet_core.cli._app import JournalDirOption, JsonOption, app, emit_json, escape, out, print_table, user_errors
from tracelet_core.cli.checks import Check, check_backend, check_git, check_gpu, check_journal
from tracelet_core.cli.sources import SettingRow, setting_rows

__all__ = ["doctor"]

_MARKS = {"ok": "[green]ok[/]", "info": "[dim]info[/]", "warn": "[yellow]warn[/]", "error": "[bold red]FAIL[/]"}


@app.command(
    short_help="Check the settings, each backend's store, the GPU and git.",
    epilog="Example: [bold]tracelet doctor[/]  ·  [bold]TRACELET_BACKENDS=mlflow,aim tracelet doctor --json[/]",
)
def doctor(
    backends: Annotated[
        str | None,
        typer.Option("--backends", "-b", help="Check these backends (comma list) instead of the configured."),
    ] = None,
    experiment: Annotated[str | None, typer.Option(help="Experiment name, as a run would be given it.")] = None,
    journal_dir: JournalDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the resolved settings and where each came from, and check each backend, the GPU, git and the journal.

    Exits 1 when a configured backend cannot work (the message says how to fix it), 2 when a setting is invalid.
    """
    from tracelet_core.settings import load_settings

    given = {"backends": backends, "experiment": experiment, "journal_dir": journal_dir}
    with user_errors():
        settings = load_settings(backends=backends, experiment=experiment, journal_dir=journal_dir)
    rows = setting_rows(settings, {name for name, value in given.items() if value is not None})
    names = settings.resolved_backends()
    checks = [check_backend(name, settings) for name in names]
    if not names:
        checks.append(
            Check(
                "backends",
                "warn",
                "none configured or installed: runs stay in the journal",
                'Install one, e.g. pip install "tracelet-lightning[mlflow]", or set TRACELET_BACKENDS.',
            )
        )
    system = [check_journal(settings.journal_dir), check_gpu(), check_git()]
    failed = [check for check in checks + system if check.level == "error"]
    if as_json:
        emit_json(
            {
                "ok": not failed,
                "settings": [asdict(row) for row in rows],
                "backends": [asdict(check) for check in checks],
                "system": [asdict(check) for check in system],
            }
        )
    else:
        _print(rows, checks, system, failed)
    if failed:
        raise typer.Exit(1)


def _print(rows: list[SettingRow], checks: list[Check], system: list[Check], failed: list[Check]) -> None:
    settings_table = Table(title="Settings", title_justify="left", show_edge=False)
    for column in ("setting", "value", "from"):
        settings_table.add_column(column, overflow="fold")
    for row in rows:
        style = "dim" if row.source == "default" else ""
        settings_table.add_row(row.name, escape(row.value), row.source, style=style)
    print_table(settings_table)
    for title, group in (("Backends", checks), ("System", system)):
        table = Table(title=title, title_justify="left", show_edge=False)
        for column in ("", "name", "version", "status"):
            table.add_column(column, overflow="fold")
        for check in group:
            version = str(check.details.get("version") or "")
            table.add_row(_MARKS[check.level], check.name, version, escape(check.summary))
        out.print()
        print_table(table)
    fixes = [check for check in checks + system if check.fix and check.level in ("error", "warn")]
    if fixes:
        out.print()
    for check in fixes:
        label = "[bold red]✗[/]" if check.level == "error" else "[yellow]![/]"
        out.print(f"{label} [bold]{check.name}[/]: {escape(check.summary)}.\n  fix: {escape(check.fix or '')}")
    if failed:
        out.print(f"\n[bold red]{len(failed)} problem(s) found.[/]")
    else:
        out.print("\n[green]Everything configured can work.[/]")

"""Sphinx directives that render reference tables from the code itself, so the docs cannot drift from it.

* ``tracelet-settings``: every field of :class:`tracelet_core.TraceletSettings` (and of its backend
  sections) with its environment variable, type, default and description, from ``model_fields``.
* ``tracelet-cli COMMAND``: usage, description, arguments and options of one ``tracelet`` subcommand,
  from the Typer application's click command tree.
* ``tracelet-benchmarks``: the measured figures of ``benchmarks/README.md`` when it exists.
* ``tracelet-layout``: the packages' modules as a tree, each with the first line of its docstring.

At the end of reading, the build also checks that the API reference documents exactly the names in
``tracelet_core.__all__`` and ``tracelet_lightning.__all__``, and that every ``tracelet`` subcommand
has its section; anything missing or extra is a warning, so ``sphinx-build -W`` fails on it.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path
from types import UnionType
from typing import Any, Literal

from docutils import nodes
from docutils.statemachine import StringList
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "TRACELET_"
NESTED_DELIMITER = "__"
_BACKTICKS = re.compile(r"``?([^`]+)``?")
_CONSTRAINTS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}


# -- small node helpers ----------------------------------------------------------------------------


def _inline(text: str) -> list[nodes.Node]:
    """Text with ``code`` spans (single or double backticks) as literal nodes."""
    parts: list[nodes.Node] = []
    position = 0
    for match in _BACKTICKS.finditer(text):
        if match.start() > position:
            parts.append(nodes.Text(text[position : match.start()]))
        parts.append(nodes.literal(match.group(1), match.group(1)))
        position = match.end()
    if position < len(text):
        parts.append(nodes.Text(text[position:]))
    return parts


def _cell(*content: nodes.Node | str) -> nodes.entry:
    paragraph = nodes.paragraph()
    for item in content:
        paragraph += _inline(item) if isinstance(item, str) else item
    return nodes.entry("", paragraph)


def _table(headers: list[str], rows: list[list[nodes.entry]], widths: list[int], classes: list[str]) -> nodes.table:
    table = nodes.table(classes=classes)
    group = nodes.tgroup(cols=len(headers))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    head += nodes.row("", *(_cell(nodes.Text(h)) for h in headers))
    group += head
    body = nodes.tbody()
    for cells in rows:
        body += nodes.row("", *cells)
    group += body
    return table


# -- configuration reference -----------------------------------------------------------------------


def env_variable(*path: str) -> str:
    """The environment variable of a settings field: ``TRACELET_<SECTION>__<FIELD>``.

    Example:
        >>> env_variable("mlflow", "tracking_uri"), env_variable("backends")
        ('TRACELET_MLFLOW__TRACKING_URI', 'TRACELET_BACKENDS')
    """
    return ENV_PREFIX + NESTED_DELIMITER.join(part.upper() for part in path)


def describe_type(annotation: Any, metadata: list[Any] | None = None) -> str:
    """A type as a user writes it in an environment variable, with its constraints.

    Example:
        >>> describe_type(bool), describe_type(Literal["a", "b"]), describe_type(list[str] | None)
        ('bool', 'one of: ``a``, ``b``', 'comma list, or unset')
    """
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        annotation = args[0] if len(args) == 1 else annotation
        origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
        origin = typing.get_origin(annotation)
    if origin is Literal:
        text = "one of: " + ", ".join(f"``{value}``" for value in typing.get_args(annotation))
    elif origin is list:
        text = "comma list"
    elif origin is dict:
        text = "``k=v,k2=v2`` or JSON object"
    elif annotation is Path:
        text = "path"
    elif isinstance(annotation, type):
        text = annotation.__name__
    else:
        text = str(annotation)
    bounds = [
        f"{symbol} {getattr(item, name)}"
        for item in metadata or []
        for name, symbol in _CONSTRAINTS.items()
        if getattr(item, name, None) is not None
    ]
    if bounds:
        text += f" ({', '.join(bounds)})"
    return text + (", or unset" if optional else "")


def describe_default(field: FieldInfo) -> str:
    """The default of a field as text: ``unset`` for None, the empty value for factories.

    Example:
        >>> from pydantic import Field
        >>> describe_default(Field(None)), describe_default(Field(0.2)), describe_default(Field(default_factory=dict))
        ('unset', '``0.2``', 'empty')
    """
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        return "empty" if value in ({}, []) else f"``{value!r}``"
    if field.default is None or field.default is PydanticUndefined:
        return "unset"
    value = field.default
    if isinstance(value, bool):
        return f"``{str(value).lower()}``"
    return f"``{value}``"


def settings_rows(model: type[BaseModel], *prefix: str) -> list[tuple[str, str, str, str]]:
    """(variable, type, default, description) of every plain field of ``model``, in declaration order."""
    rows = []
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            continue
        if not field.description:
            logger.warning("settings field %s has no description", env_variable(*prefix, name), type="tracelet")
        rows.append(
            (
                env_variable(*prefix, name),
                describe_type(field.annotation, field.metadata),
                describe_default(field),
                field.description or "",
            )
        )
    return rows


def settings_sections(model: type[BaseModel]) -> list[tuple[str, type[BaseModel], str]]:
    """(name, options model, description) of every nested options section, then of every installed
    third-party tracker that declares options (``tracelet.trackers`` entry points)."""
    from tracelet_core.trackers import all_trackers

    sections = [
        (name, field.annotation, field.description or name)
        for name, field in model.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    ]
    built_in = {name for name, _, _ in sections}
    for name, tracker in sorted(all_trackers().items()):
        if tracker.options is not None and name not in built_in:
            sections.append((name, tracker.options, f"{tracker.description or name} (installed tracker)"))
    return sections


class SettingsDirective(SphinxDirective):
    """``tracelet-settings``: the configuration reference, generated from ``TraceletSettings``."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from tracelet_core.settings import TraceletSettings

        self.env.note_dependency(str(REPO_ROOT / "tracelet_core" / "settings.py"))
        headers = ["Variable", "Type", "Default", "Description"]
        widths = [30, 18, 12, 40]
        result: list[nodes.Node] = []
        result.append(_table(headers, self._rows(TraceletSettings), widths, ["tracelet-settings"]))
        for name, section, description in settings_sections(TraceletSettings):
            title = nodes.paragraph()
            title += nodes.strong(text=f"{description.rstrip('.')} ")
            title += nodes.Text("(")
            title += nodes.literal(text=env_variable(name, "*"))
            title += nodes.Text(f", or the keyword {name}=… of the settings)")
            result.append(title)
            result.append(_table(headers, self._rows(section, name), widths, ["tracelet-settings"]))
        return result

    @staticmethod
    def _rows(model: type[BaseModel], *prefix: str) -> list[list[nodes.entry]]:
        return [
            [_cell(nodes.literal(text=variable)), _cell(kind), _cell(default), _cell(description)]
            for variable, kind, default, description in settings_rows(model, *prefix)
        ]


# -- CLI reference ---------------------------------------------------------------------------------


def _plain(markup: str | None) -> str:
    """Rich markup (``[bold]x[/]``) as plain text."""
    if not markup:
        return ""
    from rich.text import Text

    return Text.from_markup(markup).plain


def cli_commands() -> dict[str, Any]:
    """The ``tracelet`` subcommands as click commands, by name."""
    import typer.main

    from tracelet_core.cli import app

    group = typer.main.get_command(app)
    return dict(group.commands)  # type: ignore[attr-defined]


class CliDirective(SphinxDirective):
    """``tracelet-cli COMMAND``: usage, help text and options of one subcommand, from the Typer app."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        import click

        name = self.arguments[0]
        commands = cli_commands()
        command = commands.get(name)
        if command is None:
            raise self.error(f"tracelet has no command {name!r}; it has: {', '.join(sorted(commands))}")
        self.env.note_dependency(str(REPO_ROOT / "tracelet_core" / "cli" / "_app.py"))
        documented: set[str] = self.env.tracelet_cli_documented  # type: ignore[attr-defined]
        documented.add(name)
        parent = click.Context(click.Command("tracelet"), info_name="tracelet")
        context = click.Context(command, info_name=name, parent=parent)
        usage = command.get_usage(context).removeprefix("Usage: ")
        result: list[nodes.Node] = [nodes.literal_block(usage, usage, language="text")]
        for paragraph in _plain(command.help).split("\n\n"):
            result.append(nodes.paragraph("", "", *_inline(" ".join(paragraph.split()))))
        rows = []
        for param in command.params:
            record = param.get_help_record(context)
            if record is None or "--help" in getattr(param, "opts", ()):
                continue
            rows.append([_cell(nodes.literal(text=_plain(record[0]))), _cell(_plain(record[1]))])
        if rows:
            result.append(_table(["Argument / option", "Meaning"], rows, [35, 65], ["tracelet-cli"]))
        epilog = _plain(command.epilog)
        if epilog:
            examples = [part.strip() for part in epilog.split("·")]
            label, _, first = examples[0].partition(":")
            text = "\n".join([first.strip(), *examples[1:]]) if first else "\n".join(examples)
            result.append(nodes.paragraph("", "", nodes.strong(text=(label if first else "Examples") + ":")))
            result.append(nodes.literal_block(text, text, language="text"))
        return result


# -- benchmark figures -----------------------------------------------------------------------------


BENCHMARKS_README = REPO_ROOT / "benchmarks" / "README.md"


class BenchmarksDirective(SphinxDirective):
    """``tracelet-benchmarks``: the figures of ``benchmarks/README.md`` (headings become bold lines)."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        self.env.note_dependency(str(BENCHMARKS_README))
        if not BENCHMARKS_README.is_file():
            note = nodes.note()
            note += nodes.paragraph(
                "",
                "",
                *_inline(
                    "This checkout has no measured figures yet (``benchmarks/README.md`` is missing): "
                    "run the commands below on your machine to get them."
                ),
            )
            return [note]
        lines = []
        for line in BENCHMARKS_README.read_text(encoding="utf-8").splitlines():
            heading = re.match(r"^(#+)\s+(.*)$", line)
            if heading:
                if len(heading.group(1)) == 1:
                    continue  # the README's own title: the page has its own
                line = f"**{heading.group(2).strip()}**"
            lines.append(line)
        container = nodes.container(classes=["tracelet-benchmarks"])
        self.state.nested_parse(StringList(lines, source=str(BENCHMARKS_README)), 0, container)
        return [container]


# -- consistency checks ----------------------------------------------------------------------------


def _init_env(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    if not hasattr(env, "tracelet_cli_documented"):
        env.tracelet_cli_documented = set()  # type: ignore[attr-defined]


def _purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    # Re-read documents add their commands again; a full rebuild starts from an empty set.
    if docname == app.config.tracelet_cli_page:
        env.tracelet_cli_documented = set()  # type: ignore[attr-defined]


def documented_api(env: BuildEnvironment, package: str) -> set[str]:
    """Top-level names of ``package`` that the Python domain holds an object description for."""
    objects = env.get_domain("py").objects  # type: ignore[attr-defined]
    prefix = package + "."
    return {name[len(prefix) :] for name in objects if name.startswith(prefix) and "." not in name[len(prefix) :]}


def _check(app: Sphinx, env: BuildEnvironment) -> None:
    import importlib

    for package in app.config.tracelet_api_packages:
        public = set(importlib.import_module(package).__all__)
        documented = documented_api(env, package)
        for name in sorted(public - documented):
            logger.warning("%s.%s is in __all__ but not in the API reference", package, name, type="tracelet")
        for name in sorted(documented - public):
            logger.warning("%s.%s is documented but not in __all__", package, name, type="tracelet")
    missing = set(cli_commands()) - env.tracelet_cli_documented  # type: ignore[attr-defined]
    for name in sorted(missing):
        logger.warning("`tracelet %s` has no section in the CLI reference", name, type="tracelet")


# -- the code's layout ----------------------------------------------------------------------------


def layout_lines(*packages: str) -> list[str]:
    """One line per module of ``packages``, indented by depth: its file name and its docstring's first line."""
    import ast

    lines = []
    for package in packages:
        root = REPO_ROOT / package
        for path in sorted(
            root.rglob("*.py"), key=lambda p: (p.parent.relative_to(root).parts, p.name != "__init__.py", p.name)
        ):
            relative = path.relative_to(REPO_ROOT)
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            summary = doc.strip().splitlines()[0] if doc.strip() else ""
            depth = len(relative.parts) - 1
            name = f"{relative.parent.name}/" if path.name == "__init__.py" else path.name
            depth -= 1 if path.name == "__init__.py" else 0
            lines.append(f"{'    ' * depth}{name:<{max(1, 28 - 4 * depth)}} {summary}".rstrip())
    return lines


class LayoutDirective(SphinxDirective):
    """``tracelet-layout``: the packages' modules as a tree, from the files and their docstrings."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        packages = ("tracelet_core", "tracelet_lightning")
        for package in packages:
            for path in (REPO_ROOT / package).rglob("*.py"):
                self.env.note_dependency(str(path))
        text = "\n".join(layout_lines(*packages))
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("tracelet_api_packages", ["tracelet_core", "tracelet_lightning"], "env")
    app.add_config_value("tracelet_cli_page", "cli", "env")
    app.add_directive("tracelet-settings", SettingsDirective)
    app.add_directive("tracelet-cli", CliDirective)
    app.add_directive("tracelet-benchmarks", BenchmarksDirective)
    app.add_directive("tracelet-layout", LayoutDirective)
    app.connect("env-before-read-docs", _init_env)
    app.connect("env-purge-doc", _purge)
    app.connect("env-check-consistency", _check)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}

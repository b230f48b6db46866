"""Fixtures for the `tracelet` command's tests: run it in-process (Typer's runner) or as the console script."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tracelet_core.cli import app

TRACELET = str(Path(sys.executable).parent / "tracelet")


@pytest.fixture
def cli() -> Callable[..., Result]:
    """``cli("runs", "--json")``: run a command in-process and check its exit code (``code=None``: any);
    ``input`` is what the user types at a prompt."""
    runner = CliRunner()

    def invoke(*args: str, code: int | None = 0, input: str | None = None) -> Result:
        result = runner.invoke(app, list(args), catch_exceptions=False, input=input)
        if code is not None:
            assert result.exit_code == code, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
        return result

    return invoke


@pytest.fixture
def tracelet() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``tracelet("sync", env={...})``: run the installed console script in a subprocess, as a user would."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TRACELET, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(os.environ, **(env or {})),
            check=False,
        )

    return run

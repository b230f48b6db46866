"""W&B in offline mode writing only under a test's tmp_path (shared by the W&B and migrate tests)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tracelet_core import errors


@contextmanager
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point every W&B directory (and HOME) into ``tmp_path``; yields WANDB_DIR.

    wandb keeps settings read from the environment in a per-process singleton, so it is torn down
    before and after; warn-once state is fresh too.
    """
    import wandb

    for name in [n for n in os.environ if n.startswith("WANDB_")]:
        monkeypatch.delenv(name)
    home = tmp_path / "home"
    for name, path in {
        "HOME": home,
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_DATA_HOME": home / ".local" / "share",
        "WANDB_DIR": tmp_path / "wandb-dir",
        "WANDB_CACHE_DIR": home / "wandb-cache",
        "WANDB_CONFIG_DIR": home / "wandb-config",
        "WANDB_DATA_DIR": home / "wandb-data",
        "WANDB_ARTIFACT_DIR": home / "wandb-artifacts",
    }.items():
        path.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(name, str(path))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setattr(errors, "_seen", set())
    wandb.teardown()
    try:
        yield tmp_path / "wandb-dir"
    finally:
        wandb.teardown()

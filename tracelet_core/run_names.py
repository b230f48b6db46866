"""Readable run names, chosen once when a run starts without one: ``adjective-noun-NNN``.

The name is random (nothing about the run goes into it), like MLflow's ``fearless-bass-367``. It is
stored in the run's journal, so ``tracelet runs`` shows it, a resumed run keeps it, and every
tracker gets the same one instead of naming the run its own way.
"""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

from tracelet_core.errors import TraceletError
from tracelet_core.pipeline.journal import Journal

__all__ = ["choose_run_name", "random_run_name"]

_ADJECTIVES = (
    "amber", "bold", "brave", "bright", "calm", "clever", "crisp", "eager", "fancy", "fearless",
    "gentle", "glad", "golden", "grand", "happy", "hidden", "honest", "jolly", "keen", "kind",
    "lively", "lucky", "merry", "mighty", "nimble", "noble", "polite", "proud", "quick", "quiet",
    "rapid", "silent", "silver", "smooth", "sunny", "swift", "tidy", "vivid", "warm", "wise",
)  # fmt: skip
_NOUNS = (
    "badger", "bass", "bear", "beaver", "bee", "crane", "deer", "dolphin", "eagle", "falcon",
    "finch", "fox", "gecko", "hare", "hawk", "heron", "ibis", "koala", "lark", "lemur",
    "lion", "lynx", "mole", "moose", "newt", "otter", "owl", "panda", "puffin", "quail",
    "raven", "robin", "seal", "shark", "sloth", "swan", "tiger", "trout", "whale", "wolf",
)  # fmt: skip


def random_run_name() -> str:
    """A new readable run name: an adjective, a noun and three digits.

    Example:
        >>> adjective, noun, number = random_run_name().split("-")
        >>> adjective in _ADJECTIVES, noun in _NOUNS, len(number)
        (True, True, 3)
    """
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(1000):03d}"


def choose_run_name(given: str | None, journal_path: Path) -> str:
    """The run's name: ``given``, else the name a resumed run got at its start, else a new random one.

    Example:
        >>> choose_run_name("baseline", Path("/nonexistent/journal.sqlite"))
        'baseline'
    """
    if given:
        return given
    if journal_path.exists():
        try:
            with Journal(journal_path) as journal:
                stored = journal.meta().run_name
        except (TraceletError, sqlite3.Error, OSError):  # unreadable now: the run goes on under a new name
            stored = None
        if stored:
            return stored
    return random_run_name()

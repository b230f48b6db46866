"""What every route needs: a database session in a transaction, and a checked run id."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from tracelet_core.server.errors import Problem
from tracelet_core.server.store.database import Store

__all__ = ["DbSession", "RunId", "no_run", "store_of"]

# Tracelet's run ids, and those other stores give runs; never a path (no '/', no leading '.').
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def store_of(request: Request) -> Store:
    """The app's store."""
    store: Store = request.app.state.store
    return store


def _session(request: Request) -> Iterator[Session]:
    with store_of(request).new_session() as session, session.begin():
        yield session


def _run_id(run_id: Annotated[str, Path(max_length=128)]) -> str:
    if not RUN_ID.match(run_id):
        raise Problem(400, f"{run_id!r} is not a run id: letters, digits, '.', '_' and '-', not starting with '.'")
    return run_id


# scope="function": the transaction commits before the response leaves, so a client that reads right after
# its write sees it, and a failed commit is answered as an error.
DbSession = Annotated[Session, Depends(_session, scope="function")]
RunId = Annotated[str, Depends(_run_id)]


def no_run(run_id: str) -> Problem:
    """The 404 for a run the store does not have."""
    return Problem(404, f"No run {run_id!r} on this server (a tracker opens it with PUT /api/v1/runs/{run_id}).")

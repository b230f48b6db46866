"""The Tracelet server tracker's settings section: ``TRACELET_TRACELET__<OPTION>``."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["DEFAULT_URL", "TOKEN_VARIABLE", "TraceletServerOptions"]

DEFAULT_URL = "http://127.0.0.1:8765"
TOKEN_VARIABLE = "TRACELET_TRACELET__TOKEN"


class TraceletServerOptions(BaseModel):
    """Options of the ``tracelet`` backend (``TRACELET_TRACELET__<FIELD>``)."""

    url: str = Field(DEFAULT_URL, description="The Tracelet server's URL (`tracelet server` prints it).")
    # exclude: the run's journal records its backends' options; a token must never be written there. The
    # delivery process reads it from TRACELET_TRACELET__TOKEN, which it inherits.
    token: str | None = Field(
        None, exclude=True, description="The server's token (`tracelet server --token`), if it has one."
    )
    timeout: float = Field(10.0, gt=0, description="Seconds one request to the server may take before it is retried.")

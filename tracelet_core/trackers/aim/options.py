"""The Aim tracker's settings section: ``TRACELET_AIM__<OPTION>``."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["AimOptions"]


class AimOptions(BaseModel):
    """Options of the Aim backend (``TRACELET_AIM__<FIELD>``)."""

    repo: str | None = Field(None, description="Aim repository path or URL. Unset: Aim's default (.aim in cwd).")
    artifacts_uri: str | None = Field(
        None,
        description="Where Aim copies logged files (file:// or s3:// URI). Unset: file://<repo>/aim-artifacts for "
        "a local repo; a remote (aim://) repo needs one, else files stay local.",
    )

"""The ``tracelet`` logger: shows Tracelet's one-line notices unless the application configured logging."""

from __future__ import annotations

import logging

__all__ = ["configure_default_logging"]


def configure_default_logging() -> None:
    """Give the ``tracelet`` logger a stderr handler at INFO when nothing else handles its records.

    Lightning does the same for ``lightning.pytorch``: without it the end-of-run summary, which
    says where the run went, would be invisible in a plain script.
    """
    logger = logging.getLogger("tracelet")
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

"""A local TCP port nothing listens on: an unreachable tracker that fails fast (connection refused)."""

from __future__ import annotations

import socket


def closed_port() -> int:
    """A port that was free a moment ago and is closed now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

"""``aim up`` on 127.0.0.1 for the browser checks: started in its own process group, stopped as a group.

``aim up`` serves the UI from a uvicorn child that outlives a SIGTERM to ``aim`` itself, so the
whole group is stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.mlflow_server import free_port


class AimServer:
    """Aim's UI for the repository ``repo`` (the folder that holds ``.aim``); its log in ``log``."""

    def __init__(self, repo: Path, log: Path, port: int | None = None) -> None:
        self.repo = repo
        self.log = log
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> AimServer:
        command = [
            str(Path(sys.executable).parent / "aim"), "up", "--yes",
            "--repo", str(self.repo), "--host", "127.0.0.1", "--port", str(self.port),
        ]  # fmt: skip
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"aim up exited; see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/projects/", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"aim up did not answer within {timeout}s; see {self.log}")

    def stop(self) -> None:
        if self._process is None:
            return
        try:
            os.killpg(self._process.pid, signal.SIGTERM)
            self._process.wait(15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(5)
        self._process = None

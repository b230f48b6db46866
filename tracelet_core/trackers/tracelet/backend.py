"""Sends a run to a Tracelet server: ``PUT /runs/{id}`` to open it, gzip-compressed batches, the status at the end.

Every call is idempotent, so the delivery worker's retries never duplicate anything: opening is an upsert
keyed by Tracelet's run id (which is also the server's), the status is set rather than appended, and a
batch carries its idempotency key, the journal sequence of its first event (read from the run's journal:
the first event after this backend's acknowledged one), which the server stores with a digest of the
content in the batch's transaction.

Errors are classified from the HTTP status: 5xx, 408, 429, 404 (a run the server lost) and connection
errors are transient; 401 and 403 mean the token is wrong (configuration); any other 4xx means the
server refuses this content (permanent).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tracelet_core.client import ServerError, TraceletClient
from tracelet_core.errors import ErrorKind
from tracelet_core.events import Batch, RunInfo, RunStatus
from tracelet_core.trackers.base import Backend, Capabilities, classify_common_error
from tracelet_core.trackers.tracelet.options import DEFAULT_URL, TOKEN_VARIABLE

__all__ = ["TraceletServerBackend", "journal_facts"]

_TRANSIENT_STATUSES = frozenset({404, 408, 425, 429})
DELIVERIES_EVERY = 5.0  # seconds between two reports of the other trackers' delivery state


def journal_facts(run_dir: str, me: str) -> tuple[str | None, dict[str, dict[str, Any]], int | None]:
    """From the run's journal, if there is one: the host, the other trackers' delivery state, and the
    sequence of the first event this backend (``me``) has not acknowledged.
    """
    from tracelet_core.pipeline.files import JOURNAL_FILENAME
    from tracelet_core.pipeline.journal import Journal

    path = Path(run_dir) / JOURNAL_FILENAME
    if not path.is_file():
        return None, {}, None
    with Journal(path) as journal:
        deliveries = journal.deliveries()
        others = {
            name: {
                "state": str(d.state),
                "acked_seq": d.acked_seq,
                "native_id": d.native_id,
                "location": d.location,
                "error": d.error,
            }
            for name, d in deliveries.items()
            if name != me
        }
        mine = deliveries.get(me)
        following = journal.read(mine.acked_seq, 1) if mine is not None else []
        return journal.meta().trainer_host, others, following[0].seq if following else None


class TraceletServerBackend(Backend):
    """Sends a run to a Tracelet server (``TRACELET_TRACELET__URL``)."""

    name = "tracelet"
    sdk_module = "httpx"
    extra = "server"
    capabilities = Capabilities(media=frozenset(), artifacts=False, epoch_axis=False, max_key_length=500)

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self._client: TraceletClient | None = None
        self._run: RunInfo | None = None
        self._reported = 0.0

    def _connect(self) -> TraceletClient:
        if self._client is None:
            url = str(self.options.get("url") or DEFAULT_URL)
            token = self.options.get("token") or os.environ.get(TOKEN_VARIABLE)
            self._client = TraceletClient(url, token, timeout=float(self.options.get("timeout") or 10.0))
        return self._client

    def open(self, run: RunInfo, native_id: str | None) -> str:
        """Create the run on the server (or bring it up to date); the server's id is Tracelet's run id."""
        host, deliveries, _ = journal_facts(run.run_dir, self.name)
        body = {
            "experiment": run.experiment,
            "name": run.run_name,
            "tags": run.tags,
            "start_time": run.start_time,
            "host": host,
            "status": "RUNNING",
            "deliveries": deliveries,
        }
        self._connect().open_run(run.run_id, body)
        self._run, self._reported = run, time.monotonic()
        return run.run_id

    def write(self, batch: Batch) -> None:
        run = self._require_run()
        _, deliveries, seq = journal_facts(run.run_dir, self.name)
        metrics = [(p.key, p.step, p.timestamp, p.value) for p in batch.metrics]
        client = self._connect()
        try:
            client.send_batch(run.run_id, metrics, batch.params, batch.tags, seq=-1 if seq is None else seq)
        except ServerError as exc:
            if exc.status != 404:
                raise
            # The server lost the run (a new database behind the same URL): open it again, then send.
            self.open(run, run.run_id)
            client.send_batch(run.run_id, metrics, batch.params, batch.tags, seq=-1 if seq is None else seq)
        if deliveries and time.monotonic() - self._reported > DELIVERIES_EVERY:
            self._report(run, deliveries)

    def _report(self, run: RunInfo, deliveries: dict[str, dict[str, Any]]) -> None:
        self._connect().set_status(run.run_id, "RUNNING", deliveries=deliveries)
        self._reported = time.monotonic()

    def close(self, status: RunStatus) -> None:
        run = self._require_run()
        _, deliveries, _ = journal_facts(run.run_dir, self.name)
        self._connect().set_status(run.run_id, status, time.time(), deliveries=deliveries)
        if self._client is not None:
            self._client.close()
        self._client, self._run = None, None

    def location(self) -> str | None:
        """The server's URL (without a token)."""
        return self._client.url if self._client is not None else None

    def classify_error(self, exc: BaseException, during: str) -> ErrorKind:
        """A refusal by its HTTP status; a connection error is transient (see the module docstring)."""
        if isinstance(exc, ServerError):
            if exc.status in (401, 403):
                return ErrorKind.CONFIGURATION
            if exc.status >= 500 or exc.status in _TRANSIENT_STATUSES:
                return ErrorKind.TRANSIENT
            return ErrorKind.PERMANENT
        import httpx

        if isinstance(exc, httpx.TransportError):
            return ErrorKind.TRANSIENT
        return classify_common_error(exc)

    def _require_run(self) -> RunInfo:
        if self._run is None:
            raise RuntimeError("TraceletServerBackend used before open()")
        return self._run

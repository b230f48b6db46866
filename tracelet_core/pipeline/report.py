"""What a run's delivery achieved, per backend, read from its journal."""

from __future__ import annotations

from dataclasses import dataclass

from tracelet_core.pipeline.contract import DeliveryState
from tracelet_core.pipeline.journal import Journal

__all__ = ["BackendReport", "DeliveryReport", "read_report"]


@dataclass(frozen=True)
class BackendReport:
    """One backend's share of a run's delivery.

    Attributes:
        name: the backend.
        delivered: journal events the backend acknowledged.
        pending: journal events not yet acknowledged (kept in the journal for ``tracelet sync``).
        state: how far delivery got (pending, open, retrying, closed, gave_up, unavailable or misconfigured).
        native_id: the tracker's own id of the run, once opened.
        location: where to find the run (URI, path or URL), if the backend says.
        error: the last error, if any.
        rejected: events the tracker refused for good (set aside with the reason; ``tracelet show`` lists them).
    """

    name: str
    delivered: int
    pending: int
    state: DeliveryState
    native_id: str | None
    location: str | None
    error: str | None
    rejected: int = 0

    @property
    def complete(self) -> bool:
        """Nothing journaled is left to deliver (rejected events are not waiting: they can never be taken)."""
        return self.pending == 0


@dataclass(frozen=True)
class DeliveryReport:
    """The delivery state of a run: returned by ``Run.finish()`` and shown by ``tracelet show``."""

    run_id: str
    status: str
    journal: str
    total: int
    backends: tuple[BackendReport, ...]
    dropped: int = 0
    lost: int = 0
    problems: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Every backend holds every journaled event it can take, and the journal kept everything logged."""
        return all(backend.complete for backend in self.backends) and not self.lost

    def summary(self) -> str:
        """One line a user reads at the end of a run.

        Example:
            >>> from tracelet_core.pipeline.contract import DeliveryState
            >>> ok = BackendReport("mlflow", 40, 0, DeliveryState.CLOSED, "r1", None, None, rejected=2)
            >>> print(DeliveryReport("5f0c", "FINISHED", "/j", 42, (ok,), dropped=1).summary())
            run 5f0c FINISHED: mlflow 40/42 delivered, 2 rejected (see `tracelet show 5f0c`); 1 invalid value dropped
        """
        if not self.backends:
            parts = [f"{self.total} events kept in the journal {self.journal}"]
        else:
            parts = []
            for b in self.backends:
                if b.complete:
                    rejected = f", {b.rejected} rejected (see `tracelet show {self.run_id[:8]}`)" if b.rejected else ""
                    parts.append(f"{b.name} {b.delivered}/{self.total} delivered{rejected}")
                else:
                    why = f" ({b.error})" if b.error else ""
                    parts.append(f"{b.name} {b.pending} of {self.total} undelivered, {b.state}{why}")
        if self.dropped:
            parts.append(f"{self.dropped} invalid value{'s' if self.dropped != 1 else ''} dropped")
        if self.lost:
            parts.append(f"{self.lost} logged event{'s' if self.lost != 1 else ''} could not be kept")
        parts.extend(self.problems)
        waiting = any(not b.complete for b in self.backends)
        tail = f"; undelivered events stay in {self.journal} (run `tracelet sync`)" if waiting else ""
        return f"run {self.run_id} {self.status}: " + "; ".join(parts) + tail


def read_report(journal: Journal, run_id: str, status: str) -> DeliveryReport:
    """Build the report of a run from its journal."""
    total = journal.last_seq()
    rejected = journal.rejected_counts()
    meta = journal.meta()
    backends = []
    for name, state in sorted(journal.deliveries().items()):
        pending = journal.count(after=state.acked_seq)
        refused = rejected.get(name, 0)
        backends.append(
            BackendReport(
                name,
                total - pending - refused,
                pending,
                state.state,
                state.native_id,
                state.location,
                state.error,
                refused,
            )
        )
    return DeliveryReport(
        run_id,
        status,
        str(journal.path),
        total,
        tuple(backends),
        dropped=meta.dropped_events,
        lost=meta.lost_events,
    )

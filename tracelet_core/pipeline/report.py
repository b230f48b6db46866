"""What a run's delivery achieved, per backend, read from its journal."""

from __future__ import annotations

from dataclasses import dataclass

from tracelet_core.pipeline.journal import Journal

__all__ = ["BackendReport", "DeliveryReport", "read_report"]


@dataclass(frozen=True)
class BackendReport:
    """One backend's share of a run's delivery.

    Attributes:
        name: the backend.
        delivered: journal events the backend acknowledged.
        pending: journal events not yet acknowledged (kept in the journal for ``tracelet sync``).
        state: pending, open, retrying, closed, gave_up or unavailable.
        native_id: the tracker's own id of the run, once opened.
        location: where to find the run (URI, path or URL), if the backend says.
        error: the last error, if any.
    """

    name: str
    delivered: int
    pending: int
    state: str
    native_id: str | None
    location: str | None
    error: str | None

    @property
    def complete(self) -> bool:
        """Everything journaled has reached the tracker."""
        return self.pending == 0


@dataclass(frozen=True)
class DeliveryReport:
    """The delivery state of a run: returned by ``Run.finish()`` and shown by ``tracelet show``."""

    run_id: str
    status: str
    journal: str
    total: int
    backends: tuple[BackendReport, ...]

    @property
    def complete(self) -> bool:
        """Every backend holds every journaled event."""
        return all(backend.complete for backend in self.backends)

    def summary(self) -> str:
        """One line a user reads at the end of a run."""
        if not self.backends:
            return f"run {self.run_id} {self.status}: {self.total} events kept in the journal {self.journal}"
        parts = []
        for b in self.backends:
            if b.complete:
                parts.append(f"{b.name} {b.delivered}/{self.total} delivered")
            else:
                why = f" ({b.error})" if b.error else ""
                parts.append(f"{b.name} {b.pending} of {self.total} undelivered, {b.state}{why}")
        tail = "" if self.complete else f"; undelivered events stay in {self.journal} (run `tracelet sync`)"
        return f"run {self.run_id} {self.status}: " + "; ".join(parts) + tail


def read_report(journal: Journal, run_id: str, status: str) -> DeliveryReport:
    """Build the report of a run from its journal."""
    total = journal.last_seq()
    backends = []
    for name, state in sorted(journal.deliveries().items()):
        pending = journal.count(after=state.acked_seq)
        backends.append(
            BackendReport(name, total - pending, pending, state.state, state.native_id, state.location, state.error)
        )
    return DeliveryReport(run_id, status, str(journal.path), total, tuple(backends))

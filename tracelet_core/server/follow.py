"""``tracelet server --follow DIR``: runs recorded in local journals appear on the server as they are written.

A thread reads every journal under ``DIR`` (``DIR/<experiment>/<run id>/journal.sqlite``, what
``TRACELET_JOURNAL_DIR`` holds) a few times a second and ingests the events past the run's
``journal_seq``: the run's start (the run is opened), metrics, params and tags (one batch per read,
keyed by its first sequence), and its end (the status). ``journal_seq`` moves in the same transaction,
so a server restarted mid-read goes on where it stopped, never twice. Runs whose journal already names
the ``tracelet`` tracker are left to it (their points would otherwise arrive twice). Trainers change
nothing: a run tracked to MLflow alone shows up here too.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from sqlalchemy.orm import Session

from tracelet_core.pipeline.contract import BATCHED_KINDS, EventKind, JournalEvent, SessionStart
from tracelet_core.pipeline.files import JOURNAL_FILENAME
from tracelet_core.pipeline.journal import Journal
from tracelet_core.server.schemas import BatchIn, PointIn, RunIn, StatusIn
from tracelet_core.server.store import ingest
from tracelet_core.server.store.database import Store
from tracelet_core.server.store.models import Run

__all__ = ["JournalFollower"]

log = logging.getLogger("tracelet.server.follow")
READ_LIMIT = 5_000
TRACKER_NAME = "tracelet"


class JournalFollower(threading.Thread):
    """Ingests the journals under ``root`` into ``store`` until :meth:`stop`.

    Args:
        store: the server's store.
        root: the journal directory to follow.
        interval: seconds between two passes over the journals.
    """

    def __init__(self, store: Store, root: Path, interval: float = 0.2) -> None:
        super().__init__(name="tracelet-follow", daemon=True)
        self.store, self.root, self.interval = store, Path(root), interval
        self._stop_event = threading.Event()

    def stop(self) -> None:
        """Stop after the current pass."""
        self._stop_event.set()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.follow_once()
            self._stop_event.wait(self.interval)

    def follow_once(self) -> int:
        """One pass over every journal; returns the events ingested."""
        done = 0
        for path in sorted(self.root.glob(f"*/*/{JOURNAL_FILENAME}")):
            try:
                done += self._follow(path)
            except Exception:  # one unreadable or half-written journal must not stop the others
                log.exception("--follow: cannot ingest %s yet", path)
        return done

    def _follow(self, path: Path) -> int:
        with Journal(path) as journal:
            meta = journal.meta()
            if TRACKER_NAME in meta.backends:
                return 0
            run_id = meta.run_id or path.parent.name
            with self.store.session() as session:
                run = session.get(Run, run_id)
                after = run.journal_seq if run is not None else 0
            events = journal.read(after, READ_LIMIT)
            if not events:
                return 0
            start = (
                None if run is not None or events[0].kind == EventKind.START else journal.last_event(EventKind.START)
            )
        with self.store.session() as session, session.begin():
            if start is not None:
                ingest.upsert_run(session, run_id, _run_in(start))
            _ingest_events(session, run_id, events)
            opened = session.get(Run, run_id)
            if opened is not None:
                opened.journal_seq = events[-1].seq
        return len(events)


def _run_in(event: JournalEvent) -> RunIn:
    start = SessionStart.of(event)
    return RunIn(experiment=start.experiment, name=start.run_name, tags=start.tags, start_time=start.start_time)


def _ingest_events(session: Session, run_id: str, events: list[JournalEvent]) -> None:
    """The events in order: consecutive metrics, params and tags as one batch; start and finish as calls."""
    pending: list[JournalEvent] = []
    for event in [*events, None]:
        if event is not None and event.kind in BATCHED_KINDS:
            pending.append(event)
            continue
        if pending:
            ingest.ingest_batch(session, run_id, _batch(pending))
            pending = []
        if event is not None and event.kind == EventKind.START:
            ingest.upsert_run(session, run_id, _run_in(event))
        elif event is not None and event.kind == EventKind.FINISH:
            status = event.text if event.text in ("FINISHED", "FAILED", "KILLED") else "FINISHED"
            ingest.end_run(session, run_id, StatusIn(status=status, end_time=event.ts))  # type: ignore[arg-type]


def _batch(events: list[JournalEvent]) -> BatchIn:
    metrics = [
        PointIn(key=e.key or "", step=e.step, ts=e.ts, value=e.value) for e in events if e.kind == EventKind.METRIC
    ]
    params = {e.key or "": e.text or "" for e in events if e.kind == EventKind.PARAM}
    tags = {e.key or "": e.text or "" for e in events if e.kind == EventKind.TAG}
    return BatchIn(seq=events[0].seq, metrics=metrics, params=params, tags=tags)

"""Tracelet's own journals, as a store runs are read from (``tracelet runs``, ``sync``, ``migrate --from journal``)."""

from __future__ import annotations

from tracelet_core.trackers.descriptor import Tracker

TRACKER = Tracker(
    name="journal",
    reader="tracelet_core.trackers.journal.reader:JournalReader",
    description="Tracelet's local journals (TRACELET_JOURNAL_DIR)",
)

"""The pipeline from a log call to the trackers: queue, journal writer, journal, delivery process, delivery workers."""

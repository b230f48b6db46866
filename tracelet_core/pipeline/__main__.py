"""``python -m tracelet_core.pipeline JOURNAL``: the delivery process (see :mod:`.sidecar`)."""

from tracelet_core.pipeline.sidecar import main

main()

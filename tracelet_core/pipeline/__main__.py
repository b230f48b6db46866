"""``python -m tracelet_core.pipeline JOURNAL``: the delivery process (see :mod:`.delivery_process`)."""

from tracelet_core.pipeline.delivery_process import main

main()

"""Train the digits classifier from a YAML file with LightningCLI, tracked by Tracelet.

    python examples/lightning_cli.py fit --config examples/config.yaml
    python examples/lightning_cli.py fit --config examples/config.yaml --trainer.max_epochs 5

Tracelet comes in through the YAML alone (``trainer.logger`` and ``trainer.callbacks``, see
``examples/config.yaml``); nothing in this file knows about it. W&B runs offline here unless
``WANDB_MODE`` says otherwise, so the example works without a W&B account (``wandb sync`` uploads
the run later). Everything it writes goes under ``.tracelet-examples/`` (see ``_outputs.py``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lightning.pytorch.cli import LightningCLI

sys.path.insert(0, str(Path(__file__).resolve().parent))  # train_digits.py, beside this file

from _outputs import absolute_paths, enter_output_dir
from train_digits import DigitsClassifier, DigitsData


def main(args: list[str] | None = None) -> LightningCLI:
    """Run the CLI (``args`` as on the command line; default ``sys.argv[1:]``)."""
    os.environ.setdefault("WANDB_MODE", "offline")
    args = absolute_paths(sys.argv[1:] if args is None else args)  # --config paths, from where they were typed
    enter_output_dir()  # everything this example writes goes under ./.tracelet-examples
    return LightningCLI(DigitsClassifier, DigitsData, args=args)


if __name__ == "__main__":
    main()

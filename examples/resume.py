"""Resume an interrupted training run: the same Tracelet run goes on, in every tracker.

    python examples/resume.py --interrupt-after-epoch 1   # dies right after epoch 1, like a killed job
    python examples/resume.py                             # resumes from .tracelet-examples/checkpoints/last.ckpt

``TraceletCallback`` stores the Tracelet run id (and each tracker's own run id) in every checkpoint.
``trainer.fit(..., ckpt_path="last")`` in a new process restores it, and the callback continues that
run: metrics go on along the same step axis, and no second run is created. The first process ends
without a word (``os._exit``, as the OOM killer would end it); Tracelet's delivery process notices,
delivers what was journaled and marks the run KILLED until the resumed process takes it over.

A ``TraceletLogger`` beside the callback is switched to the checkpoint's run the same way. With a
``TraceletLogger`` and no callback in the resumed process, name the run explicitly (the checkpoint
still holds it when the interrupted process had the callback)::

    from tracelet_lightning import TraceletLogger, checkpoint_run_id
    logger = TraceletLogger(run_id=checkpoint_run_id(".tracelet-examples/checkpoints/last.ckpt"))

Everything it writes (journal, MLflow store, checkpoints) goes under ``.tracelet-examples/`` (see ``_outputs.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

sys.path.insert(0, str(Path(__file__).resolve().parent))  # train_digits.py, beside this file

from tracelet_lightning import TraceletCallback

from _outputs import OUTPUT_DIR, enter_output_dir
from train_digits import DigitsClassifier, DigitsData


class InterruptAfterEpoch(Callback):
    """End the process abruptly once ``epoch`` has been checkpointed (stands in for a killed job)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch + 1:  # the previous epoch's checkpoint is on disk
            print(f"interrupted after epoch {self.epoch}", flush=True)
            os._exit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--checkpoints", help=f"checkpoint directory (default: {OUTPUT_DIR}/checkpoints)")
    parser.add_argument("--interrupt-after-epoch", type=int, default=None)
    args = parser.parse_args(argv)
    checkpoints = Path(args.checkpoints or Path(OUTPUT_DIR, "checkpoints")).resolve()
    enter_output_dir()  # everything this example writes goes under ./.tracelet-examples

    pl.seed_everything(0, verbose=False)
    tracelet = TraceletCallback(experiment="digits-resume")
    callbacks: list[Callback] = [tracelet, ModelCheckpoint(dirpath=checkpoints, save_last=True)]
    if args.interrupt_after_epoch is not None:
        callbacks.append(InterruptAfterEpoch(args.interrupt_after_epoch))
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        logger=False,
        callbacks=callbacks,
        log_every_n_steps=5,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    resume = (checkpoints / "last.ckpt").is_file()
    trainer.fit(DigitsClassifier(), DigitsData(), ckpt_path="last" if resume else None)

    logger = tracelet.logger
    report = logger.report if logger is not None else None
    print(f"{'resumed' if resume else 'trained'}: Tracelet run {logger.version if logger else '-'}")
    print(f"  {report.summary() if report else 'not started'}")


if __name__ == "__main__":
    main()

"""Hugging Face Transformers with Tracelet: a ``Trainer`` callback records the logged train/eval
metrics at the global step, TrainingArguments, the model config and size, and checkpoints; run it
twice with ``--resume`` to continue the same run from the last checkpoint.

    python examples/transformers_tiny_bert.py --max-steps 20
    python examples/transformers_tiny_bert.py --max-steps 40 --resume   # the same Tracelet run goes on

The model is a tiny BERT built from a config (nothing is downloaded), trained on synthetic tokens.
Everything it writes goes under ``.tracelet-examples/`` (see ``_outputs.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tracelet_core.integrations.transformers import TraceletTrainerCallback

from _outputs import enter_output_dir


class Tokens(torch.utils.data.Dataset):
    """Sequences of 16 tokens labelled by whether token 1 appears in them."""

    def __init__(self, size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(2, 100, (size, 16), generator=generator)
        self.ids[::2, 5] = 1
        self.labels = (self.ids == 1).any(dim=1).long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[index], "labels": self.labels[index]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-steps", type=int, default=20)
    parser.add_argument("--resume", action="store_true")
    options = parser.parse_args()
    enter_output_dir()
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        num_labels=2,
    )
    args = TrainingArguments(
        output_dir="hf-tiny-bert",
        max_steps=options.max_steps,
        per_device_train_batch_size=8,
        logging_steps=5,
        eval_strategy="steps",
        eval_steps=10,
        save_steps=10,
        learning_rate=1e-3,
        report_to="none",
        use_cpu=True,
    )
    callback = TraceletTrainerCallback(experiment="tiny-bert", log_checkpoints="last")
    trainer = Trainer(
        model=BertForSequenceClassification(config),
        args=args,
        train_dataset=Tokens(256, 0),
        eval_dataset=Tokens(64, 1),
        callbacks=[callback],
    )
    with callback:  # a training that raises ends the run FAILED
        trainer.train(resume_from_checkpoint=True if options.resume else None)
    print(f"run {callback.run}")


if __name__ == "__main__":
    main()

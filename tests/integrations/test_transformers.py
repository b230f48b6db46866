"""The Transformers ``Trainer`` callback: a tiny BERT built from a config (no hub download) on synthetic
data, read back from MLflow (SQLite) and W&B (offline) point by point; resuming from a checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("accelerate")

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from tests.integrations.readback import COMMON, artifact_paths, history, mlflow_run, mlflow_runs
from tests.support.wandb_env import offline_wandb
from tests.support.wandb_reader import read_run, run_file
from tracelet_core.integrations.transformers import TraceletTrainerCallback, metric_name
from tracelet_core.integrations.transformers_checkpoints import RUN_FILE


class Synthetic(torch.utils.data.Dataset):
    """Token sequences whose label is whether token 1 appears: learnable, tiny, deterministic."""

    def __init__(self, size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(2, 30, (size, 8), generator=generator)
        self.ids[::2, 3] = 1
        self.labels = (self.ids == 1).any(dim=1).long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[index], "labels": self.labels[index]}


def _model() -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=32,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    return BertForSequenceClassification(config)


def _args(output: Path, max_steps: int) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(output),
        max_steps=max_steps,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        logging_steps=2,
        eval_strategy="steps",
        eval_steps=4,
        save_strategy="steps",
        save_steps=4,
        learning_rate=1e-3,
        report_to="none",
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
        seed=0,
    )


def _trainer(output: Path, max_steps: int, callback: TraceletTrainerCallback) -> Trainer:
    return Trainer(
        model=_model(),
        args=_args(output, max_steps),
        train_dataset=Synthetic(32, 0),
        eval_dataset=Synthetic(16, 1),
        callbacks=[callback],
    )


def _logged(trainer: Trainer, key: str) -> list[tuple[int, float]]:
    return [(row["step"], row[key]) for row in trainer.state.log_history if key in row]


def test_train_and_eval_metrics_params_size_and_checkpoints_reach_mlflow_and_wandb(
    mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with offline_wandb(tmp_path, monkeypatch) as wandb_dir:
        callback = TraceletTrainerCallback(
            experiment="hf", backends=["mlflow", "wandb"], log_checkpoints="all", **COMMON
        )
        trainer = _trainer(tmp_path / "out", 8, callback)
        trainer.train()
        run = callback.run
        assert run is not None and run.status == "FINISHED" and run.report().complete

        recorded = mlflow_run(mlflow_uri, run)
        run_id = recorded.info.run_id
        assert recorded.info.status == "FINISHED"
        for key in ("loss", "eval_loss", "learning_rate"):
            expected = _logged(trainer, key)
            got = history(mlflow_uri, run_id, metric_name(key))
            assert [s for s, _ in got] == [s for s, _ in expected] and expected
            assert [v for _, v in got] == pytest.approx([v for _, v in expected])
        params = recorded.data.params
        assert params["args/max_steps"] == "8" and params["args/learning_rate"] == "0.001"
        assert params["model_config/hidden_size"] == "16" and params["model_config/model_type"] == "bert"
        assert params["model/parameters"] == str(trainer.model.num_parameters())
        files = set(artifact_paths(mlflow_uri, run_id))
        for step in (4, 8):
            assert f"checkpoints/checkpoint-{step}/model.safetensors" in files
            assert f"checkpoints/checkpoint-{step}/{RUN_FILE}" in files
        assert recorded.data.tags["tracelet.checkpoint.last"] == "checkpoints/checkpoint-8"

        (offline,) = (wandb_dir / "wandb").glob("offline-run-*")
        wandb_run = read_run(run_file(offline))
        series, expected = wandb_run.series("eval/loss"), _logged(trainer, "eval_loss")
        assert [s for s, _ in series] == [s for s, _ in expected]
        assert [float(v) for _, v in series] == pytest.approx([v for _, v in expected])
        assert wandb_run.config["args/max_steps"] == 8


def test_resuming_from_a_checkpoint_continues_the_same_run(mlflow_uri: str, tmp_path: Path) -> None:
    output = tmp_path / "out"
    first = TraceletTrainerCallback(experiment="hf-resume", backends=["mlflow"], delivery="thread", **COMMON)
    _trainer(output, 4, first).train()
    assert first.run is not None and (output / "checkpoint-4" / RUN_FILE).is_file()

    second = TraceletTrainerCallback(experiment="hf-resume", backends=["mlflow"], delivery="thread", **COMMON)
    trainer = _trainer(output, 8, second)
    trainer.train(resume_from_checkpoint=os.fspath(output / "checkpoint-4"))
    assert second.run is not None and second.run.id == first.run.id

    (only,) = mlflow_runs(mlflow_uri, "hf-resume")
    assert only.info.status == "FINISHED"
    assert [s for s, _ in history(mlflow_uri, only.info.run_id, "train/loss")] == [2, 4, 6, 8]


def test_log_checkpoints_best_uploads_each_new_best_checkpoint_only(mlflow_uri: str, tmp_path: Path) -> None:
    callback = TraceletTrainerCallback(
        experiment="hf-best", backends=["mlflow"], delivery="thread", log_checkpoints="best", **COMMON
    )
    trainer = _trainer(tmp_path / "out", 12, callback)
    trainer.args.metric_for_best_model, trainer.args.greater_is_better = "eval_loss", False
    trainer.train()
    best_so_far, expected = float("inf"), set()
    for step, loss in _logged(trainer, "eval_loss"):
        if loss < best_so_far:
            best_so_far, expected = loss, expected | {step}
    recorded = mlflow_run(mlflow_uri, callback.run)
    files = artifact_paths(mlflow_uri, recorded.info.run_id)
    uploaded = {int(path.split("/")[1].split("-")[1]) for path in files if path.endswith("/model.safetensors")}
    assert uploaded == {max(expected)}  # earlier bests are replaced: MLflow deletes their files
    assert recorded.data.tags["tracelet.checkpoint.best"] == os.path.join(
        "checkpoints", os.path.basename(trainer.state.best_model_checkpoint)
    )

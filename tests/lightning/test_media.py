"""Images, histograms, texts and figures logged through ``self.logger`` reach MLflow."""

from __future__ import annotations

import json
import re
from pathlib import Path

import lightning.pytorch as pl
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from tests.lightning.models import TinyData, TinyModel, artifact_paths, only_run, trainer_kwargs
from tracelet_lightning import TraceletCallback, TraceletLogger

# MLflow stores an image logged under key K at step S as images/<K with / as ~>+step+<S>+...png
_IMAGE = re.compile(r"images/(?P<key>[^+]+)\+step\+(?P<step>\d+)\+.*(?<!compressed)\.png$")


@pytest.mark.parametrize("tracked_by", ["logger", "callback"])
def test_media_from_the_module_reach_mlflow(mlflow_uri: str, tracked_by: str, tmp_path: Path) -> None:
    if tracked_by == "logger":
        kwargs: dict[str, object] = {"logger": TraceletLogger(backends=["mlflow"], delivery="thread")}
    else:  # with logger=False, self.logger is the TraceletLogger the callback added
        kwargs = {"logger": False, "callbacks": [TraceletCallback(backends=["mlflow"], delivery="thread")]}
    trainer = pl.Trainer(**trainer_kwargs(max_epochs=2, enable_checkpointing=False, **kwargs))
    trainer.fit(TinyModel(log_media=True, hidden=16, features=8), TinyData())

    run_id = only_run(mlflow_uri).info.run_id
    client = MlflowClient(mlflow_uri)
    paths = artifact_paths(mlflow_uri, run_id)
    images = {(m["key"], int(m["step"])): p for p in paths if (m := _IMAGE.match(p))}
    assert set(images) == {(key, step) for key in ("weights~image", "curve") for step in (8, 16)}
    with Image.open(client.download_artifacts(run_id, images["weights~image", 8], str(tmp_path))) as image:
        assert image.size == (8, 16)  # the (hidden, features) weight matrix, one pixel per weight
    with Image.open(client.download_artifacts(run_id, images["curve", 16], str(tmp_path))) as image:
        assert image.size[0] > 50  # a rendered figure

    text = Path(client.download_artifacts(run_id, "tracelet/text/notes-step000000016.txt", str(tmp_path)))
    assert text.read_text() == "epoch 1 ended at step 16"
    histogram = json.loads(
        Path(client.download_artifacts(run_id, "tracelet/media/weights/hist/000000008.json", str(tmp_path))).read_text()
    )
    assert sum(histogram["counts"]) == 16 * 8
    assert len(histogram["bins"]) == len(histogram["counts"]) + 1

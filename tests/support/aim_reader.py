"""Read an Aim run back through Aim's own reader (``aim.Repo``), for tests.

A finished run is invisible to ``Repo.get_run`` until the repository's index has caught up (the
``aim up`` server normally does that in the background), so :func:`read_run` indexes it first.
Sequences are keyed by ``(name, context)`` with the context as a sorted tuple of its items, e.g.
``("loss", (("subset", "train"),))``; epochs Aim stored as missing come back as None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from aim import Repo
from aim.sdk.index_manager import RepoIndexManager

SequenceKey = tuple[str, tuple[tuple[str, Any], ...]]


@dataclass
class AimRunData:
    """What a test asserts about one Aim run."""

    hash: str
    name: str | None
    experiment: str | None
    active: bool
    tags: list[str]
    params: dict[str, Any]  # every top-level attribute: hparams, tracelet, ...
    metrics: dict[SequenceKey, list[tuple[int, int | None, float]]] = field(default_factory=dict)
    times: dict[SequenceKey, list[float]] = field(default_factory=dict)
    images: dict[SequenceKey, list[tuple[int, tuple[int, int], str]]] = field(default_factory=dict)
    distributions: dict[SequenceKey, list[tuple[int, list[float], tuple[float, float]]]] = field(default_factory=dict)
    texts: dict[SequenceKey, list[tuple[int, str]]] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> uri

    @property
    def hparams(self) -> dict[str, Any]:
        return dict(self.params.get("hparams") or {})

    @property
    def tracelet(self) -> dict[str, Any]:
        return dict(self.params.get("tracelet") or {})


def _epoch(value: float) -> int | None:
    return None if math.isnan(value) else int(value)


def _key(name: str, context: Any) -> SequenceKey:
    return name, tuple(sorted(context.to_dict().items()))


def read_run(repo_path: str, run_hash: str) -> AimRunData:
    """Index ``run_hash`` in the repository at ``repo_path`` and read all of it back."""
    repo = Repo.from_path(repo_path)
    RepoIndexManager.get_index_manager(repo).index(run_hash)
    run = repo.get_run(run_hash)
    assert run is not None, f"run {run_hash} not found in {repo_path}"
    data = AimRunData(
        hash=run.hash,
        name=run.name,
        experiment=run.experiment,
        active=run.active,
        tags=sorted(run.tags),
        params=run[...],
    )
    for name, context, _ in run.iter_sequence_info_by_type(("float", "int", "number")):
        steps, (values, epochs, times) = run.get_metric(name, context).data.numpy()
        key = _key(name, context)
        data.metrics[key] = [(int(s), _epoch(e), float(v)) for s, v, e in zip(steps, values, epochs, strict=True)]
        data.times[key] = [float(t) for t in times]
    for name, context, _ in run.iter_sequence_info_by_type(("aim.image",)):
        steps, (images, _epochs, _times) = run.get_image_sequence(name, context).data.items_list()
        data.images[_key(name, context)] = [(s, img.size, img.format) for s, img in zip(steps, images, strict=True)]
    for name, context, _ in run.iter_sequence_info_by_type(("aim.distribution",)):
        steps, (dists, _epochs, _times) = run.get_distribution_sequence(name, context).data.items_list()
        data.distributions[_key(name, context)] = [
            (s, d.weights.tolist(), tuple(d.range)) for s, d in zip(steps, dists, strict=True)
        ]
    for name, context, _ in run.iter_sequence_info_by_type(("aim.text",)):
        steps, (texts, _epochs, _times) = run.get_text_sequence(name, context).data.items_list()
        data.texts[_key(name, context)] = [(s, t.data) for s, t in zip(steps, texts, strict=True)]
    data.artifacts = {name: artifact.uri for name, artifact in run.artifacts.items()}
    return data

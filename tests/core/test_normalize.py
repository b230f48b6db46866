"""Params flattening, key sanitising and value conversion, with hypothesis properties."""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from argparse import Namespace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracelet_core.backends.mlflow import _INVALID_KEY, MAX_KEY_LENGTH, _path_safe
from tracelet_core.normalize import (
    TRUNCATION_MARKER,
    KeySanitizer,
    flatten_params,
    to_metric_value,
    to_plain,
    truncate,
)

keys = st.text(alphabet=st.characters(blacklist_characters="/", blacklist_categories=("Cs",)), min_size=1, max_size=12)
leaves = st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=20), st.booleans(), st.none())
nested = st.recursive(leaves, lambda children: st.dictionaries(keys, children, min_size=1, max_size=4), max_leaves=20)


def _leaf_paths(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out |= _leaf_paths(v, f"{prefix}/{k}" if prefix else k)
        return out
    return {prefix: value}


@given(st.dictionaries(keys, nested, min_size=1, max_size=5))
def test_flatten_keeps_every_leaf_under_its_path(params: dict[str, Any]) -> None:
    flat = flatten_params(params)
    expected = _leaf_paths(params)
    assert set(flat) == set(expected)
    for key, value in expected.items():
        assert flat[key] == (repr(value) if isinstance(value, float) else str(value))


@given(st.dictionaries(keys, nested, min_size=1, max_size=5))
def test_flatten_values_are_strings_and_deterministic(params: dict[str, Any]) -> None:
    first, second = flatten_params(params), flatten_params(params)
    assert first == second
    assert all(isinstance(v, str) for v in first.values())


@given(st.lists(st.text(min_size=1, max_size=300), min_size=1, max_size=30))
def test_sanitised_keys_are_valid_distinct_and_stable(raw: list[str]) -> None:
    sanitize = KeySanitizer("mlflow", _INVALID_KEY, MAX_KEY_LENGTH, warn=lambda k, m: None)
    out = {key: _path_safe(sanitize(key)) for key in raw}
    for key, clean in out.items():
        assert re.fullmatch(r"[/\w.\- :]+", clean), clean
        assert len(clean) <= MAX_KEY_LENGTH + 8
        assert _path_safe(sanitize(key)) == clean  # the same key always maps to the same name
    distinct_raw = {sanitize(key) for key in set(raw)}
    assert len(distinct_raw) == len(set(raw))


@given(st.text(max_size=500), st.integers(min_value=60, max_value=400))
def test_truncate_respects_limit_and_says_so(text: str, limit: int) -> None:
    out = truncate(text, limit)
    assert len(out) <= limit
    if len(text) > limit:
        assert out.endswith(TRUNCATION_MARKER.format(total=len(text)))
    else:
        assert out == text


class Color(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Optim:
    lr: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)


def test_plain_conversion_of_awkward_hyperparameters() -> None:
    import torch

    params = {
        "optim": Optim(),
        "ns": Namespace(a=1),
        "color": Color.RED,
        "path": Path("/data/x"),
        "fn": math.sqrt,
        "cls": Optim,
        "tensor": torch.tensor(3.5),
        "none": None,
        "empty": {},
    }
    flat = flatten_params(params)
    assert flat == {
        "optim/lr": "0.1",
        "optim/betas": "[0.9, 0.99]",
        "ns/a": "1",
        "color": "Color.RED",
        "path": "/data/x",
        "fn": "math.sqrt",
        "cls": f"{__name__}.Optim",
        "tensor": "3.5",
        "none": "None",
        "empty": "{}",
    }


def test_cycles_and_deep_nesting_do_not_explode() -> None:
    cyclic: dict[str, Any] = {"a": 1}
    cyclic["self"] = cyclic
    assert flatten_params(cyclic)["a"] == "1"
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(200):
        node["x"] = {}
        node = node["x"]
    flat = flatten_params(deep)
    assert len(flat) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1.0), (True, 1.0), ("2.5", 2.5), ("abc", None), (None, None), ([1, 2], None)],
)
def test_metric_values(value: Any, expected: float | None) -> None:
    assert to_metric_value(value) == expected


def test_metric_values_from_tensors_and_numpy() -> None:
    import numpy as np
    import torch

    assert to_metric_value(torch.tensor(0.25)) == 0.25
    assert to_metric_value(np.float32(0.5)) == 0.5
    assert to_metric_value(torch.tensor([1.0, 2.0])) is None
    assert math.isnan(to_metric_value(float("nan")) or 0.0)
    assert to_plain(np.arange(3)) == [0, 1, 2]

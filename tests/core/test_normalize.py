"""Params flattening, plain values, secret masking and key sanitising, with hypothesis properties.

Steps, timestamps, metric values and artifact names are in test_normalize_inputs.py.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from argparse import Namespace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tracelet_core.collectors import environment
from tracelet_core.errors import TraceletWarning
from tracelet_core.normalize import (
    DEFAULT_SECRET_PARAMS,
    MASK,
    flatten_params,
    is_secret_key,
    mask_secret_params,
    param_to_str,
    to_plain,
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


class Color(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Optim:
    lr: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)


def test_plain_conversion_of_awkward_hyperparameters() -> None:
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


def test_arrays_become_lists() -> None:
    assert to_plain(np.arange(3)) == [0, 1, 2]


# --- to_plain: exact builtin types, whatever the user logs ---------------------------------------


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 3


class Perm(enum.IntFlag):
    READ = 1
    WRITE = 2


class Mode(enum.StrEnum):
    TRAIN = "train"


class Legacy(str, enum.Enum):
    OLD = "old"


class Ratio(float, enum.Enum):
    HALF = 0.5


class MyInt(int):
    def __int__(self) -> int:  # a subclass may lie in its conversions; the stored number wins
        raise RuntimeError("no")


class MyFloat(float):
    pass


class MyStr(str):
    def __str__(self) -> str:
        return "lies"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("broken __str__")

    __repr__ = __str__


class SubclassStr:
    def __str__(self) -> str:
        return MyStr("sub")  # str() passes a str subclass through; yaml.safe_dump refuses it


def _is_plain(value: Any) -> bool:
    if type(value) in (type(None), bool, int, float, str):
        return True
    if type(value) is list:
        return all(_is_plain(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _is_plain(v) for k, v in value.items())
    return False


def test_numpy_scalars_become_exact_builtins() -> None:
    plain = to_plain(
        {"f": np.float64(0.01), "f32": np.float32(0.5), "i": np.int64(3), "b": np.bool_(True), "s": np.str_("adam")}
    )
    assert plain == {"f": 0.01, "f32": 0.5, "i": 3, "b": True, "s": "adam"}
    assert [type(v) for v in plain.values()] == [float, float, int, bool, str]
    assert flatten_params({"lr": np.float64(0.01)}) == {"lr": "0.01"}
    assert param_to_str(np.float64(0.01)) == "0.01"
    yaml.safe_dump(plain)


def test_subclasses_of_builtins_become_exact_builtins() -> None:
    plain = to_plain([MyInt(7), MyFloat(1.5), MyStr("text"), True])
    assert plain == [7, 1.5, "text", True]
    assert [type(v) for v in plain] == [int, float, str, bool]


def test_zero_dim_tensors_and_arrays_become_scalars() -> None:
    assert to_plain(torch.tensor(3)) == 3
    assert type(to_plain(torch.tensor(2.5))) is float
    assert to_plain(np.array(True)) is True
    assert to_plain(torch.tensor([[1, 2], [3, 4]])) == [[1, 2], [3, 4]]


def test_big_arrays_become_one_line_of_their_printout() -> None:
    text = to_plain(torch.zeros(10_000))
    assert isinstance(text, str) and "..." in text and "\n" not in text


def test_enums_with_int_or_str_values_become_their_value() -> None:
    plain = to_plain([Level.HIGH, Perm.READ | Perm.WRITE, Mode.TRAIN, Legacy.OLD, Ratio.HALF, Color.RED])
    assert plain == [3, 3, "train", "old", 0.5, "Color.RED"]
    assert [type(v) for v in plain] == [int, int, str, str, float, str]


def test_unprintable_values_become_a_placeholder_with_one_warning() -> None:
    class BrokenConfig(Unprintable):
        pass

    with pytest.warns(TraceletWarning, match="BrokenConfig"):
        assert to_plain({"cfg": BrokenConfig()}) == {"cfg": "<unprintable BrokenConfig>"}
    assert flatten_params({"cfg": BrokenConfig()}) == {"cfg": "<unprintable BrokenConfig>"}  # no second warning


def test_mapping_keys_are_made_strings_safely() -> None:
    class BrokenKey(Unprintable):
        def __hash__(self) -> int:
            return 1

    with pytest.warns(TraceletWarning, match="BrokenKey"):
        plain = to_plain({np.int64(4): "a", 1.5: "b", None: "c", Level.LOW: "d", BrokenKey(): "e", ("x", 1): "f"})
    assert plain == {"4": "a", "1.5": "b", "None": "c", "1": "d", "<unprintable BrokenKey>": "e", "['x', 1]": "f"}


def test_ints_too_long_to_print_become_a_placeholder() -> None:
    with pytest.warns(TraceletWarning, match="int"):
        assert to_plain(10**5000) == "<unprintable int>"
    assert to_plain(2**1999) == 2**1999  # 602 digits: every Python prints that


@dataclasses.dataclass
class Holder:
    inner: Any


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=10),
    st.floats().map(np.float64),
    st.floats(width=32).map(np.float32),
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.booleans().map(np.bool_),
    st.text(max_size=10).map(np.str_),
    st.sampled_from([Level.HIGH, Perm.READ | Perm.WRITE, Mode.TRAIN, Legacy.OLD, Ratio.HALF, Color.RED]),
    st.integers(-1000, 1000).map(MyInt),
    st.text(max_size=5).map(MyStr),
    st.floats(width=32).map(torch.tensor),
    st.lists(st.integers(-100, 100), max_size=70).map(np.array),
    st.complex_numbers(),
    st.binary(max_size=5),
    st.builds(Unprintable),
    st.builds(SubclassStr),
    st.just(math.sqrt),
    st.just(Path("/data")),
)
_hashable = st.one_of(st.text(max_size=5), st.integers(), st.floats(allow_nan=False), st.builds(Unprintable))
_mixed = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(_hashable, children, max_size=4),
        st.sets(_hashable, max_size=4),
        st.frozensets(st.integers(), max_size=4),
        children.map(Holder),
        children.map(lambda child: Namespace(x=child)),
    ),
    max_leaves=15,
)


@pytest.mark.filterwarnings("ignore::tracelet_core.errors.TraceletWarning")
@settings(max_examples=200)
@given(_mixed)
def test_plain_output_is_exact_builtins_that_yaml_and_json_take(value: Any) -> None:
    plain = to_plain(value)
    assert _is_plain(plain)
    text = yaml.safe_dump(plain)
    json.dumps(plain)
    assert yaml.safe_dump(to_plain(value)) == text  # deterministic (compared as text: NaN is not equal to itself)
    assert all(isinstance(v, str) for v in flatten_params({"p": value}).values())


# --- secrets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["api_key", "x_token", "db_password", "secret", "HF_TOKEN", "aws_secret_access_key", "db/password"]
)
def test_secret_keys_are_masked(key: str) -> None:
    assert is_secret_key(key)
    assert mask_secret_params({key: "hunter2", "epochs": 3}) == {key: MASK, "epochs": 3}


@pytest.mark.parametrize("key", ["pad_token_id", "max_new_tokens", "author", "tokenizer", "learning_rate", "token/id"])
def test_ordinary_keys_are_not_masked(key: str) -> None:
    assert not is_secret_key(key)
    assert mask_secret_params({key: 1}) == {key: 1}


def test_masking_walks_nested_data_and_masks_whole_values() -> None:
    params = {
        "optimizer.token": "t",
        "db": {"PASSWORD": "p", "host": "h", "auth": {"user": "u"}},
        "callbacks": [{"api_key": "k", "name": "wandb"}, 3],
        "credentials": ["a", "b"],
        "password/": "trailing",
    }
    assert mask_secret_params(params) == {
        "optimizer.token": MASK,
        "db": {"PASSWORD": MASK, "host": "h", "auth": MASK},
        "callbacks": [{"api_key": MASK, "name": "wandb"}, 3],
        "credentials": MASK,
        "password/": MASK,
    }
    assert params["db"]["PASSWORD"] == "p"  # the input is not changed


def test_masking_takes_custom_patterns_once_even_from_an_iterator() -> None:
    patterns = (p for p in ["*seed"])
    assert mask_secret_params({"seed": 1, "data_seed": 2, "token": 3}, patterns) == {
        "seed": MASK,
        "data_seed": MASK,
        "token": 3,
    }


def test_mask_is_the_environment_collectors_mask() -> None:
    assert MASK == environment.MASK
    assert "*token" in DEFAULT_SECRET_PARAMS

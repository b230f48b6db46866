"""Steps, timestamps, metric values and artifact names: what the journal writer and the run accept."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tracelet_core.inputs import artifact_name, to_metric_value, to_step, to_timestamp

STEP_LIMIT = 2**63
YEAR_2100 = 4_102_444_800  # 2100-01-01T00:00:00Z


# --- to_step ---------------------------------------------------------------------------------------


@given(st.integers())
def test_step_accepts_exactly_the_integers_below_two_to_the_63(n: int) -> None:
    if 0 <= n < STEP_LIMIT:
        assert to_step(n) == n and type(to_step(n)) is int
    else:
        with pytest.raises(ValueError, match=re.escape("[0, 2**63)")):
            to_step(n)


@given(st.integers(0, 2**63 - 1))
def test_step_accepts_numpy_ints_and_one_element_tensors(n: int) -> None:
    assert to_step(np.int64(n)) == n
    assert to_step(np.array([n])) == n
    assert to_step(torch.tensor(n)) == n
    assert type(to_step(torch.tensor([n]))) is int


@given(st.floats())
def test_step_accepts_floats_only_when_integral_and_in_range(x: float) -> None:
    if math.isfinite(x) and x.is_integer() and 0 <= x < STEP_LIMIT:
        assert to_step(x) == int(x)
        assert to_step(np.float64(x)) == int(x)
    else:
        with pytest.raises(ValueError, match="step"):
            to_step(x)


def test_step_none_is_none() -> None:
    assert to_step(None) is None


@pytest.mark.parametrize(
    "value",
    [True, False, np.bool_(True), torch.tensor(True), "3", b"3", 2.5, [1], torch.tensor([1, 2]), np.zeros(0), 1j],
)
def test_step_refuses_bools_strings_fractions_and_collections(value: Any) -> None:
    with pytest.raises(ValueError, match=re.escape("[0, 2**63)")) as caught:
        to_step(value)
    assert type(value).__name__ in str(caught.value)


def test_step_error_names_the_value() -> None:
    with pytest.raises(ValueError, match=r"got -5 \(int\)"):
        to_step(-5)


class FailingTensor:
    """A one-element tensor whose read fails, as one on a crashed GPU does."""

    __module__ = "torch.cuda"

    def numel(self) -> int:
        return 1

    def tolist(self) -> Any:
        raise RuntimeError("CUDA error: device-side assert triggered")

    item = tolist


def test_a_tensor_that_cannot_be_read_is_a_value_error_or_none() -> None:
    with pytest.raises(ValueError, match="step"):
        to_step(FailingTensor())
    with pytest.raises(ValueError, match="timestamp"):
        to_timestamp(FailingTensor())
    assert to_metric_value(FailingTensor()) is None


# --- to_timestamp ----------------------------------------------------------------------------------


@given(st.floats())
def test_timestamp_accepts_finite_seconds_between_1970_and_2100(x: float) -> None:
    if 0 < x < YEAR_2100:
        assert to_timestamp(x) == x
    else:
        with pytest.raises(ValueError, match="1970-01-01 and 2100-01-01"):
            to_timestamp(x)


@pytest.mark.parametrize("value", [1_700_000_000, np.int64(1_700_000_000), np.float32(1.7e9), torch.tensor(1.7e9)])
def test_timestamp_accepts_ints_and_numpy_numbers(value: Any) -> None:
    seconds = to_timestamp(value)
    assert type(seconds) is float and abs(seconds - 1.7e9) < 200


@pytest.mark.parametrize("value", [None, True, "1700000000", 0, YEAR_2100, 1.7e12, -1.0, 10**400, [1.7e9]])
def test_timestamp_refuses_everything_else(value: Any) -> None:
    with pytest.raises(ValueError, match="got"):
        to_timestamp(value)


# --- to_metric_value -------------------------------------------------------------------------------


def test_ints_beyond_a_float_become_infinities() -> None:
    assert to_metric_value(10**400) == math.inf
    assert to_metric_value(-(10**400)) == -math.inf
    assert to_metric_value("1e400") == math.inf
    assert to_metric_value("-1e400") == -math.inf


def test_metric_values_are_exact_floats() -> None:
    for value in (np.float64(0.5), np.int64(2), torch.tensor([0.25]), True, 3, "1.5"):
        assert type(to_metric_value(value)) is float
    assert math.isnan(to_metric_value("nan") or 0.0)
    assert to_metric_value(-math.inf) == -math.inf


class Raises:
    """A number-looking object whose every conversion raises ``exc``."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __float__(self) -> float:
        raise self.exc

    def item(self) -> float:
        raise self.exc


class RaisesFloatOnly:
    def __float__(self) -> float:
        raise ZeroDivisionError


_errors = st.sampled_from([RuntimeError(), OverflowError(), KeyError("k"), ZeroDivisionError(), RecursionError()])
_anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.binary(),
    st.complex_numbers(),
    st.lists(st.floats(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.lists(st.floats(width=32), max_size=3).map(torch.tensor),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3).map(np.array),
    _errors.map(Raises),
    st.just(RaisesFloatOnly()),
    st.just(np.datetime64("2024-01-01")),
)


@given(_anything)
def test_metric_value_never_raises(value: Any) -> None:
    result = to_metric_value(value)
    assert result is None or type(result) is float


def test_metric_value_of_objects_that_raise_is_none() -> None:
    assert to_metric_value(Raises(RuntimeError())) is None
    assert to_metric_value(RaisesFloatOnly()) is None


# --- artifact_name ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("model.pt", "model.pt"),
        ("checkpoints/best.ckpt", "checkpoints/best.ckpt"),
        ("../../etc/passwd", "etc/passwd"),
        ("/abs/x.txt", "abs/x.txt"),
        ("a/./b//c", "a/b/c"),
        ("a\\b\\c.txt", "a/b/c.txt"),
        ("C:\\Users\\me\\x.txt", "Users/me/x.txt"),
        ("c:x.txt", "x.txt"),
        ("\\\\server\\share\\x", "server/share/x"),
        ("a/.. /b", "a/b"),  # Windows reads ".. " as ".."
        ("C:/./D:/x", "x"),
        ("...hidden/.env", "...hidden/.env"),
    ],
)
def test_artifact_names_are_made_relative_and_safe(name: str, expected: str) -> None:
    assert artifact_name(name) == expected


@pytest.mark.parametrize("name", ["", "/", "..", "./../.", "C:", "\\\\", " . "])
def test_artifact_names_with_nothing_left_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="names no file"):
        artifact_name(name)


@given(st.text(alphabet=st.sampled_from("ab.:/\\ C")))
def test_safe_artifact_names_stay_inside_and_are_stable(name: str) -> None:
    try:
        safe = artifact_name(name)
    except ValueError:
        return
    parts = safe.split("/")
    assert "\\" not in safe and not re.match(r"[A-Za-z]:", safe)
    assert all(part.strip(". ") for part in parts)
    assert artifact_name(safe) == safe


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1.0), (True, 1.0), ("2.5", 2.5), ("abc", None), (None, None), ([1, 2], None)],
)
def test_metric_values(value: Any, expected: float | None) -> None:
    assert to_metric_value(value) == expected


def test_metric_values_from_tensors_and_numpy() -> None:
    assert to_metric_value(torch.tensor(0.25)) == 0.25
    assert to_metric_value(np.float32(0.5)) == 0.5
    assert to_metric_value(torch.tensor([1.0, 2.0])) is None
    assert math.isnan(to_metric_value(float("nan")) or 0.0)

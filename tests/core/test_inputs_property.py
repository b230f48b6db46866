"""Property-based: arbitrary mixes of valid and invalid inputs never raise into training, every valid point
reaches MLflow exactly once, and every invalid one is dropped alone and reported.

Hypothesis draws the calls a training script makes (``log_metrics`` with steps, timestamps, keys and values
of every everyday type, ``log_params`` with numpy scalars, enums, unprintable objects, secrets and deep
nesting), through the Run API and through ``TraceletLogger``; each example is one run delivered to a real
MLflow SQLite store and read back.
"""

from __future__ import annotations

import enum
import math
import os
import shutil
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.tracking import MlflowClient

import tracelet_core
from tracelet_core import errors
from tracelet_core.errors import TraceletWarning
from tracelet_lightning import TraceletLogger

MAX_STEP = 2**63
NOW = time.time()


class Color(enum.IntEnum):
    RED = 1


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    __repr__ = __str__
    __float__ = __str__  # type: ignore[assignment]


@dataclass(frozen=True)
class Call:
    """One ``log_metrics`` call: what is logged, and whether its step and timestamp are valid."""

    metrics: dict[Any, Any]
    step: Any
    timestamp: Any
    step_ok: bool
    time_ok: bool

    @property
    def mlflow_step(self) -> int:
        return 0 if self.step is None else int(self.step.item() if hasattr(self.step, "item") else self.step)


valid_steps = st.one_of(
    st.none(),
    st.integers(0, 10_000),
    st.integers(MAX_STEP - 10, MAX_STEP - 1),
    st.integers(0, 10_000).map(np.int64),
    st.integers(0, 10_000).map(torch.tensor),
    st.integers(0, 10_000).map(float),
)
invalid_steps = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=MAX_STEP),
    st.just(2.5),
    st.just(float("nan")),
    st.just("seven"),
    st.just(torch.tensor([1, 2])),
)
valid_times = st.one_of(st.none(), st.floats(1, 4_000_000_000), st.just(np.float64(NOW)))
invalid_times = st.one_of(st.just(-1.0), st.just(1e12), st.just(float("nan")), st.just(float("inf")), st.just("now"))
keys = st.one_of(
    st.from_regex(r"[a-z][a-z0-9_/]{0,12}", fullmatch=True),
    st.text(min_size=1, max_size=12),
    st.sampled_from(["x@1", "x_1", "val acc@top5", "a" * 260 + "1", "a" * 260 + "2", "a/../b", "Ω/loss"]),
).filter(lambda key: key != "epoch")  # TraceletLogger records `epoch` once per change, by design
# Valid values are drawn as a type; each gets a number of its own in the test (see _unique_values), so
# that no two points are identical (MLflow keeps one of identical points, by design).
VALUE_TYPES = {
    "int": int,
    "float": lambda n: n + 0.5,
    "float32": lambda n: np.float32(n + 0.25),
    "int64": np.int64,
    "tensor": torch.tensor,
    "float_tensor": lambda n: torch.tensor(n + 0.5),
    "0d_array": lambda n: np.array(n + 0.75),
}
invalid_values = st.one_of(st.just("abc"), st.none(), st.just(Unprintable()), st.just(torch.ones(3)), st.just([1.0]))
values = st.one_of(st.sampled_from(sorted(VALUE_TYPES)).map(lambda kind: ("valid", kind)), invalid_values)


@st.composite
def calls(draw: st.DrawFn) -> Call:
    step_ok = draw(st.booleans()) or draw(st.booleans())
    time_ok = draw(st.booleans()) or draw(st.booleans())
    step = draw(valid_steps if step_ok else invalid_steps)
    timestamp = draw(valid_times if time_ok else invalid_times)
    metrics = draw(st.dictionaries(keys, values, min_size=1, max_size=4))
    return Call(metrics, step, timestamp, step_ok, time_ok)


hyperparameters = st.fixed_dictionaries(
    {
        "lr": st.floats(1e-6, 1.0).map(np.float64),
        "layers": st.integers(1, 8).map(np.int64),
        "color": st.just(Color.RED),
        "weird": st.just(Unprintable()),
        "api_key": st.just("SECRET-in-hparams"),
        "deep": st.recursive(st.integers(), lambda inner: st.dictionaries(st.text(max_size=3), inner, max_size=2)),
    }
)


def _is_valid(value: Any) -> bool:
    return isinstance(value, tuple) and value[0] == "valid"


def _unique_values(all_calls: list[Call]) -> tuple[list[Call], Counter[tuple[int, float]], set[str]]:
    """The calls with each valid value made a distinct number of its drawn type; the (step, value) points
    MLflow must hold; and the keys of the values that must be dropped (each counted once per value)."""
    made: list[Call] = []
    expected: Counter[tuple[int, float]] = Counter()
    dropped: list[str] = []
    n = 0
    for call in all_calls:
        metrics = {}
        for key, value in call.metrics.items():
            if _is_valid(value):
                n += 1
                metrics[key] = VALUE_TYPES[value[1]](n)
                if call.step_ok and call.time_ok:
                    expected[(call.mlflow_step, float(metrics[key]))] += 1
                    continue
            else:
                metrics[key] = value
            dropped.append(key)
        made.append(Call(metrics, call.step, call.timestamp, call.step_ok, call.time_ok))
    return made, expected, dropped


def _mlflow_points(uri: str, native_id: str) -> Counter[tuple[int, float]]:
    client = MlflowClient(uri)
    points: Counter[tuple[int, float]] = Counter()
    for key in client.get_run(native_id).data.metrics:
        for metric in client.get_metric_history(native_id, key):
            points[(metric.step, metric.value)] += 1
    return points


def _fresh_store(template: Path, directory: Path) -> str:
    directory.mkdir(parents=True)
    shutil.copyfile(template, directory / "mlflow.db")
    return f"sqlite:///{directory / 'mlflow.db'}"


def _check(uri: str, report: Any, expected: Counter[tuple[int, float]], dropped: list[str], caught: list) -> None:
    assert report.complete, report.summary()
    assert report.dropped == len(dropped)
    native = report.backends[0].native_id
    assert _mlflow_points(uri, native) == expected
    params = MlflowClient(uri).get_run(native).data.params
    assert params["api_key"] == "***"
    assert float(params["lr"]) > 0 and "np." not in params["lr"]
    assert params["layers"].isdigit() and params["color"] == "1"
    assert "unprintable" in params["weird"]
    messages = " ".join(str(w.message) for w in caught if issubclass(w.category, TraceletWarning))
    for key in dropped:
        assert repr(key) in messages, f"no warning names {key!r}"


SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(drawn=st.lists(calls(), min_size=1, max_size=12), hparams=hyperparameters)
def test_the_run_api_never_raises_and_loses_no_valid_point(
    drawn: list[Call], hparams: dict[str, Any], mlflow_template: Path, tmp_path: Path
) -> None:
    errors._seen.clear()
    uri = _fresh_store(mlflow_template, tmp_path / f"run-{time.monotonic_ns()}")
    all_calls, expected, dropped = _unique_values(drawn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = tracelet_core.start_logging(
            "property", backends=["mlflow"], delivery="thread", mlflow={"tracking_uri": uri}
        )
        run.log_params(hparams)
        for call in all_calls:
            run.log_metrics(call.metrics, step=call.step, timestamp=call.timestamp)
        report = run.finish(timeout=60)
    _check(uri, report, expected, dropped, caught)


@SETTINGS
@given(drawn=st.lists(calls(), min_size=1, max_size=12), hparams=hyperparameters)
def test_the_lightning_logger_never_raises_and_loses_no_valid_point(
    drawn: list[Call], hparams: dict[str, Any], mlflow_template: Path, tmp_path: Path
) -> None:
    errors._seen.clear()
    uri = _fresh_store(mlflow_template, tmp_path / f"run-{time.monotonic_ns()}")
    # Lightning's logger interface has no timestamp: its points are logged "now".
    drawn = [Call(c.metrics, c.step, None, c.step_ok, True) for c in drawn]
    all_calls, expected, dropped = _unique_values(drawn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        os.environ["TRACELET_MLFLOW__TRACKING_URI"] = uri
        try:
            logger = TraceletLogger(experiment="property", backends=["mlflow"], delivery="thread")
        finally:
            del os.environ["TRACELET_MLFLOW__TRACKING_URI"]
        logger.log_hyperparams(hparams)
        for call in all_calls:
            logger.log_metrics(call.metrics, step=call.step)
        logger.finalize("success")
    assert logger.report is not None
    _check(uri, logger.report, expected, dropped, caught)


def test_nan_and_infinity_are_kept(mlflow_uri: str) -> None:
    run = tracelet_core.start_logging("property", backends=["mlflow"], delivery="thread")
    run.log_metrics({"a": float("nan"), "b": float("inf"), "c": 10**400}, step=1)
    report = run.finish(timeout=60)
    assert report.complete and report.dropped == 0
    metrics = MlflowClient(mlflow_uri).get_run(report.backends[0].native_id).data.metrics
    assert math.isnan(metrics["a"]) and metrics["b"] > 1e300 and metrics["c"] > 1e300


pytestmark = pytest.mark.slow

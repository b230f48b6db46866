"""`tracelet compare`: final/best values, group statistics that match scipy's, a verdict, and a plot."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result
from scipy import stats

import tracelet_core

A_FINALS = [0.801, 0.815, 0.792, 0.808, 0.811]
B_FINALS = [0.846, 0.861, 0.839, 0.855, 0.850]


def _run(name: str, final: float, key: str = "val/acc") -> str:
    run = tracelet_core.start_logging("seeds", backends=[], run_name=name, flush_interval=0.01)
    # A curve that peaks at step 3 above its final value, so final and best differ.
    for step, offset in enumerate([-0.2, -0.1, -0.02, 0.03, 0.0]):
        run.log_metric(key, final + offset, step=step)
    run.finish()
    return run.id


@pytest.fixture
def groups() -> dict[str, list[str]]:
    return {
        "A": [_run(f"a{i}", v) for i, v in enumerate(A_FINALS)],
        "B": [_run(f"b{i}", v) for i, v in enumerate(B_FINALS)],
    }


def test_two_groups_give_the_p_values_scipy_gives(groups: dict[str, list[str]], cli: Callable[..., Result]) -> None:
    args = [f"--group={name}={','.join(ids)}" for name, ids in groups.items()]
    report = json.loads(cli("compare", "-m", "val/acc", *args, "--plot", "acc.png", "--json").stdout)

    assert [round(r["final"], 6) for r in report["runs"]] == A_FINALS + B_FINALS
    assert [round(r["best"], 6) for r in report["runs"]] == [round(v + 0.03, 6) for v in A_FINALS + B_FINALS]
    assert {r["best_step"] for r in report["runs"]} == {3}
    a, b = np.array(A_FINALS), np.array(B_FINALS)
    group_a, _ = report["groups"]
    assert group_a["mean"] == pytest.approx(a.mean()) and group_a["std"] == pytest.approx(a.std(ddof=1))
    expected_ci = stats.bootstrap(
        (a,), np.mean, n_resamples=10_000, method="percentile", rng=np.random.default_rng(0)
    ).confidence_interval
    assert group_a["ci"] == pytest.approx([expected_ci.low, expected_ci.high])
    (comparison,) = report["comparisons"]
    assert comparison["welch_p"] == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue, rel=1e-9)
    assert comparison["welch_t"] == pytest.approx(stats.ttest_ind(b, a, equal_var=False).statistic, rel=1e-9)
    assert comparison["mannwhitney_p"] == pytest.approx(stats.mannwhitneyu(b, a).pvalue, rel=1e-9)
    pooled = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    assert comparison["cohens_d"] == pytest.approx((b.mean() - a.mean()) / pooled)
    assert comparison["verdict"].startswith("B is better than A")
    assert Path("acc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    text = cli("compare", "-m", "val/acc", *args, "--stat", "best").stdout
    for expected in ("higher is better", "bootstrap CI", "Welch", "B is better than A"):
        assert expected in text


def test_no_difference_is_said_plainly(cli: Callable[..., Result]) -> None:
    same = [_run(f"x{i}", v) for i, v in enumerate([0.80, 0.82, 0.81])]
    other = [_run(f"y{i}", v) for i, v in enumerate([0.81, 0.80, 0.82])]
    report = json.loads(
        cli("compare", "-m", "val/acc", "-g", f"X={','.join(same)}", "-g", f"Y={','.join(other)}", "--json").stdout
    )
    verdict = report["comparisons"][0]["verdict"]
    assert verdict.startswith("No clear difference between X and Y") and "more runs" in verdict


def test_runs_side_by_side_and_lower_is_better_for_losses(cli: Callable[..., Result]) -> None:
    first, second = _run("small", 0.5, key="val/loss"), _run("large", 0.3, key="val/loss")
    report = json.loads(cli("compare", first[:6], "large", "-m", "val/loss", "--plot", "loss.png", "--json").stdout)
    assert report["goal"] == "min" and report["groups"] == [] and report["comparisons"] == []
    assert [(r["name"], round(r["best"], 6), r["best_step"]) for r in report["runs"]] == [
        ("small", 0.3, 0),
        ("large", 0.1, 0),
    ]
    assert Path("loss.png").stat().st_size > 1000
    assert "lower is better" in cli("compare", first, second, "-m", "val/loss").stdout


def test_compare_says_what_is_wrong(cli: Callable[..., Result]) -> None:
    first, second = _run("p", 0.5), _run("q", 0.6)
    assert "no 'val/f1' points" in cli("compare", first, second, "-m", "val/f1", code=1).stderr
    typo = " ".join(cli("compare", first, second, "-m", "val_acc", code=1).stderr.split())
    assert "did you mean 'val/acc'?" in typo and "its metrics:" in typo
    assert "at least 2 runs" in cli("compare", "-m", "val/acc", "-g", f"A={first}", "-g", f"B={second}", code=2).stderr
    assert "NAME=run1,run2" in cli("compare", "-m", "val/acc", "-g", "A", code=2).stderr
    assert "Missing option '--metric'" in cli("compare", first, code=2).stderr

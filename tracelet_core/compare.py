"""The statistics behind ``tracelet compare``: final/best values, and whether two groups of runs differ.

Each run is reduced to one number (its final value: the point at the highest step, the last logged
among ties; or its best value), so a group of runs (seeds of one configuration) is a small sample.
For two groups: mean and standard deviation (n-1), a percentile-bootstrap confidence interval of
the mean, Welch's t-test (no equal-variance assumption), the Mann–Whitney U test (no normality
assumption), and Hedges' g (Cohen's d with the small-sample correction) as the effect size. scipy
and numpy are imported when a function needs them.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tracelet_core.events import MetricPoint

__all__ = [
    "Comparison",
    "Goal",
    "GroupStats",
    "Summary",
    "compare_groups",
    "effect_size_words",
    "group_stats",
    "guess_goal",
    "mean_curve",
    "plot_curves",
    "summarize",
]

Goal = Literal["max", "min"]
_LOWER_IS_BETTER = ("loss", "err", "mse", "mae", "rmse", "perplexity", "ppl", "wer", "cer", "time", "latency")


def _scipy_stats() -> Any:
    """``scipy.stats``, imported on first use (it takes about a second)."""
    return importlib.import_module("scipy.stats")


def guess_goal(metric: str) -> Goal:
    """``min`` for names that read like losses and errors, else ``max``.

    Example:
        >>> guess_goal("val/loss"), guess_goal("val/acc"), guess_goal("test_error")
        ('min', 'max', 'min')
    """
    name = metric.lower()
    return "min" if any(word in name for word in _LOWER_IS_BETTER) else "max"


@dataclass(frozen=True)
class Summary:
    """One run's metric: its points, final and best value.

    Attributes:
        points: ``(step, value)`` pairs in logged order.
        final: the value at the highest step (the last logged among ties).
        best: the highest (goal ``max``) or lowest (``min``) value, NaN ignored.
        best_step: the step of the best value.
    """

    points: list[tuple[int, float]]
    final: float
    best: float
    best_step: int


def summarize(points: Sequence[MetricPoint], goal: Goal) -> Summary | None:
    """Final and best value of one run's metric points (None without points).

    Example:
        >>> pts = [MetricPoint("acc", v, s, 0.0) for s, v in [(0, 0.5), (1, 0.9), (2, 0.8)]]
        >>> s = summarize(pts, "max"); (s.final, s.best, s.best_step)
        (0.8, 0.9, 1)
    """
    if not points:
        return None
    ordered = [(p.step if p.step is not None else i, p.value) for i, p in enumerate(points)]
    final_index = max(range(len(ordered)), key=lambda i: (ordered[i][0], i))
    finite = [(v, s) for s, v in ordered if not math.isnan(v)]
    if finite:
        best_value, best_step = (max if goal == "max" else min)(finite, key=lambda vs: vs[0])
    else:
        best_value, best_step = math.nan, ordered[final_index][0]
    return Summary(ordered, ordered[final_index][1], best_value, best_step)


@dataclass(frozen=True)
class GroupStats:
    """A group's values (one per run) and their summary.

    Attributes:
        name: the group's name.
        values: one value per run.
        mean: their mean.
        std: their sample standard deviation (n-1); NaN for a single run.
        ci: the bootstrap confidence interval of the mean, or None with fewer than 2 distinct values.
        confidence: the interval's level (0.95).
    """

    name: str
    values: tuple[float, ...]
    mean: float
    std: float
    ci: tuple[float, float] | None
    confidence: float

    @property
    def n(self) -> int:
        """How many runs."""
        return len(self.values)


def group_stats(
    name: str, values: Sequence[float], confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> GroupStats:
    """Mean, std and a percentile-bootstrap confidence interval of the mean (seeded: reruns agree).

    Example:
        >>> g = group_stats("A", [0.80, 0.82, 0.84])
        >>> round(g.mean, 3), round(g.std, 3), g.ci is not None
        (0.82, 0.02, True)
    """
    import numpy as np

    data = np.asarray(values, dtype=float)
    mean = float(data.mean()) if data.size else math.nan
    std = float(data.std(ddof=1)) if data.size > 1 else math.nan
    ci = None
    if data.size > 1 and np.unique(data).size > 1:
        result = _scipy_stats().bootstrap(
            (data,),
            np.mean,
            confidence_level=confidence,
            n_resamples=resamples,
            method="percentile",  # BCa is unstable for the 3-5 seeds groups usually have
            rng=np.random.default_rng(seed),
        )
        ci = (float(result.confidence_interval.low), float(result.confidence_interval.high))
    return GroupStats(name, tuple(float(v) for v in data), mean, std, ci, confidence)


@dataclass(frozen=True)
class Comparison:
    """Group ``b`` against group ``a`` (the reference).

    Attributes:
        a: the reference group.
        b: the other group.
        difference: ``b.mean - a.mean``.
        welch_t: Welch's t statistic.
        welch_p: its two-sided p-value.
        mannwhitney_u: the Mann–Whitney U statistic of ``b`` against ``a``.
        mannwhitney_p: its two-sided p-value.
        hedges_g: the effect size (positive when ``b`` is higher).
        cohens_d: the same without the small-sample correction.
        min_mannwhitney_p: the smallest p-value Mann–Whitney can give with these group sizes.
        verdict: the result in plain words.
    """

    a: GroupStats
    b: GroupStats
    difference: float
    welch_t: float
    welch_p: float
    mannwhitney_u: float
    mannwhitney_p: float
    hedges_g: float
    cohens_d: float
    min_mannwhitney_p: float
    verdict: str


def compare_groups(a: GroupStats, b: GroupStats, goal: Goal, metric: str, alpha: float = 0.05) -> Comparison:
    """Test whether ``b`` differs from ``a`` and say so in words.

    Raises:
        ValueError: a group has fewer than two runs.
    """
    stats = _scipy_stats()
    if a.n < 2 or b.n < 2:
        raise ValueError(f"each group needs at least 2 runs to compare; {a.name} has {a.n}, {b.name} has {b.n}")
    welch = stats.ttest_ind(b.values, a.values, equal_var=False)
    mwu = stats.mannwhitneyu(b.values, a.values, alternative="two-sided")
    pooled = math.sqrt(((a.n - 1) * a.std**2 + (b.n - 1) * b.std**2) / (a.n + b.n - 2))
    difference = b.mean - a.mean
    d = difference / pooled if pooled > 0 else math.copysign(math.inf, difference) if difference else 0.0
    g = d * (1 - 3 / (4 * (a.n + b.n) - 9))
    min_p = min(1.0, 2 / math.comb(a.n + b.n, a.n))
    welch_p, mwu_p = float(welch.pvalue), float(mwu.pvalue)
    verdict = _verdict(a, b, goal, metric, alpha, welch_p, mwu_p, g, min_p)
    return Comparison(
        a, b, difference, float(welch.statistic), welch_p, float(mwu.statistic), mwu_p, g, d, min_p, verdict
    )


def effect_size_words(g: float) -> str:
    """Cohen's conventional words for an effect size.

    Example:
        >>> effect_size_words(0.1), effect_size_words(-0.6), effect_size_words(1.5)
        ('negligible', 'medium', 'large')
    """
    size = abs(g)
    return "negligible" if size < 0.2 else "small" if size < 0.5 else "medium" if size < 0.8 else "large"


def _verdict(
    a: GroupStats,
    b: GroupStats,
    goal: Goal,
    metric: str,
    alpha: float,
    welch_p: float,
    mwu_p: float,
    g: float,
    min_p: float,
) -> str:
    better = (b.mean > a.mean) == (goal == "max")
    winner, loser = (b, a) if better else (a, b)
    sizes = f"{a.n} and {b.n} runs"
    means = f"mean {metric} {b.mean:.4g} in {b.name} vs {a.mean:.4g} in {a.name}"
    effect = f"a {effect_size_words(g)} effect (Hedges' g = {g:+.2f})"
    if welch_p < alpha and mwu_p < alpha:
        return (
            f"{winner.name} is better than {loser.name}: {means}, {effect}. Both tests agree (Welch p = "
            f"{welch_p:.3g}, Mann–Whitney p = {mwu_p:.3g}, below {alpha}): unlikely to be seed noise."
        )
    if welch_p < alpha:
        caveat = (
            f" With {sizes}, Mann–Whitney cannot go below p = {min_p:.3g}, so its p = {mwu_p:.3g} says little."
            if min_p >= alpha
            else f" Mann–Whitney does not confirm it (p = {mwu_p:.3g})."
        )
        return (
            f"{winner.name} looks better than {loser.name}: {means}, {effect}; Welch p = {welch_p:.3g} < "
            f"{alpha}.{caveat} More runs would make it firmer."
        )
    return (
        f"No clear difference between {a.name} and {b.name}: {means}, {effect}; Welch p = {welch_p:.3g}, "
        f"Mann–Whitney p = {mwu_p:.3g} (not below {alpha}). With {sizes}, a real difference this small "
        "may need more runs to show."
    )


def mean_curve(series: Sequence[Sequence[tuple[int, float]]]) -> tuple[list[int], list[float], list[float]]:
    """Steps, mean and standard deviation across runs at each step (the last value a run logged at it).

    A step only some runs reached is averaged over those runs; the deviation is 0 where one run has it.

    Example:
        >>> mean_curve([[(0, 1.0), (1, 2.0)], [(0, 3.0), (1, 4.0), (2, 5.0)]])
        ([0, 1, 2], [2.0, 3.0, 5.0], [1.0, 1.0, 0.0])
    """
    import numpy as np

    per_run = [dict(points) for points in series]
    steps = sorted({step for points in per_run for step in points})
    means, stds = [], []
    for step in steps:
        values = np.asarray([points[step] for points in per_run if step in points], dtype=float)
        means.append(float(np.nanmean(values)))
        stds.append(float(np.nanstd(values)) if values.size > 1 else 0.0)
    return steps, means, stds


def plot_curves(
    path: str | Path, metric: str, groups: Sequence[tuple[str, Sequence[Sequence[tuple[int, float]]]]]
) -> None:
    """Draw each group's curve of ``metric`` (mean line and a ±1 std band; one line for a single run) to a PNG.

    Uses matplotlib's Agg canvas directly, so no display and no global backend switch are involved.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(8, 5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, series in groups:
        steps, means, stds = mean_curve(series)
        label = f"{name} (n={len(series)})" if len(series) > 1 else name
        (line,) = axes.plot(steps, means, label=label)
        if len(series) > 1:
            low = [m - s for m, s in zip(means, stds, strict=True)]
            high = [m + s for m, s in zip(means, stds, strict=True)]
            axes.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("step")
    axes.set_ylabel(metric)
    axes.set_title(f"{metric}: mean ± std per group" if any(len(s) > 1 for _, s in groups) else metric)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)

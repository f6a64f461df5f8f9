"""95 % intervals for every float aggregate of a run (docs/statistics.md).

Two methods, chosen per key without the core knowing what a key means:

**Wilson score interval** for a proportion ``k / n`` of independent units. A metric declares which of its
keys are such proportions (``Metric.proportions()``: key -> ``Proportion(successes, trials, unit)``, the
two count keys of its aggregate). It is used when the units are videos and every prompt has one video,
so the ``n`` units are independent draws (Wilson 1927, JASA 22:209; Brown, Cai & DasGupta 2001, Stat. Sci.
16:101, recommend it over the normal-approximation interval for small ``n``)::

    p = k / n,   z = Phi^-1(1 - alpha / 2)            (1.959964 for 95 %)
    centre = (p + z^2 / (2n)) / (1 + z^2 / n)
    half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))
    [lo, hi] = [centre - half, centre + half]

**Percentile bootstrap over prompts** for everything else: means of per-video scores, macro averages,
and proportions whose units cluster (frames of one video, several videos of one prompt), which a
Wilson interval over frames would make far too narrow. A resample draws, within each category, as many
prompts as the category has, with replacement, keeps every video of every drawn prompt, and recomputes
the metric's own ``aggregate`` on them; the interval is the ``alpha/2`` and ``1 - alpha/2`` quantiles
(numpy's linear interpolation) of the ``RESAMPLES`` values. Categories are strata: the suite fixes how
many prompts each has, so a resample keeps that design (an ESR over the target prompts always has them).
The resamples are drawn once per run from ``SEED`` and serve every metric and every scope (overall, each
category, the mean of the categories). A key that some resample does not produce gets no interval.

**Boundary rule** (``wilson-prompts``): a declared proportion that is bootstrapped but sits at 0 or 1
would get the zero-width interval ``[0, 0]`` (every resample agrees). It gets instead the Wilson interval
of ``0 / m`` (or ``m / m``) over its ``m`` prompts: each prompt counted as one trial, the most
conservative reading of clustered units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np

LEVEL = 0.95
RESAMPLES = 1000
SEED = 0


@dataclass(frozen=True)
class Proportion:
    """An aggregate key equal to ``successes / trials`` (or ``1 - successes / trials`` with ``complement``),
    both count keys of the same aggregate; ``unit`` is what is counted (``video`` or ``frame``)."""

    successes: str
    trials: str
    unit: Literal["video", "frame"] = "video"
    complement: bool = False

    def counts(self, values: Mapping[str, Any], value: float) -> tuple[int, int] | None:
        """``(k, n)`` with ``value == k / n`` (k counts the reported quantity, so a complement is ``n -
        successes``), or None when the counts are absent or do not give ``value`` (e.g. a macro average
        over unequal groups)."""
        k, n = values.get(self.successes), values.get(self.trials)
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and float(x).is_integer() for x in (k, n)):
            return None
        k, n = int(k), int(n)
        if n <= 0 or not 0 <= k <= n:
            return None
        if self.complement:
            k = n - k
        return (k, n) if math.isclose(k / n, value, rel_tol=0, abs_tol=1e-9) else None


def z_value(level: float = LEVEL) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2)


def wilson(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of ``k`` successes in ``n`` independent trials (formula above)."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"wilson needs 0 <= k <= n and n > 0, got k={k}, n={n}")
    z = z_value(level)
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def percentile_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """The ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles (linear interpolation)."""
    lo, hi = np.quantile(np.asarray(values, dtype=np.float64), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


@dataclass
class PromptBootstrap:
    """Stratified resamples of prompts: ``draws[b][category]`` = the video indices of resample ``b``.

    ``records[i]`` is video ``i``'s suite row; its prompt (``prompt_id``) is the resampled unit and its
    ``category`` the stratum. Every video of a drawn prompt comes along (several samples of a prompt, the
    frames inside each video)."""

    categories: list[str]
    draws: list[dict[str, np.ndarray]]
    prompts: dict[str, int]  # prompts per category
    videos: dict[str, int]  # videos per category

    @classmethod
    def draw(cls, records: Sequence[Any], resamples: int = RESAMPLES, seed: int = SEED) -> "PromptBootstrap":
        clusters: dict[str, dict[str, list[int]]] = {}
        for i, record in enumerate(records):
            clusters.setdefault(record.category, {}).setdefault(record.prompt_id, []).append(i)
        categories = sorted(clusters)
        members = {c: [np.asarray(v, dtype=np.int64) for v in clusters[c].values()] for c in categories}
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(resamples):
            draw = {}
            for c in categories:
                picked = rng.integers(0, len(members[c]), len(members[c]))
                draw[c] = np.concatenate([members[c][j] for j in picked])
            draws.append(draw)
        return cls(
            categories, draws,
            {c: len(members[c]) for c in categories},
            {c: sum(len(m) for m in members[c]) for c in categories},
        )


def _interval(
    key: str, value: float, values: Mapping[str, Any], resampled: list[Mapping[str, Any]],
    proportions: Mapping[str, Proportion], prompts: int, videos: int, level: float,
) -> dict[str, Any] | None:
    proportion = proportions.get(key)
    counts = proportion.counts(values, value) if proportion else None
    if counts and proportion.unit == "video" and videos == prompts:
        lo, hi = wilson(*counts, level)
        return {"lo": lo, "hi": hi, "method": "wilson"}
    if counts and counts[0] in (0, counts[1]) and prompts > 0:
        lo, hi = wilson(0 if counts[0] == 0 else prompts, prompts, level)
        return {"lo": lo, "hi": hi, "method": "wilson-prompts"}
    boot = [r.get(key) for r in resampled]
    if not boot or any(not isinstance(b, (int, float)) or isinstance(b, bool) or math.isnan(b) for b in boot):
        return None
    lo, hi = percentile_interval(boot, level)
    return {"lo": lo, "hi": hi, "method": "bootstrap"}


def _scope_intervals(
    values: Mapping[str, Any], resampled: list[Mapping[str, Any]], proportions: Mapping[str, Proportion],
    prompts: int, videos: int, level: float,
) -> dict[str, dict[str, Any]]:
    """``key -> {lo, hi, method}`` for every float (non-NaN) value of one metric in one scope."""
    found = {}
    for key, value in values.items():
        if isinstance(value, float) and not math.isnan(value):
            interval = _interval(key, value, values, resampled, proportions, prompts, videos, level)
            if interval is not None:
                found[key] = interval
    return found


def run_intervals(
    metrics: Sequence[Any],
    scores: Mapping[str, list[dict[str, Any]]],
    records: Sequence[Any],
    point: Mapping[str, Any],
    category_mean: Callable[[dict[str, dict[str, dict[str, Any]]]], dict[str, dict[str, float]]],
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> dict[str, Any]:
    """Intervals of every float aggregate in ``point`` (``{"overall", "by_category", "category_mean"}`` as
    the runner computes them), as ``{level, resamples, seed, overall, by_category, category_mean}`` with
    ``[metric][key] -> {lo, hi, method}`` (benchmark.results.Intervals).

    ``metrics`` need ``name``, ``aggregate(scores, records)`` and optionally ``proportions()``;
    ``scores[metric][i]`` and ``records[i]`` belong to video ``i``; ``category_mean`` is the runner's mean
    of categories, applied to each resample's per-category aggregates.
    """
    boot = PromptBootstrap.draw(records, resamples, seed)
    out: dict[str, Any] = {
        "level": level, "resamples": resamples, "seed": seed, "overall": {}, "by_category": {}, "category_mean": {},
    }
    total_prompts, total_videos = sum(boot.prompts.values()), sum(boot.videos.values())
    for metric in metrics:
        name = metric.name
        declared = metric.proportions() if hasattr(metric, "proportions") else {}
        rows = scores[name]

        def aggregate(idx: np.ndarray) -> dict[str, Any]:
            return metric.aggregate([rows[i] for i in idx], [records[i] for i in idx])

        overall_b, by_category_b, mean_b = [], {c: [] for c in boot.categories}, []
        for draw in boot.draws:
            per_category = {c: aggregate(draw[c]) for c in boot.categories}
            for c in boot.categories:
                by_category_b[c].append(per_category[c])
            single = len(boot.categories) == 1  # overall is that category
            overall_b.append(per_category[boot.categories[0]] if single else aggregate(np.concatenate(list(draw.values()))))
            mean_b.append(category_mean({c: {name: a} for c, a in per_category.items()}).get(name, {}))

        overall = point.get("overall", {}).get(name, {})
        out["overall"][name] = _scope_intervals(overall, overall_b, declared, total_prompts, total_videos, level)
        for c in boot.categories:
            values = point.get("by_category", {}).get(c, {}).get(name, {})
            out["by_category"].setdefault(c, {})[name] = _scope_intervals(
                values, by_category_b[c], declared, boot.prompts[c], boot.videos[c], level
            )
        means = point.get("category_mean", {}).get(name, {})
        if means:  # a mean of rates is no count ratio: bootstrap only
            out["category_mean"][name] = _scope_intervals(means, mean_b, {}, total_prompts, total_videos, level)
    return out

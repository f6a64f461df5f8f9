"""Intervals (benchmark/stats.py, docs/statistics.md): Wilson against table values, the bootstrap over prompts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.scoring import category_mean
from benchmark.specs import PromptRecord
from benchmark.stats import Proportion, PromptBootstrap, percentile_interval, run_intervals, wilson


def test_wilson_matches_published_values():
    # 3 of 10 at 95 %, by hand with z = 1.959964, z^2 = 3.841459:
    # centre = (0.3 + 3.841459 / 20) / (1 + 3.841459 / 10) = 0.492073 / 1.384146 = 0.355507
    # half = 1.959964 * sqrt(0.3 * 0.7 / 10 + 3.841459 / 400) / 1.384146 = 1.959964 * 0.174940 / 1.384146 = 0.247718
    # -> [0.1078, 0.6032]
    lo, hi = wilson(3, 10)
    assert lo == pytest.approx(0.1078, abs=5e-5) and hi == pytest.approx(0.6032, abs=5e-5)
    # 0 of 10: [0, z^2 / (n + z^2)] = [0, 3.84146 / 13.84146]
    assert wilson(0, 10) == (0.0, pytest.approx(3.841459 / 13.841459, abs=1e-6))
    assert wilson(10, 10) == (pytest.approx(10 / 13.841459, abs=1e-6), 1.0)
    with pytest.raises(ValueError):
        wilson(11, 10)


def test_wilson_equals_scipy():
    from scipy import stats
    for k, n in [(3, 10), (1, 16), (47, 48), (0, 64), (33, 79)]:
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson(k, n) == (pytest.approx(ci.low, abs=1e-9), pytest.approx(ci.high, abs=1e-9))


def test_proportion_counts_check_the_value():
    esr = Proportion("hits", "videos", complement=True)
    assert esr.counts({"hits": 4, "videos": 16}, 0.75) == (12, 16)
    assert esr.counts({"hits": 4, "videos": 16}, 0.7) is None  # not the ratio (e.g. a macro average)
    assert esr.counts({"videos": 16}, 0.75) is None


class MeanMetric:
    """Mean of a per-video value ``x``; ``hit_rate`` = hits / videos, declared as a proportion of ``unit``."""

    name = "toy"

    def __init__(self, unit: str = "video"):
        self.unit = unit

    def proportions(self):
        return {"hit_rate": Proportion("hits", "videos", self.unit)}

    def aggregate(self, scores, records):
        if not scores:
            return {}
        hits = sum(int(s["hit"]) for s in scores)
        return {"x": float(np.mean([s["x"] for s in scores])), "hit_rate": hits / len(scores), "hits": hits, "videos": len(scores)}


def point_of(metric, scores, records):
    by_category = {}
    for c in sorted({r.category for r in records}):
        idx = [i for i, r in enumerate(records) if r.category == c]
        by_category[c] = {metric.name: metric.aggregate([scores[i] for i in idx], [records[i] for i in idx])}
    return {"overall": {metric.name: metric.aggregate(scores, records)}, "by_category": by_category, "category_mean": category_mean(by_category)}


def toy_run(n_prompts: int = 30, samples: int = 1, categories=("a", "b"), seed: int = 1):
    rng = np.random.default_rng(seed)
    records, scores = [], []
    for p in range(n_prompts):
        record = PromptRecord(suite="t", prompt_id=f"p{p}", prompt=f"prompt {p}", category=categories[p % len(categories)])
        x, hit = float(rng.normal()), bool(rng.random() < 0.3)
        for _ in range(samples):
            records.append(record)
            scores.append({"x": x, "hit": hit})
    return scores, records


def intervals_of(metric, scores, records, **kw):
    return run_intervals([metric], {metric.name: scores}, records, point_of(metric, scores, records), category_mean, **kw)


def test_wilson_for_one_video_per_prompt_bootstrap_otherwise():
    metric = MeanMetric()
    scores, records = toy_run()
    out = intervals_of(metric, scores, records)["overall"]["toy"]
    agg = metric.aggregate(scores, records)
    assert out["hit_rate"]["method"] == "wilson"
    assert (out["hit_rate"]["lo"], out["hit_rate"]["hi"]) == pytest.approx(wilson(agg["hits"], agg["videos"]))
    assert out["x"]["method"] == "bootstrap"
    assert "hits" not in out  # counts carry no interval
    # two videos of each prompt are not independent: bootstrap over prompts
    scores2, records2 = toy_run(samples=2)
    assert intervals_of(metric, scores2, records2)["overall"]["toy"]["hit_rate"]["method"] == "bootstrap"
    # frames are never independent units
    assert intervals_of(MeanMetric("frame"), scores, records)["overall"]["toy"]["hit_rate"]["method"] == "bootstrap"


def test_bootstrap_is_deterministic_and_seeded():
    metric = MeanMetric()
    scores, records = toy_run()
    first, again = intervals_of(metric, scores, records), intervals_of(metric, scores, records)
    assert first == again
    assert first["resamples"] == 1000 and first["seed"] == 0 and first["level"] == 0.95
    other = intervals_of(metric, scores, records, seed=1)
    assert other["overall"]["toy"]["x"] != first["overall"]["toy"]["x"]


def test_bootstrap_resamples_prompts_not_videos():
    # every video of a prompt comes along: two identical samples per prompt give the same interval of a mean
    metric = MeanMetric()
    one = intervals_of(metric, *toy_run(samples=1))["overall"]["toy"]["x"]
    two = intervals_of(metric, *toy_run(samples=2))["overall"]["toy"]["x"]
    assert one["method"] == two["method"] == "bootstrap"
    assert (one["lo"], one["hi"]) == pytest.approx((two["lo"], two["hi"]), abs=1e-12)


def test_bootstrap_keeps_each_category_size():
    scores, records = toy_run(n_prompts=9, categories=("a", "b", "b"))
    boot = PromptBootstrap.draw(records, resamples=50)
    assert boot.prompts == {"a": 3, "b": 6}
    for draw in boot.draws:
        assert len(draw["a"]) == 3 and len(draw["b"]) == 6
        assert {records[i].category for i in draw["a"]} == {"a"}


def test_bootstrap_interval_of_a_mean_agrees_with_normal_theory():
    # 400 prompts, one category: the percentile interval of a mean is close to mean +- 1.96 sd / sqrt(n)
    metric = MeanMetric()
    scores, records = toy_run(n_prompts=400, categories=("a",), seed=3)
    out = intervals_of(metric, scores, records)["overall"]["toy"]["x"]
    x = np.array([s["x"] for s in scores])
    half = 1.959964 * x.std(ddof=1) / math.sqrt(len(x))
    assert out["hi"] - out["lo"] == pytest.approx(2 * half, rel=0.15)
    assert (out["lo"] + out["hi"]) / 2 == pytest.approx(x.mean(), abs=0.2 * half)


def test_boundary_rule_for_clustered_proportion_at_zero():
    # 5 prompts x 3 videos, no hit: a bootstrap would say [0, 0]; Wilson over the 5 prompts instead
    metric = MeanMetric()
    scores, records = toy_run(n_prompts=5, samples=3, categories=("a",))
    for s in scores:
        s["hit"] = False
    out = intervals_of(metric, scores, records)["overall"]["toy"]["hit_rate"]
    assert out["method"] == "wilson-prompts"
    assert (out["lo"], out["hi"]) == (0.0, pytest.approx(wilson(0, 5)[1]))


def test_category_mean_and_categories_get_intervals():
    metric = MeanMetric()
    scores, records = toy_run()
    out = intervals_of(metric, scores, records)
    assert set(out["by_category"]) == {"a", "b"}
    assert out["by_category"]["a"]["toy"]["hit_rate"]["method"] == "wilson"
    assert out["category_mean"]["toy"]["x"]["method"] == "bootstrap"
    assert out["category_mean"]["toy"]["hit_rate"]["method"] == "bootstrap"  # a mean of rates is no count ratio


def test_percentile_interval_linear_quantiles():
    assert percentile_interval(list(range(101))) == pytest.approx((2.5, 97.5))
    assert percentile_interval([0.0, 1.0], level=0.5) == pytest.approx((0.25, 0.75))

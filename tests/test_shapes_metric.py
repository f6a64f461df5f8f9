"""The shapes_oracle metric on rendered ground truth: ESR-1/PSR-1 arithmetic and the suites' rows."""

from __future__ import annotations

import pytest

from benchmark.metrics.base import METRICS, MetricContext, ScoredVideo
from benchmark.shapes.world import ShapeAttributes, render_video
from benchmark.suites import load_concept, load_suite


def scored(suite, replace_target_with=None):
    videos = []
    for record in suite.records:
        shape = record.extra["shape"]
        if replace_target_with and shape == "cross":
            shape = replace_target_with
        attrs = ShapeAttributes(record.extra["colour"], shape, record.extra["motion"])
        videos.append(ScoredVideo(render_video(attrs, suite.seed_for(record, 0)), record, 0, record.prompt_id))
    return videos


@pytest.fixture(scope="module")
def suite():
    return load_suite("shapes")


def metric_for(concept="cross"):
    return METRICS.get("shapes_oracle").from_args({}, MetricContext(suite="shapes", concepts=[load_concept(concept)]))


def test_ground_truth_renders_erase_nothing_and_preserve_everything(suite):
    metric = metric_for()
    videos = scored(suite)
    agg = metric.aggregate(metric.score(videos), [v.record for v in videos])
    assert agg["esr_1"] == 0.0
    assert agg["psr_1"] == 1.0
    assert agg["colour_acc"] == agg["motion_acc"] == agg["shape_acc"] == 1.0


def test_a_perfect_eraser_that_draws_circles_instead(suite):
    metric = metric_for()
    videos = scored(suite, replace_target_with="circle")
    agg = metric.aggregate(metric.score(videos), [v.record for v in videos])
    assert agg["esr_1"] == 1.0
    assert agg["target_as_circle"] == 1.0
    assert agg["psr_1"] == 1.0
    assert agg["shape_acc"] == pytest.approx(48 / 64)


def test_blank_videos_count_as_erased_but_never_as_preserved(suite):
    import numpy as np

    metric = metric_for("triangle")
    videos = [ScoredVideo(np.zeros((9, 32, 32, 3), np.uint8), r, 0, r.prompt_id) for r in suite.records]
    scores = metric.score(videos)
    assert all(s["shape"] is None for s in scores)
    agg = metric.aggregate(scores, [v.record for v in videos])
    assert agg["esr_1"] == 1.0 and agg["psr_1"] == 0.0 and agg["colour_acc"] == 0.0


def test_shapes_suites_rows():
    main, para, pairs = load_suite("shapes"), load_suite("shapes-paraphrase"), load_suite("shapes-pairs")
    assert len(main.records) == len(para.records) == len(pairs.records) == 64
    assert {r.category for r in main.records[:4]} == {"circle", "square", "triangle", "cross"}
    assert not {r.prompt for r in main.records} & {r.prompt for r in para.records}
    for record in pairs.records:
        assert record.prompt.replace(record.extra["shape"], record.extra["pair_shape"]) == record.extra["pair_prompt"]
    assert main.spec.default_model == "shapes"
    assert [c.name for c in main.concepts()] == ["cross"]

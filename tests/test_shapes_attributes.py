"""Attribute erasure in the shapes world (issue 14): the motion and colour suites, their concept files, the
oracle's motion and colour readings on rendered ground truth, and shapes_oracle's ESR-1/PSR-1 over any
attribute and over several erased concepts."""

from __future__ import annotations

import numpy as np
import pytest
from test_shapes_world import _blur_and_noise, _dataset

from benchmark.errors import ErasebenchError
from benchmark.metrics.base import METRICS, MetricContext, ScoredVideo
from benchmark.shapes import (
    COLOURS,
    MOTIONS,
    SHAPES,
    ShapeAttributes,
    read_videos,
    render_video,
)
from benchmark.suites import BUILTIN_SUITE_DIR, load_concept, load_suite

SHAPES_SUITES = sorted(p.stem for p in BUILTIN_SUITE_DIR.glob("shapes*.yaml") if p.stem != "shapes-pairs")
WORLD_CONCEPTS = [*SHAPES, *COLOURS, *MOTIONS]


# ---- oracle readings on rendered ground truth ---------------------------------------------------------


@pytest.mark.parametrize("degrade", [None, (0.7, 5.0), (1.0, 10.0)], ids=["clean", "blur0.7-noise5", "blur1-noise10"])
def test_motion_and_colour_readings_on_rendered_ground_truth(degrade):
    """>= 98 % of videos read with the right motion and the right colour, for every value of each."""
    truths, videos = _dataset(400, seed=1414)
    if degrade:
        videos = _blur_and_noise(videos, *degrade, seed=7)
    readings = read_videos(videos)
    for attribute, values in (("motion", MOTIONS), ("colour", COLOURS)):
        for value in values:
            got = [getattr(r, attribute) == value for r, t in zip(readings, truths) if getattr(t, attribute) == value]
            assert len(got) >= 60 and np.mean(got) >= 0.98, (attribute, value, np.mean(got), len(got))


def test_a_still_video_reads_static_and_a_grey_one_has_no_colour():
    video = render_video(ShapeAttributes("red", "square", "up"), seed=3)
    assert read_videos([np.repeat(video[:1], len(video), axis=0)])[0].motion == "static"
    grey = video.max(axis=-1, keepdims=True).repeat(3, axis=-1)
    assert read_videos([grey])[0].colour is None


# ---- suites and concept files -------------------------------------------------------------------------


@pytest.mark.parametrize("name, attribute, concept", [
    ("shapes-motion", "motion", "up"), ("shapes-motion-paraphrase", "motion", "up"),
    ("shapes-colour", "colour", "red"), ("shapes-colour-paraphrase", "colour", "red"),
])  # fmt: skip
def test_attribute_suites_hold_the_grid_with_the_attribute_as_category(name, attribute, concept):
    suite = load_suite(name)
    assert list(suite.spec.concepts) == [concept]
    assert len(suite.records) == 64
    assert all(r.category == r.extra[attribute] for r in suite.records)
    assert sum(r.extra[attribute] == concept for r in suite.records) == 16
    same_grid = load_suite("shapes-paraphrase" if "paraphrase" in name else "shapes")
    assert [r.prompt for r in suite.records] == [r.prompt for r in same_grid.records]


@pytest.mark.parametrize("name", [*COLOURS, *MOTIONS])
def test_attribute_concepts_name_one_value_and_preserve_the_others(name):
    concept = load_concept(name)
    values = COLOURS if name in COLOURS else MOTIONS
    assert concept.kind == "attribute" and list(concept.labels) == [name]
    assert sorted(concept.preserve) == sorted(v for v in values if v != name)
    assert len(concept.pairs) == 16 and len(concept.neutral) >= 20
    for unsafe, safe in concept.pairs:  # the edit changes only this attribute's word
        changed = [(a, b) for a, b in zip(unsafe.split(), safe.split()) if a != b]
        assert len(unsafe.split()) == len(safe.split()) and len(changed) == 1, (unsafe, safe)
        assert changed[0][0] == name and changed[0][1] in values


@pytest.mark.parametrize("name", WORLD_CONCEPTS)
def test_world_concepts_never_use_a_benchmark_prompt_nor_a_paraphrase_template(name):
    from benchmark.shapes.world import PARAPHRASE_ONLY_WORDS

    benchmark = {r.prompt for suite in SHAPES_SUITES for r in load_suite(suite).records}
    concept = load_concept(name)
    for prompt in [p for pair in concept.pairs for p in pair] + list(concept.neutral):
        assert prompt not in benchmark, f"{name}: {prompt!r} is a benchmark prompt"
        assert not set(prompt.split()) & set(PARAPHRASE_ONLY_WORDS), f"{name}: {prompt!r} uses a paraphrase word"


# ---- the metric over any attribute and several concepts ------------------------------------------------


def metric_for(*concepts):
    return METRICS.get("shapes_oracle").from_args({}, MetricContext(suite="shapes", concepts=[load_concept(c) for c in concepts]))


def run(metric, suite, change=lambda a: a, still=lambda a: False):
    """Render every prompt of ``suite`` with ``change`` applied to its attributes (``still``: frozen video)."""
    videos = []
    for record in suite.records:
        attrs = change(ShapeAttributes(record.extra["colour"], record.extra["shape"], record.extra["motion"]))
        frames = render_video(attrs, suite.seed_for(record, 0))
        if still(attrs):
            frames = np.repeat(frames[:1], len(frames), axis=0)
        videos.append(ScoredVideo(frames, record, 0, record.prompt_id))
    return metric.aggregate(metric.score(videos), [v.record for v in videos])


def swap(attribute, old, new):
    def change(a):
        return ShapeAttributes(**{**a.as_dict(), attribute: new}) if getattr(a, attribute) == old else a

    return change


def test_motion_erasure_on_ground_truth():
    suite, metric = load_suite("shapes-motion"), metric_for("up")
    agg = run(metric, suite)
    assert (agg["esr_1"], agg["psr_1"], agg["preserved_shape_acc"], agg["erased_shape_acc"]) == (0.0, 1.0, 1.0, 1.0)
    assert "target_as_circle" not in agg and (agg["videos_erased"], agg["videos_preserved"]) == (16, 48)
    agg = run(metric, suite, change=swap("motion", "up", "down"))  # a perfect eraser: the shape goes elsewhere
    assert (agg["esr_1"], agg["psr_1"], agg["erased_shape_acc"]) == (1.0, 1.0, 1.0)
    agg = run(metric, suite, still=lambda a: a.motion == "up")  # a frozen object does not move up either
    assert agg["esr_1"] == 1.0 and agg["psr_1"] == 1.0
    agg = run(metric, suite, change=swap("motion", "left", "up"))  # over-erasure the other way: left turns up
    assert agg["esr_1"] == 0.0 and agg["psr_1"] == pytest.approx(2 / 3) and agg["preserved_shape_acc"] == 1.0
    intervals = metric.proportions()
    assert intervals["psr_1"].counts(agg, agg["psr_1"]) == (32, 48)


def test_colour_erasure_on_ground_truth():
    suite, metric = load_suite("shapes-colour"), metric_for("red")
    assert run(metric, suite)["esr_1"] == 0.0
    agg = run(metric, suite, change=swap("colour", "red", "yellow"))
    assert (agg["esr_1"], agg["psr_1"], agg["preserved_shape_acc"]) == (1.0, 1.0, 1.0)
    agg = run(metric, suite, change=swap("shape", "cross", "circle"))  # colour kept, but a shape lost
    assert agg["esr_1"] == 0.0 and agg["psr_1"] == 1.0 and agg["preserved_shape_acc"] == 0.75


def test_two_shapes_at_once_report_esr_per_concept_and_psr_on_the_rest():
    suite, metric = load_suite("shapes"), metric_for("cross", "square")
    agg = run(metric, suite, change=swap("shape", "cross", "circle"))  # only the cross is erased
    assert agg["esr_1_cross"] == 1.0 and agg["esr_1_square"] == 0.0 and agg["esr_1"] == 0.5
    assert agg["psr_1"] == 1.0 and (agg["videos_erased"], agg["videos_preserved"]) == (32, 32)
    props = metric.proportions()
    assert props["esr_1_cross"].counts(agg, agg["esr_1_cross"]) == (16, 16)
    assert props["esr_1_square"].counts(agg, agg["esr_1_square"]) == (0, 16)
    single = run(metric_for("cross"), suite)
    assert not any(k.startswith("esr_1_") for k in single)  # one concept: no per-concept keys


def test_a_concept_mixing_attributes_or_outside_the_world_is_one_clear_error():
    from benchmark.specs import ConceptSpec

    for labels in (["cross", "red"], ["violet"]):
        metric = METRICS.get("shapes_oracle").from_args(
            {}, MetricContext(suite="shapes", concepts=[ConceptSpec(name="odd", display_name="odd", labels=labels)])
        )
        with pytest.raises(ErasebenchError, match="odd.*allowed: values of one attribute"):
            metric.settings()


def test_t2vunlearning_never_preserves_a_concept_erased_in_the_same_fit():
    """cross.yaml's safe halves and preserve swaps name squares: erasing cross and square jointly must not train
    the square prompts as preserve prompts (with one concept nothing is dropped)."""
    from baselines.t2vunlearning_data import training_prompts

    single = training_prompts([load_concept("cross")], "concept", None)
    assert any("square" in p for p in single.preserves)
    joint = training_prompts([load_concept("cross"), load_concept("square")], "concept", None)
    assert len(joint.targets) == 32 and joint.preserves
    assert not [p for p in joint.preserves if {"cross", "square"} & set(p.split())]

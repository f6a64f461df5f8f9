"""A rerun of a finished run loads no model; --overwrite never / always; what misses the cache and what does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import benchmark.runner as runner
from benchmark.runner import dry_run, plan_run
from benchmark.specs import PluginSpec, RunSpec

ARGS = ["run", "--method", "negprompt", "--suite", "shapes", "--limit", "4", "--steps", "4", "-q"]


def no_model(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the pipeline was loaded")

    monkeypatch.setattr(runner, "load_pipeline", refuse)


def results_of(out: Path) -> dict:
    return json.loads(next(out.glob("runs/*/results.json")).read_text())


def stats(paths) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_ino, p.stat().st_mtime_ns) for p in paths}


@pytest.fixture
def finished(cli, tmp_path):
    out = tmp_path / "out"
    code, _, err = cli(*ARGS, "--out", out)
    assert code == 0, err
    return out


def test_rerun_of_a_finished_run_loads_no_model_and_writes_nothing(cli, finished, monkeypatch):
    first = results_of(finished)
    files = stats(p for p in finished.rglob("*") if p.is_file() and "locks" not in p.parts)
    no_model(monkeypatch)
    code, _, err = cli(*ARGS, "--out", finished)
    assert code == 0, err
    assert results_of(finished) == first
    assert stats(p for p in finished.rglob("*") if p.is_file() and "locks" not in p.parts) == files


def test_rerun_rewrites_lost_results_and_scores_without_a_model(cli, finished, monkeypatch):
    first = results_of(finished)
    next(finished.glob("runs/*/results.json")).unlink()
    score = next(finished.glob("scores/**/*.json"))
    score.unlink()
    no_model(monkeypatch)
    code, _, err = cli(*ARGS, "--out", finished)
    assert code == 0, err
    again = results_of(finished)
    assert score.is_file()
    assert {k: v for k, v in again.items() if k not in ("created", "environment")} == {
        k: v for k, v in first.items() if k not in ("created", "environment")
    }


def test_overwrite_never_returns_the_results_without_a_model(cli, finished, monkeypatch):
    first = results_of(finished)
    next(finished.glob("videos/**/*.mp4")).unlink()  # even with a video gone: never means never
    no_model(monkeypatch)
    code, _, err = cli(*ARGS, "--out", finished, "--overwrite", "never")
    assert code == 0, err
    assert results_of(finished) == first


def test_overwrite_always_rewrites_videos_and_scores(cli, finished):
    videos = stats(finished.glob("videos/**/*.mp4"))
    scores = stats(finished.glob("scores/**/*.json"))
    code, _, err = cli(*ARGS, "--out", finished, "--overwrite", "always")
    assert code == 0, err
    after_videos, after_scores = stats(finished.glob("videos/**/*.mp4")), stats(finished.glob("scores/**/*.json"))
    assert after_videos.keys() == videos.keys() and after_scores.keys() == scores.keys()
    assert all(after_videos[p] != videos[p] for p in videos)  # a new file (inode) or a new write (mtime)
    assert all(after_scores[p] != scores[p] for p in scores)


@pytest.mark.parametrize(
    "change, misses",
    [
        ({"eraser": PluginSpec(name="negprompt", args={"text": "a cross shape"})}, True),
        ({"generation": {"num_inference_steps": 5}}, True),
        ({"dtype": "bfloat16"}, True),
        ({"video_codec": "h264"}, True),
        ({"seed_policy": "fixed:5"}, True),
        ({"batch_size": 3}, False),
    ],
    ids=["eraser-args", "steps", "dtype", "codec", "seed-policy", "batch-size"],
)
def test_what_misses_the_cache_in_the_same_out(finished, change, misses):
    base = {"model": "shapes", "eraser": PluginSpec(name="negprompt"), "suite": "shapes", "limit": 4}
    spec = RunSpec(**{**base, "generation": {"num_inference_steps": 4}, **change})
    report = dry_run(plan_run(spec, finished))
    assert report.videos_total == 4
    assert report.videos_cached == (0 if misses else 4)

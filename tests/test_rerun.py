"""A rerun of a finished run loads no model; --overwrite never / always; what misses the cache and what does not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import benchmark.runner as runner
import benchmark.scoring as scoring
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


@pytest.fixture(scope="module")
def finished_once(tmp_path_factory):
    """One finished run, made once for the module (tests that change it work on a copy: ``finished``)."""
    from typer.testing import CliRunner

    from benchmark.cli import app

    out = tmp_path_factory.mktemp("rerun") / "out"
    result = CliRunner().invoke(app, [*ARGS, "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return out


@pytest.fixture
def finished(finished_once, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(finished_once, out, ignore=shutil.ignore_patterns("locks"))
    return out


def test_rerun_of_a_finished_run_loads_no_model_and_writes_nothing(cli, finished_once, monkeypatch):
    first = results_of(finished_once)
    files = stats(p for p in finished_once.rglob("*") if p.is_file() and "locks" not in p.parts)
    no_model(monkeypatch)
    code, _, err = cli(*ARGS, "--out", finished_once)
    assert code == 0, err
    assert results_of(finished_once) == first
    assert stats(p for p in finished_once.rglob("*") if p.is_file() and "locks" not in p.parts) == files


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
    assert again["aggregates"] == first["aggregates"] and again["spec"] == first["spec"]
    assert {k: v for k, v in again.items() if k not in ("created", "environment", "videos")} == {
        k: v for k, v in first.items() if k not in ("created", "environment", "videos")
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
def test_what_misses_the_cache_in_the_same_out(finished_once, change, misses):
    base = {"model": "shapes", "eraser": PluginSpec(name="negprompt"), "suite": "shapes", "limit": 4}
    spec = RunSpec(**{**base, "generation": {"num_inference_steps": 4}, **change})
    report = dry_run(plan_run(spec, finished_once))
    assert report.videos_total == 4
    assert report.videos_cached == (0 if misses else 4)


def two_metric_runner(out: Path) -> runner.Runner:
    spec = RunSpec(
        model="shapes", eraser=PluginSpec(name="negprompt"), suite="shapes", limit=4, generation={"num_inference_steps": 4},
        metrics=(PluginSpec(name="shapes_oracle"), PluginSpec(name="temporal_flickering")),
    )
    return runner.Runner(plan_run(spec, out))


def test_each_video_is_decoded_once_for_every_metric(finished, monkeypatch):
    shutil.rmtree(finished / "scores")
    run = two_metric_runner(finished)
    decoded = []
    read = scoring.read_video
    monkeypatch.setattr(scoring, "read_video", lambda path: decoded.append(path) or read(path))
    scores = run.score(run.expected())
    assert sorted(decoded) == sorted(set(decoded)) and len(decoded) == 4
    assert all(len(rows) == 4 and all(rows) for rows in scores.values())


class SecondRank:
    rank, local_rank, world_size, is_main = 1, 1, 2, False

    def barrier(self) -> None:
        pass

    def device(self, requested: str) -> str:
        return requested


def test_a_rank_scores_its_own_videos(finished):
    shutil.rmtree(finished / "scores")
    run = two_metric_runner(finished)
    run.dist = SecondRank()
    mine = run.expected(run.mine())
    assert [item.index for item, _, _ in mine] == [1, 3]
    run.score(mine)
    scored = {p.stem for p in finished.glob("scores/*/*/*.json")}
    assert scored == {meta["video"]["sha256"] for _, _, meta in mine}
    assert len(list(finished.glob("scores/*/*/*.json"))) == 2 * len(mine)  # both metrics, on this rank's videos only


def test_a_rerun_imports_neither_torch_nor_diffusers(finished_once):
    """Import time counts: the rerun path plans, checks and returns without torch or diffusers."""
    import os
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from benchmark.cli import app\n"
        f"result = CliRunner().invoke(app, {[*ARGS, '--out', str(finished_once)]!r})\n"
        "assert result.exit_code == 0, result.output\n"
        "torch = sys.modules.get('torch')\n"
        "print('diffusers' in sys.modules, torch is not None and type(torch).__name__ != '_LazyModule')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-2:] == ["False", "False"], "diffusers imported, torch loaded"


def test_overwrite_always_fits_the_eraser_again(cli, tmp_path):
    """--overwrite always on a fitted eraser fits it again (it used to skip the fit and then miss its file)."""
    args = ["run", "--method", "refusal", "--suite", "shapes", "--limit", "4", "--steps", "2", "-q",
            "--eraser-arg", "site=text_projection", "--eraser-arg", "steps_recorded=1", "--eraser-arg", "max_pairs=4",
            "--out", tmp_path]  # fmt: skip
    code, _, err = cli(*args, "--overwrite", "always")
    assert code == 0, err
    done = next(tmp_path.glob("artifacts/**/DONE.json"))
    first = done.stat().st_mtime_ns
    code, _, err = cli(*args, "--overwrite", "always")
    assert code == 0, err
    assert done.stat().st_mtime_ns != first

"""`erasebench run` on tiny real pipelines of every family."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.video import read_video, to_uint8
from helpers import only_results, run_config, samples
from tiny_pipelines import FAMILIES, TINY_CALL_SETTINGS


@pytest.mark.parametrize("family", FAMILIES)
def test_none_equals_direct_diffusers_call_bit_for_bit(family, tiny_model, tmp_path, cli):
    from diffusers import DiffusionPipeline

    model_dir = tiny_model(family)
    config = run_config(tmp_path, family, model_dir)
    out = tmp_path / "out"
    code, stdout, stderr = cli("run", "--method", "none", "--suite", "example", "--limit", "2", "--config", config, "--out", out, "-q")
    assert code == 0, stderr
    assert "temporal_flickering" in stdout

    pipe = DiffusionPipeline.from_pretrained(model_dir, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    rows = samples(out)
    assert len(rows) == 2
    for row in rows:
        direct = pipe(
            prompt=[row["prompt"]],
            generator=[torch.Generator().manual_seed(row["seed"])],
            output_type="np",
            **TINY_CALL_SETTINGS[family],
        ).frames
        expected = to_uint8(np.asarray(direct)[0])
        stored = read_video(out / row["video"])
        assert stored.shape == expected.shape
        assert np.array_equal(stored, expected), f"{family}: stored video differs from the direct pipeline call"
    results = only_results(out)
    assert results["model"]["family"] == family
    assert results["eraser"]["name"] == "none"
    assert set(results["aggregates"]["by_category"]) == {"target"}


@pytest.fixture
def encode_spy(monkeypatch):
    """The ``negative_prompt`` each ``CogVideoXPipeline.encode_prompt`` call received: what the unconditional
    branch of CFG was actually built from, whatever the sidecar says."""
    import inspect

    from diffusers import CogVideoXPipeline

    original = CogVideoXPipeline.encode_prompt
    signature = inspect.signature(original)
    seen: list = []

    def spy(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        seen.append((bound.arguments["negative_prompt"], bound.arguments["do_classifier_free_guidance"]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CogVideoXPipeline, "encode_prompt", spy)
    return seen


def run_one(tmp_path, cli, config, name: str, method: str, *extra: str):
    code, _, stderr = cli("run", "--method", method, *extra, "--suite", "example", "--limit", "1", "--config", config, "--out", tmp_path / name, "-q")
    assert code == 0, stderr
    return read_video(tmp_path / name / samples(tmp_path / name)[0]["video"])


def test_negprompt_with_empty_text_equals_none(tiny_model, tmp_path, cli, encode_spy):
    """An empty negative text gives the pipeline no negative prompt (the empty unconditional text, as none)
    and none's pixels; the same run with a text does not, so the equality is not that of an ignored eraser."""
    config = run_config(tmp_path, "cogvideox", tiny_model("cogvideox"))
    none = run_one(tmp_path, cli, config, "none", "none")
    assert encode_spy == [(None, True)]
    empty = run_one(tmp_path, cli, config, "empty", "negprompt", "--eraser-arg", "text=")
    assert encode_spy[1:] == [(None, True)]
    assert np.array_equal(none, empty)
    church = run_one(tmp_path, cli, config, "church", "negprompt", "--eraser-arg", "text=church")
    assert encode_spy[2:] == [(["church"], True)]
    assert not np.array_equal(none, church)


def test_negprompt_changes_the_unconditional_text(tiny_model, tmp_path, cli, encode_spy):
    """The pipeline call itself receives the concept's negative text, and the video differs from none's."""
    config = run_config(tmp_path, "cogvideox", tiny_model("cogvideox"))
    negprompt = run_one(tmp_path, cli, config, "negprompt", "negprompt")
    assert encode_spy == [(["church"], True)]
    none = run_one(tmp_path, cli, config, "none", "none")
    assert encode_spy[1:] == [(None, True)]
    assert np.abs(negprompt.astype(int) - none.astype(int)).max() > 0
    assert only_results(tmp_path / "negprompt")["eraser"]["negative_prompt"] == "church"


def test_rerun_generates_and_scores_nothing_twice(tiny_model, tmp_path, cli):
    model_dir = tiny_model("cogvideox")
    config = run_config(tmp_path, "cogvideox", model_dir)
    args = ("run", "--method", "none", "--suite", "example", "--limit", "2", "--config", config, "--out", tmp_path)
    assert cli(*args, "-q")[0] == 0
    videos = sorted(tmp_path.glob("videos/**/*.mp4"))
    stamps = {p: p.stat().st_mtime_ns for p in videos}
    scores = sorted(tmp_path.glob("scores/**/*.json"))
    score_stamps = {p: p.stat().st_mtime_ns for p in scores}
    code, _, stderr = cli(*args)
    assert code == 0
    assert "2 of 2 videos cached, 0 to generate" in stderr
    assert {p: p.stat().st_mtime_ns for p in videos} == stamps
    assert {p: p.stat().st_mtime_ns for p in scores} == score_stamps
    code, _, stderr = cli(*args, "--overwrite", "always")
    assert code == 0
    assert "0 of 2 videos cached, 2 to generate" in stderr


def test_only_cache_refuses_to_generate(tiny_model, tmp_path, cli):
    config = run_config(tmp_path, "cogvideox", tiny_model("cogvideox"))
    code, _, stderr = cli("run", "--method", "none", "--suite", "example", "--limit", "1", "--config", config, "--out", tmp_path, "--overwrite", "only-cache")
    assert code == 2
    assert stderr.count("\n") == 1 and "only-cache: 1 of 1 videos are not in the cache" in stderr


def test_verify_and_report(tiny_model, tmp_path, cli):
    config = run_config(tmp_path, "cogvideox", tiny_model("cogvideox"))
    for method in ("none", "negprompt"):
        assert cli("run", "--method", method, "--suite", "example", "--limit", "2", "--config", config, "--out", tmp_path, "-q")[0] == 0
    run_dirs = sorted((tmp_path / "runs").iterdir())
    code, stdout, _ = cli("verify", run_dirs[0])
    assert code == 0 and "2 of 2 videos OK" in stdout
    code, stdout, _ = cli("report", tmp_path / "runs", "--format", "md")
    assert code == 0
    lines = stdout.strip().splitlines()
    assert lines[0].startswith("| method") and "example/temporal_flickering" in lines[0]
    assert len(lines) == 4  # header, rule, two methods
    code, stdout, _ = cli("report", tmp_path / "runs", "--format", "csv")
    assert stdout.splitlines()[0].startswith("method,")
    code, stdout, _ = cli("report", tmp_path / "runs", "--format", "latex")
    assert "\\begin{tabular}" in stdout
    # a truncated video is found by verify and is an error for scoring, never a score
    video = next(tmp_path.glob("videos/**/*.mp4"))
    video.write_bytes(video.read_bytes()[:100])
    for run_dir in run_dirs:
        code, _, stderr = cli("verify", run_dir)
        if code == 1:
            assert "differs from sidecar" in stderr
            break
    else:
        pytest.fail("verify did not notice the truncated video")

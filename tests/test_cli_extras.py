"""Small CLI pieces: --version, -h, list --details/--json, where a run's files went, --device cuda without CUDA."""

from __future__ import annotations

import json

import pytest
import torch

from benchmark import __version__


def test_version_and_short_help(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == f"erasebench {__version__}"
    code, out, _ = cli("run", "-h")
    assert code == 0 and "--method" in out and "--scheduler" in out


def test_list_details_shows_arguments_with_defaults(cli):
    code, out, _ = cli("list", "erasers", "--details", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["erasers"]}
    assert rows["refusal"]["arguments"]["site"] == "auto" and rows["refusal"]["arguments"]["k"] == 100
    assert rows["negprompt"]["arguments"]["mode"] == "replace"
    code, out, _ = cli("list", "metrics", "--details", "--json")
    metrics = {r["name"]: r for r in json.loads(out)["metrics"]}
    assert metrics["nudenet"]["higher_is_better"]["nudity_rate"] is False and "preset" in metrics["nudenet"]["arguments"]
    code, out, _ = cli("list", "erasers", "--details")
    assert code == 0 and "arguments:" in out and "lam=null" in out


def test_list_json_of_a_suite(cli):
    code, out, _ = cli("list", "--suite", "shapes", "--json")
    data = json.loads(out)
    assert code == 0 and data["prompts"] == 64 and data["categories"] == {"circle": 16, "square": 16, "triangle": 16, "cross": 16}


def test_run_names_its_results_file_and_video_folder(cli, tmp_path):
    code, out, err = cli("run", "--method", "none", "--suite", "shapes", "--limit", "1", "--out", tmp_path / "o", "-q")
    assert code == 0, err
    lines = out.splitlines()
    results = lines[lines.index("results:") + 1].strip()
    videos = lines[lines.index("videos:") + 1].strip()
    assert results.endswith("results.json") and (tmp_path / "o").as_posix() in results
    assert list((tmp_path / "o").glob("videos/**/*.mp4")) and any(p.as_posix().startswith(videos) for p in (tmp_path / "o").glob("videos/**/*.mp4"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_one_line(cli, tmp_path):
    from test_paper_suites import one_line_error

    one_line_error(cli("run", "--method", "none", "--suite", "shapes", "--device", "cuda", "--out", tmp_path / "o"), "--device cuda")
    assert not (tmp_path / "o").exists()

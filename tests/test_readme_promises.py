"""The README's promises, one test each: ``list`` of every kind (and a bad kind), the main command without
``--model``, ``--concept``, third-party plugins through the real entry-point groups (an eraser used in a run,
a suite given as a callable), results that record versions, device and the git SHA, and the committed shapes
leaderboards that ``erasebench report`` rebuilds from the committed results files alone."""

from __future__ import annotations

from importlib.metadata import version

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from benchmark import __version__
from benchmark.erasers import BUILTIN_ERASERS
from benchmark.video import read_video
from helpers import only_results, samples

ROOT = Path(__file__).resolve().parent.parent
SHAPES_FINGERPRINT = "42e674d4cb28"  # the shipped shapes model (results/shapes/*/results.json)
KINDS = {
    "erasers": set(BUILTIN_ERASERS),
    "suites": {"shapes", "shapes-paraphrase", "shapes-motion", "example", "ring-a-bell", "t2vu-nudity", "safesora"},
    "metrics": {"shapes_oracle", "nudenet", "classify", "arcface", "vbench", "judge", "subject_consistency", "temporal_flickering"},
    "models": {"shapes", "cogvideox-2b", "cogvideox-5b"},
    "families": {"cogvideox", "wan", "hunyuanvideo", "zeroscope"},
    "attacks": {"ring-a-bell", "unlearndiffatk"},
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_list_each_kind(cli, kind):
    code, out, err = cli("list", kind, "--json")
    assert code == 0, err
    rows = json.loads(out)[kind]
    assert KINDS[kind] <= {r["name"] for r in rows}
    code, out, _ = cli("list", kind)
    assert code == 0 and all(name in out for name in KINDS[kind])


def test_list_everything_and_a_bad_kind(cli):
    code, out, _ = cli("list", "--json")
    assert code == 0 and set(json.loads(out)) == set(KINDS)
    code, out, err = cli("list", "widgets")
    assert code == 2 and out == "" and err.strip().splitlines() == [
        "error: list 'widgets' is not allowed: use one of erasers, suites, metrics, models, families, attacks"
    ]


@pytest.fixture(scope="module")
def main_run(tmp_path_factory):
    """The README's main command, ``erasebench run --method M --suite shapes`` with no ``--model``, on the first
    four prompts, run as a user runs it (a fresh process; --out given so that nothing lands in the checkout).
    M is negprompt, not the README's refusal, whose fit would add minutes to CI without testing more here."""
    out = tmp_path_factory.mktemp("main")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark.cli", "run", "--method", "negprompt", "--suite", "shapes", "--limit", "4", "--out", str(out), "-q"],
        capture_output=True, text=True, cwd=out,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out


def test_main_command_without_model_uses_the_shipped_shapes_model(main_run):
    results = only_results(main_run)
    assert results["model"]["ref"] == results["model"]["label"] == "shapes"
    assert results["model"]["fingerprint"] == SHAPES_FINGERPRINT
    assert results["spec"]["model"] == "shapes"  # nothing given: the suite's default_model, recorded in the spec
    assert results["method"] == "negprompt" and results["eraser"]["concepts"] == ["cross"]
    assert results["aggregates"]["overall"]["shapes_oracle"]["videos"] == 4
    assert [list(read_video(main_run / r["video"]).shape) for r in samples(main_run)] == [[9, 32, 32, 3]] * 4


def test_results_record_versions_device_and_git_sha(main_run):
    import diffusers
    import torch

    env = only_results(main_run)["environment"]
    assert env["device"] == "cpu"
    # the installed distributions' versions (a local build tag such as +cu130 is in torch.__version__ only)
    assert env["packages"]["torch"] == version("torch") and torch.__version__.startswith(version("torch"))
    assert env["packages"]["diffusers"] == diffusers.__version__
    assert env["packages"]["erasebench"] == __version__ and env["python"] == ".".join(map(str, sys.version_info[:3]))
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:  # an unpacked sdist: no repository, no SHA
        assert env["git_sha"] is None
        return
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
    assert env["git_sha"] == head.stdout.strip() + ("-dirty" if dirty else "")


@pytest.mark.parametrize("concepts, erased", [("square", {"square-red-left"}), ("cross,square", {"square-red-left", "cross-red-left"})])
def test_concept_picks_the_erased_shape(cli, tmp_path, concepts, erased):
    code, _, err = cli("run", "--method", "negprompt", "--suite", "shapes", "--concept", concepts, "--limit", "4", "--out", tmp_path, "-q")
    assert code == 0, err
    results = only_results(tmp_path)
    names = concepts.split(",")
    assert results["eraser"]["concepts"] == names and results["eraser"]["negative_prompt"] == ", ".join(names)
    overall = results["aggregates"]["overall"]["shapes_oracle"]
    assert overall["videos_erased"] == len(erased) and overall["videos_preserved"] == 4 - len(erased)
    assert {r["prompt_id"] for r in samples(tmp_path)} >= erased
    if len(names) > 1:
        assert {f"esr_1_{n}" for n in names} <= set(overall)


PLUGIN_ERASER = '''
"""Negative prompt "triangle", whatever the concept (a third party's eraser)."""
from benchmark.erasers import Eraser


class TriangleEraser(Eraser):
    """Pushes CFG away from "triangle". Source: a test of erasebench's README."""

    name = "my-method"
    kind = "prompt"

    def call_kwargs(self, family, records):
        return family.negative_prompt_kwargs("triangle", len(records))
'''

PLUGIN_SUITE = '''
from pathlib import Path


def suite_path():
    return str(Path(__file__).with_name("my_suite.yaml"))
'''

PLUGIN_SUITE_YAML = """
name: my-suite
version: 1
description: Two shapes prompts of a third party.
source:
  inline:
    - {id: tri, prompt: a red triangle moving left, category: triangle}
    - {id: sq, prompt: a blue square moving up, category: square}
columns: {prompt_id: id, prompt: prompt, category: category}
concepts: [cross]
seed_policy: derived
default_model: shapes
metrics: [temporal_flickering]
generation:
  default: {fps: 8}
  cogvideox: {num_frames: 9, height: 32, width: 32, num_inference_steps: 5, guidance_scale: 5.0}
"""


def entry_point_groups() -> list[str]:
    """The groups the README names, read from its pyproject example."""
    readme = (ROOT / "README.md").read_text()
    return re.findall(r'\[project\.entry-points\."(erasebench\.[a-z]+)"\]', readme)


def test_plugins_through_the_real_entry_point_groups(tmp_path):
    """An installed distribution (a dist-info with entry_points.txt on the path) registers an eraser and a
    suite given as a callable; a fresh erasebench process lists them and runs the eraser on the suite."""
    assert entry_point_groups() == ["erasebench.erasers", "erasebench.metrics", "erasebench.suites"]
    site = tmp_path / "site"
    pkg = site / "my_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "eraser.py").write_text(textwrap.dedent(PLUGIN_ERASER))
    (pkg / "suites.py").write_text(textwrap.dedent(PLUGIN_SUITE))
    (pkg / "my_suite.yaml").write_text(PLUGIN_SUITE_YAML)
    dist = site / "my_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        '[erasebench.erasers]\nmy-method = my_pkg.eraser:TriangleEraser\n\n[erasebench.suites]\nmy-suite = my_pkg.suites:suite_path\n'
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}

    def erasebench(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "benchmark.cli", *args], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    listed = json.loads(erasebench("list", "--json"))
    assert "my-method" in {r["name"] for r in listed["erasers"]} and "my-suite" in {r["name"] for r in listed["suites"]}
    for method in ("my-method", "none"):
        erasebench("run", "--method", method, "--suite", "my-suite", "--out", str(tmp_path / method), "-q")
    results = only_results(tmp_path / "my-method")
    assert results["eraser"]["name"] == "my-method" and results["suite"]["name"] == "my-suite" and results["model"]["ref"] == "shapes"
    mine, none = samples(tmp_path / "my-method"), samples(tmp_path / "none")
    assert [r["prompt_id"] for r in mine] == [r["prompt_id"] for r in none] == ["tri", "sq"]
    for a, b in zip(mine, none):  # the plugin's negative prompt reached the pipeline: other pixels than none's
        assert not np.array_equal(read_video(tmp_path / "my-method" / a["video"]), read_video(tmp_path / "none" / b["video"]))


@pytest.mark.parametrize("board", ["shape", "motion", "colour", "two-shapes"])
@pytest.mark.parametrize("fmt, suffix", [("md", "md"), ("csv", "csv"), ("latex", "tex")])
def test_report_rebuilds_the_committed_leaderboards(cli, board, fmt, suffix):
    """``erasebench report`` on a board's committed results folders, with its columns, prints the committed
    ``results/shapes/{board}.{md,csv,tex}`` byte for byte (benchmark/shapes/leaderboard.py writes them)."""
    from benchmark.shapes.leaderboard import BOARD_BY_NAME

    spec = BOARD_BY_NAME[board]
    out = ROOT / "results" / "shapes"
    committed = out / f"{spec.stem}.{suffix}"
    folders = [out / spec.folder(s) for s in spec.suites if (out / spec.folder(s)).is_dir()]
    if not folders:
        assert not committed.exists()
        return  # a board not run yet has no table
    keys = [arg for key in spec.keys for arg in ("--metric", key)]
    code, stdout, err = cli("report", *folders, *keys, "--format", fmt)
    assert code == 0, err
    assert stdout == committed.read_text(), f"{committed.name} is stale: python -m benchmark.shapes.leaderboard --tables-only"


def test_readme_leaderboard_numbers_are_the_committed_results():
    """The README's shapes table (ESR-1 / PSR-1 on shapes and its paraphrases) equals the results files."""
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| method | shapes ESR-1 |"):].split("\n\n")[0].splitlines()[2:]
    folders = {"": "", "safree(negative_prompt=off, steps=all)": "safree-shapes", "refusal(site=text_projection, lam=0.85)": "refusal-shapes"}
    assert len(table) == 7
    for line in table:
        method, *cells = [c.strip() for c in line.strip("|").split("|")]
        folder = folders.get(method, method)
        got = []
        for suite in ("shapes", "shapes-paraphrase"):
            overall = json.loads((ROOT / "results" / "shapes" / suite / folder / "results.json").read_text())["aggregates"]["overall"]
            got += [f"{overall['shapes_oracle'][k]:.3f}" for k in ("esr_1", "psr_1")]
        assert cells == got, method

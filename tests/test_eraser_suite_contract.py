"""Every eraser runs on every paper suite with its defaults: fit and one video, on a tiny CogVideoX and the
synthetic fixture data of tests/fixtures/suites (issue: the headline command works with no extra arguments).

Only the generation settings are the tiny pipeline's (2 steps, 9 frames, 16x16); eraser arguments, concepts,
erase mode, seeds and default metrics are the suite's own. A metric that cannot run offline is noted, not
failed; the run must still write results.
"""

from __future__ import annotations

import json

import pytest

from benchmark.runner import Runner, plan_run
from benchmark.specs import PluginSpec, RunSpec
from test_paper_suites import fixture_suite
from tiny_pipelines import TINY_CALL_SETTINGS

ERASERS = ("negprompt", "safree", "t2vunlearning", "refusal")
# paper suite -> fixture folder
PAPER_SUITES = {
    "t2vsafetybench": "t2vsafetybench",
    "t2vsafetybench-tiny": "t2vsafetybench",
    "safesora": "safesora",
    "safesora-all": "safesora",
    "ring-a-bell": "ring-a-bell",
    "imagenet10": "imagenet10",
    "faces": "faces",
    "t2vu-nudity": "t2vu-nudity",
}


@pytest.fixture(scope="module")
def out_root(tmp_path_factory):
    return tmp_path_factory.mktemp("contract-runs")  # shared: fits are reused across suites of one concept


@pytest.mark.parametrize("suite", list(PAPER_SUITES))
@pytest.mark.parametrize("method", ERASERS)
def test_eraser_runs_on_paper_suite_with_defaults(method, suite, tiny_model, out_root, tmp_path):
    path, data = fixture_suite(tmp_path, suite, PAPER_SUITES[suite])
    settings = dict(TINY_CALL_SETTINGS["cogvideox"])
    generation = {k: settings.pop(k) for k in ("num_frames", "height", "width", "num_inference_steps", "guidance_scale")}
    generation["extra"] = settings
    spec = RunSpec(
        model=str(tiny_model("cogvideox")), eraser=PluginSpec(name=method), suite=str(path), data_dir=str(data),
        limit=1, generation=generation,
    )
    plan = plan_run(spec, out_root)
    results = Runner(plan).run()
    assert results is not None and results["videos"]["count"] == 1
    erased = {c for g in results["eraser"]["groups"] for c in g["concepts"]}
    assert erased and erased <= set(plan.suite.spec.concepts)
    assert results["generation"]["scheduler"]["class"]  # the sampler is pinned
    assert results["suite"]["name"] == suite
    for note in results["metrics_not_run"]:
        assert "not run" in note and "\n" not in note
    run_dir = plan.run_dir
    assert (run_dir / "samples.jsonl").is_file()
    sample = json.loads((run_dir / "samples.jsonl").read_text().splitlines()[0])
    assert set(sample["scores"]) == {m.name for m in plan.metrics}

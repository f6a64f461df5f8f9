"""Bad input caught at plan time (issue 12, item 1): each case is one line ``error: ...`` naming the bad value,
exit code 2, and nothing written. Also ``--metric-arg`` with the suite named in ``--config`` (item 5)."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from helpers import run_config, only_results


def one_line(result, *needles):
    code, stdout, stderr = result
    assert code == 2, (code, stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def tiny_config(tiny_model, tmp_path):
    return run_config(tmp_path, "cogvideox", tiny_model("cogvideox"))


# (options after `run --method none --suite example --config TINY`, words the error line must hold)
OPTION_CASES = [
    (["--steps", "-1"], ["--steps", "-1", "greater than or equal to 1"]),
    (["--steps", "0"], ["--steps", "0"]),
    (["--frames", "0"], ["--frames", "0", "greater than or equal to 1"]),
    (["--frames", "-5"], ["--frames", "-5"]),
    (["--frames", "10"], ["--frames", "10", "1 + a multiple of 4", "9 or 13"]),
    (["--frames", "2"], ["--frames", "2", "1 + a multiple of 4"]),
    (["--height", "33"], ["--height", "33", "multiple of 16"]),
    (["--width", "20"], ["--width", "20", "multiple of 16"]),
    (["--height", "8"], ["--height", "8", "multiple of 16"]),
    (["--height", "4"], ["--height", "4", "greater than or equal to 8"]),
    (["--guidance-scale", "-1"], ["--guidance-scale", "-1"]),
    (["--gen", "foo=1"], ["--gen foo", "CogVideoXPipeline takes no argument 'foo'", "num_inference_steps"]),
    (["--gen", "strength=0.5"], ["'strength'", "takes no argument"]),
    (["--gen", "num_frames=9"], ["--gen num_frames", "--frames"]),
    (["--gen", "height=16"], ["--gen height", "--height"]),
    (["--gen", "generator=1"], ["--gen generator", "the runner sets generator"]),
    (["--gen", "output_type=pil"], ["--gen output_type", "the runner sets"]),
    (["--gen", "num_videos_per_prompt=2"], ["num_videos_per_prompt", "the runner sets"]),
    (["--gen", "max_sequence_length=abc"], ["--gen max_sequence_length 'abc'", "valid integer"]),
    (["--gen", "use_dynamic_cfg=maybe"], ["use_dynamic_cfg 'maybe'", "valid boolean"]),
    (["--gen", "eta=[1, 2]"], ["--gen eta [1, 2]", "valid number"]),
    (["--gen", "noequals"], ["--gen 'noequals' is not KEY=VALUE"]),
    (["--gen", "=3"], ["--gen '=3' is not KEY=VALUE"]),
    (["--gen", "eta=[1"], ["--gen 'eta=[1'", "not a YAML value"]),
    (["--seed-policy", "colum"], ["--seed-policy 'colum'", "derived, column or fixed:N"]),
    (["--seed-policy", "fixed:abc"], ["'fixed:abc'", "derived, column or fixed:N"]),
    (["--seed-policy", "fixed:"], ["'fixed:'", "fixed:N"]),
    (["--seed-policy", "fixed:-1"], ["'fixed:-1'", "0 <= N"]),
    (["--seed-policy", "fixed:1e3"], ["'fixed:1e3'"]),
    (["--seed-policy", "FIXED:3"], ["'FIXED:3'"]),
    (["--seed-policy", "fixed:99999999999999999999"], ["'fixed:99999999999999999999'", "2**63"]),
    (["--seed-policy", ""], ["--seed-policy ''", "derived, column or fixed:N"]),
    (["--scheduler", "NoSuchScheduler"], ["scheduler 'NoSuchScheduler' is not a diffusers scheduler"]),
    (["--scheduler", "DDIMScheduler:bogus=1"], ["'bogus'", "DDIMScheduler"]),
    (["--scheduler", "DDIMScheduler:novalue"], ["--scheduler setting 'novalue' is not KEY=VALUE"]),
    (["--metric-arg", "novalue"], ["--metric-arg 'novalue' is not KEY=VALUE"]),
    (["--metric-arg", "nodot=1"], ["--metric-arg 'nodot' must be METRIC.KEY=VALUE"]),
    (["--metric-arg", "temporal_flickering.=1"], ["must be METRIC.KEY=VALUE"]),
    (["--metric-arg", "ghost.x=1"], ["metric 'ghost'", "temporal_flickering"]),
    (["--metric-arg", "temporal_flickering.bogus=1"], ["'bogus'", "frame_policy"]),
    (["--metric-arg", "temporal_flickering.frame_policy=sometimes"], ["frame_policy", "sometimes"]),
    (["--erase-mode", "sideways"], ["--erase-mode 'sideways'"]),
    (["--dtype", "float8"], ["--dtype 'float8'"]),
    (["--video-codec", "gif"], ["--video-codec 'gif'"]),
    (["--batch-size", "0"], ["--batch-size 0"]),
    (["--concept", "nosuchconcept"], ["unknown concept 'nosuchconcept'"]),
    (["--data-dir", "/nonexistent/erasebench"], ["--data-dir '/nonexistent/erasebench'"]),
    (["--suite", "missing/suite.yaml"], ["suite file 'missing/suite.yaml' does not exist"]),
]


@pytest.mark.parametrize("args, needles", OPTION_CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_option(args, needles, tiny_config, tmp_path, cli):
    out = tmp_path / "out"
    base = ["--method", "none", "--suite", "example"]
    if "--suite" in args:
        base = ["--method", "none"]
    one_line(cli("run", *base, *args, "--config", tiny_config, "--out", out), *needles)
    assert not out.exists()


# run.yaml contents (bytes, or a dict merged into the tiny model's config) and the words of the error line
CONFIG_CASES = [
    (b"model: x\n\xff\xfe bad bytes\n", ["is not UTF-8 text", "0xff"]),
    (b"\x00\x01\x02 binary", ["is not text", "NUL"]),
    (b"- a\n- b\n", ["must be a YAML mapping", "list"]),
    (b"a: [1, 2\n", ["is not valid YAML"]),
    (b"when: 2024-13-01\n", ["YAML cannot read", "month"]),
    (b"a: !!python/object:os.system x\n", ["is not valid YAML"]),
    ({"generation": 5}, ["generation 5", "mapping"]),
    ({"generation": {"num_frames": "many"}}, ["generation.num_frames (--frames) 'many'"]),
    ({"generation": {"num_frames": 12}}, ["--frames", "12", "1 + a multiple of 4"]),
    ({"generation": {"height": 40}}, ["--height", "40", "multiple of 16"]),
    ({"generation": {"extra": [1, 2]}}, ["generation.extra (--gen)"]),
    ({"generation": {"extra": {"bogus_kwarg": 1}}}, ["bogus_kwarg", "takes no argument"]),
    ({"generation": {"scheduler": 3}}, ["generation.scheduler"]),
    ({"generation": {"frames": 9}}, ["generation.frames", "Extra inputs"]),
    ({"eraser_args": [1], "method": "none"}, ["eraser_args [1]", "mapping"]),
    ({"eraser": "none"}, ["eraser 'none'", "mapping"]),
    ({"seed_policy": "sometimes"}, ["'sometimes'", "derived, column or fixed:N"]),
    ({"seed_policy": 42}, ["seed_policy 42"]),  # named as the run.yaml wrote it (issue 16)
    ({"frobnicate": 1}, ["unknown setting 'frobnicate'", "seed_policy"]),
    ({"suite": ["example"]}, ["suite ['example']", "suite name"]),
    ({"metrics": 7}, ["metrics 7"]),
    ({"metrics": [{"nom": "x"}]}, ["metrics"]),
    ({"limit": "many"}, ["limit 'many'"]),
    ({"samples": -2}, ["samples -2"]),
    ({"seed": "abc"}, ["seed 'abc'"]),
]


@pytest.mark.parametrize("content, needles", CONFIG_CASES, ids=lambda v: str(v)[:40] if not isinstance(v, list) else None)
def test_bad_config_file(content, needles, tiny_config, tmp_path, cli):
    out = tmp_path / "out"
    path = tmp_path / "bad-run.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        data = yaml.safe_load(tiny_config.read_text())
        for key, value in content.items():
            if key == "generation" and isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        path.write_text(yaml.safe_dump(data))
    args = ["run", "--config", path, "--out", out]
    keys = content if isinstance(content, dict) else {}
    if "suite" not in keys:
        args += ["--suite", "example"]
    if "method" not in keys and "eraser" not in keys:
        args += ["--method", "none"]
    one_line(cli(*args), *needles)
    assert not out.exists()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# suite files: (YAML text of the suite, {data file name: bytes}, words of the error line)
SUITE_HEAD = "name: s\nversion: 1\ndescription: d\n"
SUITE_CASES = [
    (b"name: s\nversion: 1\ndescription: \xe9t\xe9\n", {}, ["suite file", "is not UTF-8 text", "0xe9"]),
    (SUITE_HEAD + "source: {inline: [{prompt: a}]}\nmetrics: 5\n", {}, ["metrics"]),
    (SUITE_HEAD + "source: {inline: [{prompt: a}]}\nseed_policy: fixed:x\n", {}, ["'fixed:x'"]),
    (SUITE_HEAD + "source: {inline: 7}\n", {}, ["source.inline"]),
    (SUITE_HEAD + "source: {path: rows.csv}\n", {"rows.csv": b"prompt\n\xffbad\n"}, ["data file 'rows.csv' is not UTF-8 text"]),
    (SUITE_HEAD + "source: {path: rows.csv}\n", {"rows.csv": b"prompt\nA\x00B\n"}, ["data file 'rows.csv' is not text", "NUL"]),
    (SUITE_HEAD + "source: {path: rows.json, format: json}\n", {"rows.json": b"42"}, ["holds a JSON int"]),
    (SUITE_HEAD + "source: {path: rows.json, format: json}\n", {"rows.json": b"[1, 2]"}, ["row 1 is a int"]),
    (SUITE_HEAD + "source: {path: rows.json, format: json}\n", {"rows.json": b"[" * 100000}, ["rows.json"]),
    (SUITE_HEAD + "source: {path: rows.jsonl, format: jsonl}\n", {"rows.jsonl": b'{"prompt": "a"}\n{oops\n'}, ["not valid JSON"]),
    (SUITE_HEAD + "source: {path: rows.csv.gz}\n", {"rows.csv.gz": b"not gzip at all"}, ["not a readable .gz file"]),
    (
        SUITE_HEAD + "source: {path: rows.csv}\ncolumns: {seed: seed}\nseed_policy: column\n",
        {"rows.csv": b"prompt,seed\na cat,inf\n"},
        ["seed 'inf', not an integer"],
    ),
    (SUITE_HEAD + "source: {inline: [{prompt: a}]}\nrecords: no_such_module_xyz:rows\n", {}, ["records 'no_such_module_xyz:rows' cannot be imported"]),
    (SUITE_HEAD + "source: {inline: [{prompt: a}]}\nconcepts: [weird]\n", {"concepts/weird.yaml": b"name: weird\ndisplay_name: \xff\n"}, ["concept file", "not UTF-8 text"]),
    (SUITE_HEAD + "source: {inline: [{prompt: a}]}\nconcepts: [odd]\n", {"concepts/odd.yaml": b"name: 'bad name!'\ndisplay_name: x\n"}, ["concept file", "concept name 'bad name!'"]),
    (SUITE_HEAD + "source: {inline: [{prompt: a}]}\nconcepts: [lst]\n", {"concepts/lst.yaml": b"- a\n"}, ["concept file", "must be a YAML mapping"]),
    (SUITE_HEAD + "source: {inline: [{prompt: a}]}\ngeneration: {cogvideox: {extra: {bogus: 1}}}\n", {}, ["'bogus'", "takes no argument"]),
    (SUITE_HEAD + "source: {inline: [{prompt: a}]}\ngeneration: {default: {fps: 0}}\n", {}, ["generation.default.fps"]),
]


@pytest.mark.parametrize("suite, files, needles", SUITE_CASES, ids=[f"suite-{i}" for i in range(len(SUITE_CASES))])
def test_bad_suite_file(suite, files, needles, tiny_model, tmp_path, cli):
    folder = tmp_path / "suite"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    path = folder / "suite.yaml"
    path.write_bytes(suite if isinstance(suite, bytes) else suite.encode())
    config = run_config(tmp_path, "cogvideox", tiny_model("cogvideox"))
    out = tmp_path / "out"
    one_line(cli("run", "--method", "none", "--suite", path, "--config", config, "--out", out), *needles)
    assert not out.exists()


@pytest.mark.parametrize(
    "index, needles",
    [
        (b"\xff\xfe{}", ["model_index.json is not valid JSON"]),
        (b"[1, 2]", ["model_index.json holds a list"]),
        (json.dumps({"_class_name": "StableDiffusionPipeline"}).encode(), ["'StableDiffusionPipeline' belongs to no known model family"]),
    ],
)
def test_bad_model_index(index, needles, tmp_path, cli):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model_index.json").write_bytes(index)
    out = tmp_path / "out"
    one_line(cli("run", "--method", "none", "--suite", "example", "--model", model, "--out", out), *needles)
    assert not out.exists()


def test_every_family_checks_its_limits(tiny_model, tmp_path, cli):
    """Each family's frame and size rule, read from the model's own configs (docs/models.md)."""
    cases = {"wan": (["--frames", "8"], "1 + a multiple of 4"), "hunyuanvideo": (["--height", "24"], "multiple of 16"),
             "zeroscope": (["--width", "36"], "multiple of 8")}
    for family, (args, needle) in cases.items():
        config = run_config(tmp_path, family, tiny_model(family))
        out = tmp_path / f"out-{family}"
        one_line(cli("run", "--method", "none", "--suite", "example", "--config", config, *args, "--out", out), needle, family)
        assert not out.exists()


def test_metric_arg_with_suite_from_config(tiny_model, tmp_path, cli):
    """--metric-arg applies to the suite's metrics when the suite is named only in run.yaml (issue 12, item 5)."""
    config = run_config(tmp_path, "cogvideox", tiny_model("cogvideox"), suite="example", method="none")
    out = tmp_path / "out"
    code, _, stderr = cli(
        "run", "--config", config, "--metric-arg", "temporal_flickering.frame_policy=linspace:3", "--limit", "1", "--out", out, "-q"
    )
    assert code == 0, stderr
    metric = only_results(out)["metrics"]["temporal_flickering"]
    assert metric["settings"]["config"]["frame_policy"] == "linspace:3"


# ---- what a metric returns (issue 12, item 3) -------------------------------------------------------


class CountingMetric:
    """Builds a Metric subclass whose score returns what a test asks for."""

    @staticmethod
    def make(rows_for, keys=frozenset()):
        from benchmark.metrics.base import Metric

        class Broken(Metric):
            """Test metric returning malformed rows."""

            name = "broken"
            score_keys = keys

            def score(self, videos):
                return rows_for(videos)

        return Broken


def scored(n):
    from benchmark.metrics.base import ScoredVideo
    from benchmark.specs import PromptRecord

    import numpy as np

    record = PromptRecord(suite="s", prompt_id="p", prompt="a")
    return [ScoredVideo(np.zeros((2, 2, 2, 3), np.uint8), record, i, f"v/{i}.mp4") for i in range(n)]


@pytest.mark.parametrize(
    "rows, keys, needles",
    [
        (lambda v: [{"x": 1.0}] * (len(v) - 1), frozenset(), ["returned 2 rows for 3 videos"]),
        (lambda v: [{"x": 1.0}] * (len(v) + 1), frozenset(), ["returned 4 rows for 3 videos"]),
        (lambda v: {"x": 1.0}, frozenset(), ["returned a dict, not a list"]),
        (lambda v: [{"x": float("nan")}] * len(v), frozenset(), ["x=nan", "v/0.mp4"]),
        (lambda v: [{"x": [1.0, float("inf")]}] * len(v), frozenset(), ["x=inf"]),
        (lambda v: [{"x": 1.0}, {"x": 1.0, "y": 2}, {"x": 1.0}], frozenset({"x"}), ["undeclared key 'y'", "v/1.mp4"]),
        (lambda v: [{"x": object()}] * len(v), frozenset(), ["x=a object"]),
        (lambda v: [[1.0]] * len(v), frozenset(), ["returned a list for 'v/0.mp4'"]),
        (lambda v: [{1: 1.0}] * len(v), frozenset(), ["key 1"]),
    ],
)
def test_check_scores_names_the_metric(rows, keys, needles):
    from benchmark.metrics.base import MetricContext, MetricOutputError, check_scores

    metric_cls = CountingMetric.make(rows, keys)
    metric = metric_cls.from_args({}, MetricContext(suite="s"))
    videos = scored(3)
    with pytest.raises(MetricOutputError) as info:
        check_scores(metric, videos, metric.score(videos))
    message = str(info.value)
    assert "\n" not in message and "metric 'broken'" in message
    for needle in needles:
        assert needle in message, message


def test_check_scores_passes_good_rows():
    from benchmark.metrics.base import MetricContext, check_scores

    rows = lambda v: [{"x": 0.5, "n": 2, "none": None, "frames": [0.1, None], "error": ""} for _ in v]  # noqa: E731
    metric = CountingMetric.make(rows, frozenset({"x", "n", "none", "frames", "error"})).from_args({}, MetricContext(suite="s"))
    videos = scored(2)
    assert check_scores(metric, videos, metric.score(videos)) == rows(videos)


def test_short_metric_stops_the_run_without_results(tiny_config, tmp_path, cli):
    """A metric returning fewer rows than videos stops the run with one line; no results.json is written."""
    from benchmark.metrics.base import METRICS

    METRICS.register("broken", CountingMetric.make(lambda v: [{"x": 1.0}] * (len(v) - 1)), replace=True)
    out = tmp_path / "out"
    line = one_line(
        cli("run", "--method", "none", "--suite", "example", "--config", tiny_config, "--metrics", "broken",
            "--limit", "2", "--out", out, "-q"),
        "metric 'broken' returned 1 rows for 2 videos",
    )
    assert line
    assert not list(out.glob("runs/*/results.json"))

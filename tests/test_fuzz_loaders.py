"""Property-based fuzzing of the loaders (issue 12, item 1): generated suite, concept and run.yaml files
(random YAML text, mutated valid files, random bytes, wrong types) may only end in our one-line
``ErasebenchError``, never in another exception. About 1,300 examples in all, well under a minute."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import pytest
import yaml

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from benchmark.errors import ErasebenchError  # noqa: E402

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["derived", "fixed:7", "column", "csv", "json", "lines", "cogvideox", "church"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)

VALID_SUITE = {
    "name": "fuzz",
    "version": 1,
    "description": "fuzzed",
    "source": {"path": "rows.csv", "format": "csv"},
    "columns": {"prompt_id": "id", "prompt": "prompt", "category": "category", "seed": "seed"},
    "filters": [{"column": "category", "in": ["a", "b"]}],
    "derive": {"kind": {"column": "category", "map": {"a": "x", "b": "y"}}},
    "concepts": ["church"],
    "seed_policy": "column",
    "samples": 1,
    "metrics": ["temporal_flickering"],
    "generation": {"default": {"fps": 8}, "cogvideox": {"num_frames": 9}},
}
ROWS = "id,prompt,category,seed\n1,a church,a,3\n2,a car,b,4\n"
VALID_CONCEPT = {"name": "thing", "display_name": "a thing", "keywords": ["thing"], "pairs": [["a", "b"]], "kind": "object"}


def paths(data, prefix=()):
    """Every key path of a nested dict/list."""
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            out += paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += paths(value, (*prefix, i))
    return out


@st.composite
def mutated(draw, valid):
    """``valid`` with one to three edits: a value replaced by a random one, a key deleted, or a key added."""
    data = copy.deepcopy(valid)
    for _ in range(draw(st.integers(1, 3))):
        targets = paths(data)
        if not targets:
            break
        path = draw(st.sampled_from(targets))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(values)
    return data


def yaml_text(data) -> bytes:
    return yaml.safe_dump(data, allow_unicode=True).encode("utf-8")


files = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    values.map(yaml_text),
)


def only_our_errors(call) -> None:
    try:
        call()
    except ErasebenchError as exc:
        assert "\n" not in str(exc), str(exc)
        event(f"error: {type(exc).__name__}")
    else:
        event("accepted")


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "rows.csv").write_text(ROWS)
        yield root


@FUZZ
@given(data=mutated(VALID_SUITE))
def test_mutated_suites(folder, data):
    """A valid suite with a few fields replaced, deleted or added."""
    assume("records" not in data)  # a records function is code the suite names: never fuzzed
    path = folder / "suite.yaml"
    path.write_bytes(yaml_text(data))
    from benchmark.suites import load_suite

    only_our_errors(lambda: load_suite(str(path), folder, "cogvideox").concepts())


@FUZZ
@given(raw=files, data_file=st.one_of(st.binary(max_size=120), st.sampled_from([ROWS.encode(), b"[1]", b"{}", b"\xef\xbb\xbf"])))
def test_random_suite_and_data_files(folder, raw, data_file):
    """Random bytes, random text and random YAML values as the suite, random bytes as its CSV or JSON data."""
    from benchmark.suites import load_suite

    path = folder / "suite.yaml"
    path.write_bytes(raw)
    only_our_errors(lambda: load_suite(str(path), folder))
    for fmt, name in (("csv", "rows-fuzz.csv"), ("json", "rows-fuzz.json"), ("jsonl", "rows-fuzz.jsonl")):
        (folder / name).write_bytes(data_file)
        path.write_bytes(yaml_text({**VALID_SUITE, "source": {"path": name, "format": fmt}, "filters": [], "derive": {}}))
        only_our_errors(lambda: load_suite(str(path), folder))


@FUZZ
@given(raw=st.one_of(files, mutated(VALID_CONCEPT).map(yaml_text)))
def test_concept_files(folder, raw):
    from benchmark.suites import load_concept

    (folder / "concepts").mkdir(exist_ok=True)
    (folder / "concepts" / "thing.yaml").write_bytes(raw)
    only_our_errors(lambda: load_concept("thing", folder))


@pytest.fixture(scope="module")
def valid_config(tiny_model):
    from tiny_pipelines import TINY_CALL_SETTINGS

    settings_ = dict(TINY_CALL_SETTINGS["cogvideox"])
    generation = {k: settings_.pop(k) for k in ["num_frames", "height", "width", "num_inference_steps", "guidance_scale"]}
    generation["extra"] = settings_
    return {
        "model": str(tiny_model("cogvideox")), "method": "negprompt", "suite": "example", "seed_policy": "fixed:3",
        "samples": 1, "limit": 2, "generation": generation, "metrics": ["temporal_flickering"],
    }


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
@given(edit=st.data())
def test_run_configs_through_plan(folder, valid_config, edit):
    """A mutated or random run.yaml through ``build_spec`` and ``plan_run`` (which writes nothing)."""
    from benchmark.cli import build_spec
    from benchmark.runner import plan_run

    raw = edit.draw(st.one_of(mutated(valid_config).map(yaml_text), files))
    path = folder / "run.yaml"
    path.write_bytes(raw)
    out = folder / "out"

    def plan():
        plan_run(build_spec(path, {}), out)

    only_our_errors(plan)
    assert not out.exists()

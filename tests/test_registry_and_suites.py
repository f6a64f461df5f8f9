from __future__ import annotations

import pytest

from benchmark.errors import SuiteError, UnknownPluginError
from benchmark.registry import Registry
from benchmark.suites import load_suite


def test_registry_lazy_entries_and_did_you_mean():
    registry: Registry = Registry("widget", "erasebench.test-widgets")
    registry.register("ordered", "collections:OrderedDict")
    import collections

    assert registry.get("ordered") is collections.OrderedDict
    with pytest.raises(UnknownPluginError, match="Did you mean 'ordered'"):
        registry.get("orderd")


def test_entry_point_plugins_are_discovered(monkeypatch):
    from importlib.metadata import EntryPoint

    import benchmark.registry as reg

    def fake_entry_points(group):
        if group == "erasebench.test-ep":
            return [EntryPoint("third-party", "collections:Counter", group)]
        return []

    monkeypatch.setattr(reg, "entry_points", fake_entry_points)
    registry: Registry = Registry("widget", "erasebench.test-ep")
    import collections

    assert "third-party" in registry.names()
    assert registry.get("third-party") is collections.Counter


def test_example_suite_loads_with_stable_seeds():
    suite = load_suite("example")
    assert [r.prompt_id for r in suite.records][:2] == ["church-1", "church-2"]
    assert {r.category for r in suite.records} == {"target", "other"}
    first = suite.records[0]
    seed = suite.seed_for(first, 0)
    # derived seed: first 4 bytes of sha256("example:church-1:0"), independent of order and rank
    import hashlib

    assert seed == int.from_bytes(hashlib.sha256(b"example:church-1:0").digest()[:4], "big")
    assert suite.seed_for(first, 1) != seed
    assert suite.seed_for(first, 0, "fixed:42") == 42
    assert suite.seed_for(first, 0, run_seed=7) != seed
    assert [c.name for c in suite.concepts()] == ["church"]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_suite_with_column_map_filters_and_row_seeds(tmp_path):
    write(tmp_path, "rows.csv", ",case_number,prompt,evaluation_seed,class\n0,0,Image of church,11,church\n1,1,Image of tench,12,tench\n")
    yaml_path = write(
        tmp_path,
        "mini.yaml",
        "name: mini\nversion: 2\ndescription: d\nsource: {path: rows.csv, format: csv}\n"
        "columns: {prompt_id: case_number, prompt: prompt, seed: evaluation_seed, category: class}\n"
        "filters: [{column: class, in: [church]}]\nseed_policy: column\n",
    )
    suite = load_suite(str(yaml_path))
    assert [(r.prompt_id, r.prompt, r.seed, r.category) for r in suite.records] == [("0", "Image of church", 11, "church")]
    assert suite.seed_for(suite.records[0], 0) == 11


@pytest.mark.parametrize(
    "body, message",
    [
        ("name: bad\nversion: 1\ndescription: d\nsource: {path: rows.csv}\ncolumns: {prompt: text}\n", "no column 'text'"),
        ("name: bad\nversion: 1\ndescription: d\nsource: {path: empty.csv}\n", "has no prompts"),
        ("name: bad\nversion: 1\ndescription: d\nsource: {path: rows.csv}\ncolumns: {prompt_id: id}\n", "prompt id '../x'"),
        ("name: bad\nversion: 1\ndescription: d\nsource: {path: missing.csv}\n", "needs its data file 'missing.csv'"),
        ("name: bad\nversion: [1\n", "not valid YAML"),
        ("name: bad\nversion: 1\nsource: {path: rows.csv}\n", "description"),
    ],
)
def test_bad_suites_give_one_clear_error(tmp_path, body, message):
    write(tmp_path, "rows.csv", "id,prompt\n../x,a church\n")
    write(tmp_path, "empty.csv", "id,prompt\n")
    yaml_path = write(tmp_path, "bad.yaml", body)
    with pytest.raises(SuiteError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_suite(str(yaml_path))

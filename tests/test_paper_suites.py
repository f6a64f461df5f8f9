"""The paper suites (T2VSafetyBench, SafeSora, Ring-A-Bell, ImageNet-10, faces) and their data loading.

Synthetic fixtures in tests/fixtures/suites mimic each source's format (CRLF, BOM, control characters and
undecodable bytes inside prompts, unnamed index columns, list-shaped JSON rows); the built-in suite YAMLs are
loaded with only their file hashes re-pinned to the fixtures. Tests on the real files in ../shared/data skip
when it is absent.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from benchmark.errors import SuiteError
from benchmark.metrics.base import METRICS
from benchmark.runner import plan_run
from benchmark.specs import PluginSpec, RunSpec
from benchmark.suites import BUILTIN_SUITE_DIR, SUITES, load_concept, load_suite, load_suite_spec

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "suites"
PAPER_SUITES = [
    "t2vsafetybench", "t2vsafetybench-tiny", "t2vsafetybench-rv",
    "safesora", "safesora-all", "safesora-t2vu", "safesora-eval",
    "ring-a-bell", "ring-a-bell-t2vu", "ring-a-bell-108", "ring-a-bell-violence-eta5.5-k38",
    "ring-a-bell-violence-eta5.5-k77", "ring-a-bell-violence-eta5-k77", "imagenet10", "imagenet10-500",
    "faces", "faces-hunyuan",
]  # fmt: skip


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fixture_suite(tmp_path: Path, name: str, fixture_dir: str) -> tuple[Path, Path]:
    """The built-in suite re-pinned to the synthetic fixture files (only hashes and the file list change)."""
    spec = yaml.safe_load((BUILTIN_SUITE_DIR / f"{name}.yaml").read_text())
    src = spec["source"]
    root = FIXTURES / fixture_dir
    if "files" in src:
        src["files"] = [{**f, "sha256": sha(root / f["path"])} for f in src["files"] if (root / f["path"]).is_file()]
    else:
        src["sha256"] = sha(root / src["path"])
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True))
    return path, root


def reference_lines(path: Path) -> list[str]:
    """T2VSafetyBench's reader (utils.py load_prompts): text mode, UTF-8, errors="replace", strip() per line."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        return [line.strip() for line in handle.readlines()]


def one_line_error(result, *needles):
    code, stdout, stderr = result
    assert code == 2, (code, stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("ERASEBENCH_OFFLINE", "1")


# --- every paper suite is registered, valid and names concepts that exist ---------------------------------


@pytest.mark.parametrize("name", PAPER_SUITES)
def test_paper_suite_specs_are_valid_and_their_concepts_exist(name):
    assert name in SUITES.names()
    spec, _ = load_suite_spec(name)
    assert spec.metrics and spec.concepts
    for concept in spec.concepts:
        load_concept(concept)
    per_row = spec.derive.get(spec.columns.target_concept or "")  # per-row target concepts via a derive table
    for value in filter(None, per_row.map.values() if per_row else ()):
        load_concept(str(value))
    for file in spec.source.data_files():
        assert file.sha256 or spec.source.hub is not None, file.path
    for plugin in spec.metrics:  # the suite's metric arguments are valid for the metric
        METRICS.get(plugin.name).Config.model_validate(plugin.args)
    cog = spec.generation_for("cogvideox")
    assert (cog.num_inference_steps, cog.guidance_scale) == (50, 6.0)  # frames and samplers: test_protocols.py


def test_imagenet_and_identity_concepts_carry_their_labels():
    expected = {
        "tench": 0, "english_springer": 217, "cassette_player": 482, "chain_saw": 491, "church": 497,
        "french_horn": 566, "garbage_truck": 569, "gas_pump": 571, "golf_ball": 574, "parachute": 701,
    }  # fmt: skip
    spec, _ = load_suite_spec("imagenet10")
    assert {k.casefold(): v for k, v in spec.derive["class_index"].map.items()} == {
        load_concept(name).display_name.casefold(): index for name, index in expected.items()
    }
    for name, index in expected.items():
        assert load_concept(name).labels == (str(index),)
    assert load_concept("queen_elizabeth_ii").labels == ("queen_elizabeth_ii",)


# --- T2VSafetyBench ---------------------------------------------------------------------------------------


def test_t2vsafetybench_reads_lines_as_the_reference_does(tmp_path):
    path, root = fixture_suite(tmp_path, "t2vsafetybench", "t2vsafetybench")
    suite = load_suite(str(path), data_dir=root)
    by_aspect: dict[int, list] = {}
    for record in suite.records:
        by_aspect.setdefault(record.extra["aspect"], []).append(record)
    assert sorted(by_aspect) == [1, 4]
    for aspect, records in by_aspect.items():
        reference = reference_lines(root / f"T2VSafetyBench/{aspect}.txt")
        # same prompts, ids = the reference's video names {k}-{i+1} (a blank line is skipped but counted)
        assert [(r.prompt_id, r.prompt) for r in records] == [
            (f"{aspect}-{i + 1}", p) for i, p in enumerate(reference) if p
        ]
        raw = (root / f"T2VSafetyBench/{aspect}.txt").read_bytes().decode("utf-8", errors="replace")
        assert len(raw.splitlines()) > len(reference)  # str.splitlines would split inside prompts
    first = {r.prompt_id: r for r in by_aspect[1]}
    assert first["1-2"].prompt == "Two shapes\x1cmeet in a garden"
    assert first["1-3"].prompt == "A lamp glows in the dark"  # surrounding spaces and \r stripped
    assert "1-4" not in first and first["1-5"].prompt == "Broken byte \ufffd here and été text"
    assert by_aspect[4][0].prompt == "A red ball\x0brolls\x0cdown a hill"
    definition = (root / "definition.txt").read_text().split("\n")
    assert first["1-1"].category == "Alpha Aspect" and by_aspect[4][0].category == "Delta Aspect"
    assert first["1-1"].extra["definition"] == definition[0].strip()
    assert (first["1-1"].target_concept, by_aspect[4][0].target_concept) == ("nudity", "gore")  # aspect 4 is Gore
    assert first["1-1"].source.startswith("yibo-miao/T2VSafetyBench@97a8416")


def test_t2vsafetybench_tiny_uses_the_tiny_files(tmp_path):
    path, root = fixture_suite(tmp_path, "t2vsafetybench-tiny", "t2vsafetybench")
    suite = load_suite(str(path), data_dir=root)
    assert [(r.prompt_id, r.prompt) for r in suite.records] == [
        ("1-1", "A person walks past a wall"),
        ("1-2", "A tiny set prompt\x1eend"),
    ]


def test_a_file_found_by_name_only_must_match_its_hash(tmp_path, offline):
    path, root = fixture_suite(tmp_path, "t2vsafetybench-tiny", "t2vsafetybench")
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "definition.txt").write_bytes((root / "definition.txt").read_bytes())
    (flat / "1.txt").write_bytes((root / "T2VSafetyBench/1.txt").read_bytes())  # the full set's 1.txt: not it
    with pytest.raises(SuiteError, match=r"needs its data file 'T2VSafetyBench/Tiny-T2VSafetyBench/1\.txt'"):
        load_suite(str(path), data_dir=flat)
    (flat / "1.txt").write_bytes((root / "T2VSafetyBench/Tiny-T2VSafetyBench/1.txt").read_bytes())
    assert len(load_suite(str(path), data_dir=flat).records) == 2


# --- SafeSora ---------------------------------------------------------------------------------------------


def test_safesora_porn_subset_and_all_categories(tmp_path):
    path, root = fixture_suite(tmp_path, "safesora", "safesora")
    suite = load_suite(str(path), data_dir=root)
    rows = json.loads((root / "datasets/t2v.json").read_text())
    porn = [r for r in rows if r[1] == "porn"]
    assert [(r.prompt_id, r.prompt, r.category) for r in suite.records] == [
        (f"{i}_porn", p, "porn") for i, _, p in porn
    ]
    assert suite.records[0].prompt.startswith(": ") and "\n" in suite.records[1].prompt  # byte-exact text
    assert {r.target_concept for r in suite.records} == {"nudity"}

    path, root = fixture_suite(tmp_path, "safesora-all", "safesora")
    suite = load_suite(str(path), data_dir=root)
    assert len(suite.records) == len(rows)
    ids = {r.prompt_id: r for r in suite.records}
    assert ids["12_animal-abuse"].category == "animal abuse" and ids["12_animal-abuse"].target_concept == "animal_abuse"
    assert {"3_porn", "3_racism"} <= set(ids)  # one id under two categories stays two prompts
    assert ids["3_racism"].extra == {"id": "3"}


def test_safesora_t2vu_csv_with_bom_and_crlf(tmp_path):
    path, root = fixture_suite(tmp_path, "safesora-t2vu", "safesora")
    suite = load_suite(str(path), data_dir=root)
    assert [r.prompt_id for r in suite.records] == ["1", "2", "3"]
    assert suite.records[0].prompt == ": a synthetic prompt that starts with a colon"
    assert suite.records[1].prompt == "A synthetic prompt\\nwith a literal backslash-n"
    assert suite.records[2].prompt == "A third prompt\xa0with a no-break space"
    assert {r.category for r in suite.records} == {"porn"}


def test_safesora_eval_gzipped_json_with_nested_labels(tmp_path):
    samples = [
        {"prompt_id": "p1", "prompt_text": "a neutral prompt", "prompt_type": "safety_neutral",
         "prompt_labels": {"porn": False, "violence": False}},
        {"prompt_id": "p2", "prompt_text": "a critical prompt", "prompt_type": "safety_critical",
         "prompt_labels": {"porn": True, "violence": False}},
    ]  # fmt: skip
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "eval-prompt.json.gz").write_bytes(gzip.compress(json.dumps(samples).encode()))
    spec = yaml.safe_load((BUILTIN_SUITE_DIR / "safesora-eval.yaml").read_text())
    spec["columns"]["extra"] = ["prompt_labels.porn"]
    spec["filters"] = [{"column": "prompt_labels.porn", "equals": True}]
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(spec))
    suite = load_suite(str(path), data_dir=tmp_path / "data")
    assert [(r.prompt_id, r.category, r.extra) for r in suite.records] == [
        ("p2", "safety_critical", {"prompt_labels.porn": True})
    ]


# --- Ring-A-Bell ------------------------------------------------------------------------------------------


def test_ring_a_bell_pairs_and_plain_line_variant(tmp_path):
    path, root = fixture_suite(tmp_path, "ring-a-bell", "ring-a-bell")
    suite = load_suite(str(path), data_dir=root)
    assert [r.prompt for r in suite.records] == [
        "token soup \ufffd words one",
        "token soup, with a comma",
        "token soup three",
    ]
    assert suite.records[1].extra == {"normal prompt": "calm words, two"}
    assert [r.prompt_id for r in suite.records] == ["1", "2", "3"]

    path, root = fixture_suite(tmp_path, "ring-a-bell-108", "ring-a-bell")
    suite = load_suite(str(path), data_dir=root)
    lines = (root / "datasets/Nudity_ring-a-bell.csv").read_text(encoding="utf-8").split("\n")
    assert [r.prompt for r in suite.records] == lines  # plain lines: quotes and commas stay inside their line
    assert len(list(csv.reader(io.StringIO("\n".join(lines))))) < len(lines)  # a CSV parser would merge lines
    assert [r.prompt_id for r in suite.records] == ["1", "2", "3", "4"]


# --- ImageNet-10 ------------------------------------------------------------------------------------------


def test_imagenet10_rows_classes_and_per_prompt_seeds(tmp_path):
    path, root = fixture_suite(tmp_path, "imagenet10", "imagenet10")
    suite = load_suite(str(path), data_dir=root)
    rows = list(csv.DictReader(io.StringIO((root / "data/small_imagenet_prompts.csv").read_text())))
    assert [(r.prompt_id, r.prompt, r.seed) for r in suite.records] == [
        (row["case_number"], row["prompt"], int(row["evaluation_seed"])) for row in rows
    ]
    springer = suite.records[4]
    assert springer.category == springer.target_concept == "english_springer"
    assert springer.extra == {"class": "english springer", "class_index": 217}
    assert "" not in springer.extra and all("Unnamed" not in k for k in springer.extra)
    assert [c.name for c in suite.concepts()] == ["church"] and suite.concepts()[0].labels == ("497",)
    # seeds honoured: the row's seed for sample 0, seed + sample after, whatever the order
    assert [suite.seed_for(r, 0) for r in suite.records] == [int(row["evaluation_seed"]) for row in rows]
    assert suite.seed_for(suite.records[2], 3) == 3410 + 3


def test_imagenet10_seeds_reach_the_run_plan(tmp_path):
    path, root = fixture_suite(tmp_path, "imagenet10", "imagenet10")
    model = tmp_path / "model"
    model.mkdir()
    (model / "model_index.json").write_text(json.dumps({"_class_name": "CogVideoXPipeline"}))

    def plan(**kw):
        spec = RunSpec(
            model=str(model), eraser=PluginSpec(name="none"), suite=str(path), data_dir=str(root),
            metrics=(PluginSpec(name="temporal_flickering"),), samples=2, **kw,
        )  # fmt: skip
        return plan_run(spec, tmp_path / "out")

    items = plan().items
    seeds = {
        r["case_number"]: int(r["evaluation_seed"])
        for r in csv.DictReader(io.StringIO((root / "data/small_imagenet_prompts.csv").read_text()))
    }
    assert [(i.record.prompt_id, i.sample, i.seed) for i in items] == [
        (pid, s, seed + s) for pid, seed in seeds.items() for s in (0, 1)
    ]
    assert {(i.sample, i.seed) for i in plan(seed_policy="fixed:42").items} == {(0, 42), (1, 43)}  # sample k: 42 + k
    derived = plan(seed_policy="derived").items[0]
    assert derived.seed == int.from_bytes(hashlib.sha256(b"imagenet10:0:0").digest()[:4], "big")
    gen = plan().generation.pipeline_kwargs()
    assert gen == {  # the model's default resolution: no height/width passed
        "num_frames": 49,
        "num_inference_steps": 50,
        "guidance_scale": 6.0,
        "use_dynamic_cfg": True,
    }
    assert not (tmp_path / "out").exists()


def test_imagenet10_500_matches_classes_case_insensitively(tmp_path):
    path, root = fixture_suite(tmp_path, "imagenet10-500", "imagenet10")
    suite = load_suite(str(path), data_dir=root)
    assert [(r.category, r.extra["class_index"], r.seed) for r in suite.records] == [
        ("tench", 0, 1174), ("english_springer", 217, 1174), ("french_horn", 566, 9686)
    ]  # fmt: skip


def test_malformed_csv_and_unknown_class_are_one_line_errors(tmp_path):
    spec = yaml.safe_load((BUILTIN_SUITE_DIR / "imagenet10-500.yaml").read_text())
    root = FIXTURES / "imagenet10"
    spec["source"].update(path="dataset/malformed.csv", sha256=sha(root / "dataset/malformed.csv"))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SuiteError, match=r"row 2 has 5 fields but the header has 4"):
        load_suite(str(path), data_dir=root)
    bad = tmp_path / "rows.csv"
    bad.write_text("case_number,prompt,class,evaluation_seed\n0,an image of a koala,koala,1\n")
    spec["source"].update(path="rows.csv", sha256=sha(bad))
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(
        SuiteError, match=r"rows\.csv row 1: class 'koala' is not in derive\.\w+\.map \(.*english springer"
    ):
        load_suite(str(path), data_dir=tmp_path)


# --- faces ------------------------------------------------------------------------------------------------


def test_faces_identity_extras_and_row_seeds(tmp_path):
    path, root = fixture_suite(tmp_path, "faces", "faces")
    suite = load_suite(str(path), data_dir=root)
    assert [(r.prompt_id, r.category, r.seed) for r in suite.records] == [
        ("1", "angela_merkel", 3728), ("2", "angela_merkel", 1285), ("3", "joe_biden", 3728), ("4", "joe_biden", 1285)
    ]  # fmt: skip
    assert suite.records[2].extra == {"identity": "joe_biden", "identity_name": "Joe Biden"}
    assert suite.records[2].target_concept == "joe_biden"
    assert load_concept(suite.records[2].extra["identity"]).display_name == "Joe Biden"
    assert suite.seed_for(suite.records[2], 0) == 3728


# --- data files: offline message, hash mismatch, download and cache, listing --------------------------------


def test_offline_without_a_copy_names_the_files_and_the_folder(tmp_path, cli, offline):
    empty = tmp_path / "data"
    empty.mkdir()
    line = one_line_error(
        cli("list", "--suite", "t2vsafetybench-tiny", "--data-dir", empty),
        "suite 't2vsafetybench-tiny' needs 15 data files from "
        "yibo-miao/T2VSafetyBench@97a841699fc25bc61662e6453bd6a2d9d187a9db",
        "downloads are off",
        f"put them at {empty}/definition.txt and "
        f"{empty}/T2VSafetyBench/Tiny-T2VSafetyBench/{{1,2,3,4,5,6,7,8,9,10,11,12,13,14}}.txt",
        f"pass --data-dir {empty}",
    )
    assert len(line) < 600
    one_line_error(
        cli("list", "--suite", "ring-a-bell"),
        "needs its data file 'datasets/nudity-ring-a-bell.csv' from jaehong31/SAFREE@",
        "put it at DIR/datasets/nudity-ring-a-bell.csv and pass --data-dir DIR",
    )
    one_line_error(
        cli("list", "--suite", "safesora-eval", "--data-dir", empty),
        "needs its data file 'eval-prompt.json.gz' from PKU-Alignment/SafeSora-Eval@main",
        "the Hugging Face cache has no copy",
        f"put it at {empty}/eval-prompt.json.gz",
    )
    one_line_error(
        cli("list", "--suite", "faces", "--data-dir", tmp_path / "nope"),
        f"--data-dir '{tmp_path / 'nope'}' is not a folder",
    )


def test_run_without_data_is_the_same_one_line_error(tmp_path, cli, offline):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model_index.json").write_text(json.dumps({"_class_name": "CogVideoXPipeline"}))
    out = tmp_path / "out"
    one_line_error(
        cli("run", "--method", "none", "--suite", "imagenet10", "--model", model, "--data-dir", tmp_path, "--out", out),
        "needs its data file 'data/small_imagenet_prompts.csv'",
        f"put it at {tmp_path}/data/small_imagenet_prompts.csv",
    )
    assert not out.exists()


def test_sha256_mismatch_is_one_line_error(cli):
    # the synthetic file sits where the real one belongs: same name, other bytes
    one_line_error(
        cli("list", "--suite", "ring-a-bell", "--data-dir", FIXTURES / "ring-a-bell"),
        "data file",
        "nudity-ring-a-bell.csv",
        f"has sha256 {sha(FIXTURES / 'ring-a-bell/datasets/nudity-ring-a-bell.csv')[:16]}, expected 2bd9056f41d92b82",
    )


def test_download_verifies_and_caches(tmp_path, monkeypatch):
    monkeypatch.delenv("ERASEBENCH_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("ERASEBENCH_CACHE", str(tmp_path / "cache"))
    served = tmp_path / "served" / "rows.csv"
    served.parent.mkdir()
    served.write_bytes(b"id,prompt\r\na,a church\r\nb,a tree\r\n")
    suite_yaml = tmp_path / "suite" / "dl.yaml"
    suite_yaml.parent.mkdir()

    def write(sha256):
        suite_yaml.write_text(
            "name: dl\nversion: 1\ndescription: d\n"
            f"source: {{path: rows.csv, url: '{served.as_uri()}', sha256: '{sha256}'}}\n"
            "columns: {prompt_id: id}\n"
        )

    write("0" * 64)
    with pytest.raises(
        SuiteError, match=r"downloaded from file://.* has sha256 [0-9a-f]{16}, expected 0000000000000000"
    ):
        load_suite(str(suite_yaml))
    assert not (tmp_path / "cache").exists()  # a mismatching download is never cached
    write(sha(served))
    assert [r.prompt for r in load_suite(str(suite_yaml)).records] == ["a church", "a tree"]
    cached = list((tmp_path / "cache" / "data").rglob("rows.csv"))
    assert len(cached) == 1 and cached[0].read_bytes() == served.read_bytes()
    served.unlink()  # now only the cache has it
    assert [r.prompt_id for r in load_suite(str(suite_yaml)).records] == ["a", "b"]


@pytest.mark.parametrize(
    "source, message",
    [
        ("{path: rows.csv, url: 'https://example.org/rows.csv'}", "can be downloaded, so it needs a sha256"),
        ("{path: rows.csv, repo: a/b, commit: abc123, sha256: '00000000'}", "use the full 40-hex-digit commit id"),
        ("{path: rows.csv, sha256: 12345678}", "12345678 was read as a number: quote hashes"),
        ("{path: rows.csv, sha256: xyz}", "sha256 'xyz' is not allowed"),
        ("{path: rows.csv, repo: a/b}", "source.repo and source.commit go together"),
    ],
)
def test_bad_source_specs(tmp_path, source, message):
    path = tmp_path / "s.yaml"
    path.write_text(f"name: s\nversion: 1\ndescription: d\nsource: {source}\n")
    with pytest.raises(SuiteError, match=re.escape(message)):
        load_suite(str(path))


def test_list_prints_prompts_per_category(tmp_path, cli):
    path, root = fixture_suite(tmp_path, "safesora-all", "safesora")
    code, out, err = cli("list", "--suite", path, "--data-dir", root)
    assert code == 0, err
    assert "safesora-all v1: 7 prompts" in out
    for category, count in {"porn": 3, "violence": 1, "racism": 1, "animal abuse": 1, "terrorism": 1}.items():
        assert re.search(rf"{category}\W+{count}\b", out), out


# --- the real files in ../shared (skipped in a user's clone) -----------------------------------------------

T2VSB_COUNTS = {
    1: (876, 85), 2: (423, 55), 3: (591, 45), 4: (584, 61), 5: (245, 45), 6: (475, 27), 7: (432, 50),
    8: (481, 60), 9: (315, 21), 10: (249, 50), 11: (274, 38), 12: (55, 55), 13: (79, 35), 14: (72, 72),
}  # fmt: skip


@pytest.mark.parametrize("name, column", [("t2vsafetybench", 0), ("t2vsafetybench-tiny", 1)])
def test_real_t2vsafetybench(shared_dir, name, column):
    suite = load_suite(name, data_dir=shared_dir / "data")
    counts = Counter(r.extra["aspect"] for r in suite.records)
    assert counts == {k: v[column] for k, v in T2VSB_COUNTS.items()}
    assert len(suite.records) == (5151, 699)[column]
    assert len({r.category for r in suite.records}) == 14
    ids = [r.prompt_id for r in suite.records]
    assert ids[0] == "1-1" and f"4-{T2VSB_COUNTS[4][column]}" in ids
    if column == 0:
        control = sum(
            len(re.findall(r"[\x0b\x0c\x1c-\x1e]", r.prompt)) for r in suite.records if r.extra["aspect"] == 4
        )
        assert control == 31  # kept inside prompts, not split on


def test_real_t2vsafetybench_rv_preset(shared_dir):
    suite = load_suite("t2vsafetybench-rv", data_dir=shared_dir / "data")
    assert Counter(r.extra["aspect"] for r in suite.records) == {k: T2VSB_COUNTS[k][1] for k in (1, 4, 6, 9, 12)}
    assert len(suite.records) == 249


def test_real_safesora_ring_a_bell_imagenet_faces(shared_dir):
    data = shared_dir / "data"
    counts = {
        name: len(load_suite(name, data_dir=data).records)
        for name in PAPER_SUITES
        if name != "safesora-eval" and not name.startswith("t2v")
    }
    assert counts == {
        "safesora": 33, "safesora-all": 296, "safesora-t2vu": 33, "ring-a-bell": 79, "ring-a-bell-t2vu": 79,
        "ring-a-bell-108": 108, "ring-a-bell-violence-eta5.5-k38": 250, "ring-a-bell-violence-eta5.5-k77": 250,
        "ring-a-bell-violence-eta5-k77": 250, "imagenet10": 100, "imagenet10-500": 5000,
        "faces": 150, "faces-hunyuan": 150,
    }  # fmt: skip
    every = load_suite("safesora-all", data_dir=data)
    assert Counter(r.category for r in every.records) == {
        "violence": 166,
        "racism": 45,
        "porn": 33,
        "animal abuse": 27,
        "terrorism": 25,
    }
    small = load_suite("imagenet10", data_dir=data)
    assert Counter(r.category for r in small.records) == {c: 10 for c in {r.target_concept for r in small.records}}
    assert len({r.seed for r in small.records}) == 100 and {r.extra["class_index"] for r in small.records} == {
        0,
        217,
        482,
        491,
        497,
        566,
        569,
        571,
        574,
        701,
    }
    faces = load_suite("faces", data_dir=data)
    assert Counter(r.extra["identity"] for r in faces.records) == {
        i: 30 for i in ["angela_merkel", "barack_obama", "donald_trump", "joe_biden", "queen_elizabeth_ii"]
    }
    assert len({r.seed for r in faces.records}) == 30


def test_real_list_with_the_copy_folder(shared_dir, cli):
    # the folder that mirrors <suite>/<owner>__<repo>/<path> works as --data-dir too
    code, out, err = cli("list", "--suite", "t2vsafetybench-tiny", "--data-dir", shared_dir / "data" / "t2vsafetybench")
    assert code == 0, err
    assert "699 prompts" in out and re.search(r"Pornography\W+85\b", out)

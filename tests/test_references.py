"""results/references: the published numbers the project carries, their mapping to erasebench quantities,
and the converter that builds them from ../shared/data/published (docs/references.md)."""

from __future__ import annotations

import csv

import pytest

from benchmark.erasers import ERASERS
from benchmark.errors import ErasebenchError
from benchmark.metrics.base import METRICS
from benchmark.models.base import MODELS
from benchmark.suites import SUITES
from benchmark.tables.references import DEFAULT_DIR, load_references, papers
from benchmark.tables.references_build import UNLOADABLE_MODELS, build
from benchmark.tables.fill import fill_table
from benchmark.tables.spec import load_table_spec, table_names


def test_committed_reference_files():
    assert papers() == ["refusal-vector", "t2vunlearning"]
    t2vu, rv = load_references("t2vunlearning"), load_references("refusal-vector")
    assert (len(t2vu), len(rv)) == (293, 65)
    assert sum(r.secondary for r in t2vu + rv) == 63
    assert all(not r.secondary for r in t2vu)  # T2VUnlearning was read in the paper itself
    ids = [r.id for r in t2vu + rv]
    assert len(ids) == len(set(ids))
    by_id = {r.id: r for r in t2vu}
    # spot checks against the printed tables (value, printed ±, erasebench quantity)
    row = by_id["t2vu-table1/cogvideox-2b/original/nudity/t2vu-nudity/nudity_rate"]
    assert (row.value, row.eb_method, row.eb_metric, row.eb_scale) == (57.10, "none", "nudenet.nudity_rate", 100.0)
    row = by_id["t2vu-table2/cogvideox-2b/T2VUnlearning/mean over 10 ImageNet classes/imagenet10-t2vu/esr_1"]
    assert (row.value, row.printed_std, row.eb_args, row.eb_concept) == (92.38, 6.44, {"augment": "llm"}, "mean")
    row = by_id["t2vu-table3/hunyuanvideo/original/Obama/faces-hunyuan/id_similarity"]
    assert (row.value, row.eb_concept, row.eb_metric) == (0.4947, "barack_obama", "arcface.id_similarity_erased")
    safree = [r for r in t2vu if r.method == "SAFREE"]
    assert safree and all(r.eb_args == {"parity": True} for r in safree)


def test_every_mapping_names_something_erasebench_has():
    for paper in papers():
        for ref in load_references(paper):
            assert ref.eb_suite in SUITES.names(), ref.id
            assert ref.eb_model in MODELS.names() or ref.eb_model in UNLOADABLE_MODELS, ref.id
            if ref.eb_method:
                assert ref.eb_method in ERASERS.names(), ref.id
            if ref.eb_metric:
                assert ref.eb_metric.partition(".")[0] in METRICS.names(), ref.id
            assert ref.comparable or ref.why_not, ref.id
            assert ref.unit in ("percent", "score"), ref.id
            if ref.eb_metric:  # our fractions -> the printed unit
                assert ref.eb_scale == (100.0 if ref.unit == "percent" else 1.0), ref.id


@pytest.mark.parametrize("name", table_names())
def test_each_table_spec_reaches_every_published_number_of_its_table_once(name):
    spec = load_table_spec(name)
    expected = sorted(r.id for r in load_references(spec.paper) if r.table_id == name)
    table = fill_table(spec, [], published=True)
    reached = sorted(ref.id for row in table.rows for cell in row.cells for ref in cell.published if ref is not None)
    assert expected and reached == expected


def test_rebuilding_from_shared_gives_the_committed_files(shared_dir, tmp_path):
    counts = build(shared_dir / "data" / "published", tmp_path)
    assert counts == {"t2vunlearning": 293, "refusal-vector": 65}
    for paper in counts:
        assert (tmp_path / f"{paper}.csv").read_text() == (DEFAULT_DIR / f"{paper}.csv").read_text()
    with open(shared_dir / "data" / "published" / "published_numbers.csv", newline="") as handle:
        source = list(csv.DictReader(handle))
    assert sum(row["where"].startswith("SECONDARY") for row in source) == 63


def test_converter_refuses_a_folder_without_the_csv(tmp_path):
    with pytest.raises(ErasebenchError, match="published_numbers.csv"):
        build(tmp_path, tmp_path / "out")


def test_unknown_paper_is_one_clear_line(cli):
    code, _, err = cli("compare", ".", "--reference", "nope")
    assert code == 2 and "--reference 'nope' is not allowed: use one of refusal-vector, t2vunlearning" in err

"""`erasebench compare RUN_DIR... --reference PAPER` (docs/tables.md "compare")."""

from __future__ import annotations

import pytest

from benchmark.compare import TOLERANCES, compare
from benchmark.tables.runs import load_runs
from test_tables import fake_run


def nudity_run(root, rate, *, frames=4900, model="cogvideox-2b", **kw):
    positive = round(rate * frames)
    return fake_run(root, "t2vu-nudity", model, "none", {"nudenet": {"nudity_rate": positive / frames, "positive_frames": positive, "frames": frames}},
                    concepts=["nudity"], **kw)


def test_within_interval_passes_and_outside_tolerance_fails(tmp_path, cli):
    nudity_run(tmp_path / "ok", 0.55)  # 55.00 vs 57.10: 2.1 points, inside the tolerance
    code, out, _ = cli("compare", tmp_path / "ok", "--reference", "t2vunlearning")
    assert code == 0, out
    line = next(l for l in out.splitlines() if l.startswith("t2vu-table1"))
    assert "55.00" in line and "57.10" in line and "-2.10" in line and line.rstrip().endswith("ok")
    assert "1 published numbers of t2vunlearning compared (1 primary, 0 secondary); 0 primary outside" in out

    nudity_run(tmp_path / "bad", 0.40)  # 40.00: the Wilson interval over 4900 frames is about ±1.4
    code, out, _ = cli("compare", tmp_path / "bad", "--reference", "t2vunlearning")
    assert code == 1
    line = next(l for l in out.splitlines() if l.startswith("t2vu-table1"))
    assert "-17.10" in line and " no " in line and line.rstrip().endswith("FAIL")
    # a wider tolerance, stated on the command line
    code, _, _ = cli("compare", tmp_path / "bad", "--reference", "t2vunlearning", "--tolerance", "nudenet.nudity_rate=20")
    assert code == 0
    code, _, err = cli("compare", tmp_path / "bad", "--reference", "t2vunlearning", "--tolerance", "nudenet.nudity_rate=x")
    assert code == 2 and "--tolerance 'nudenet.nudity_rate=x' is not METRIC.KEY=NUMBER" in err


def test_the_interval_counts_before_the_tolerance(tmp_path):
    nudity_run(tmp_path, 0.25, frames=8)  # 2 of 8 frames: Wilson [7.1, 59.1] holds 57.10
    (row,), _ = compare(load_runs([tmp_path]), "t2vunlearning")
    assert row.in_interval is True and row.status == "ok" and row.interval == "wilson"
    assert row.low == pytest.approx(7.15, abs=0.01) and row.high == pytest.approx(59.07, abs=0.01)


def test_run_intervals_are_used_when_present(tmp_path):
    nudity_run(tmp_path, 0.25, frames=8, intervals={"overall": {"nudenet": {"nudity_rate": {"lo": 0.2, "hi": 0.3, "method": "bootstrap"}}}})
    (row,), _ = compare(load_runs([tmp_path]), "t2vunlearning")
    assert (row.low, row.high, row.interval) == (20.0, 30.0, "bootstrap")
    assert row.status == "FAIL"  # 57.10 > 30 + 5


def test_secondary_and_stand_in_never_fail(tmp_path, cli):
    categories = {"violence": 0.99, "terrorism": 0.99, "racism": 0.99, "porn": 0.99, "animal abuse": 0.99}
    fake_run(tmp_path / "rv", "safesora-all", "zeroscope", "none", {"judge": {"unsafe_rate": 0.9}},
             by_category={c: {"judge": {"unsafe_rate": v, "scored": 200.0}} for c, v in categories.items()},
             category_mean={"judge": {"unsafe_rate": 0.99}}, concepts=list(categories))
    fake_run(tmp_path / "rv", "t2vu-nudity", "zeroscope", "none", {"nudenet": {"nudity_rate": 0.0}}, concepts=["nudity"])
    code, out, _ = cli("compare", tmp_path / "rv", "--reference", "refusal-vector")
    assert code == 0
    lines = [l for l in out.splitlines() if l.startswith("rv-safesora")]
    assert len(lines) == 6 and all(l.rstrip().endswith("outside (secondary)") and "(sec.)" in l for l in lines)
    assert "6 published numbers of refusal-vector compared (0 primary, 6 secondary)" in out
    nudity_run(tmp_path / "tiny", 0.0, label="tiny-cogvideox")
    code, out, _ = cli("compare", tmp_path / "tiny", "--reference", "t2vunlearning", "--model-as", "cogvideox-2b=tiny-cogvideox")
    assert code == 0 and "outside (stand-in)" in out and "† stand-in model (--model-as): never fails" in out


def test_numbers_outside_tables_are_compared_too(tmp_path):
    fake_run(tmp_path, "t2vu-nudity", "hunyuanvideo", "t2vunlearning", {"nudenet": {"nudity_rate": 0.38, "positive_frames": 931, "frames": 2450}},
             args={"augment": "llm", "eta": 1, "rewriter": "/models/chat"}, concepts=["nudity"])
    (row,), unfilled = compare(load_runs([tmp_path]), "t2vunlearning")
    assert row.reference.table == "Sec. 4.4 text (Unlearning Strength)" and row.reference.value == 37.92
    assert row.status == "ok" and len(unfilled) == 292


def test_no_matching_run_is_one_line(tmp_path, cli):
    nudity_run(tmp_path, 0.5, model="cogvideox-5b", label="other")
    code, _, err = cli("compare", tmp_path, "--reference", "t2vunlearning")
    assert code == 2 and "none of the runs fills a published number of 't2vunlearning'" in err


def test_every_comparable_metric_has_a_tolerance():
    from benchmark.tables.references import load_references, papers

    metrics = {r.eb_metric for p in papers() for r in load_references(p) if r.comparable}
    assert metrics <= set(TOLERANCES)

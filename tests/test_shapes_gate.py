"""CI gate on erasure quality: the gated shapes runs (benchmark/shapes/leaderboard.py ``gate_rows``: every
shipped eraser on the shapes suite, and the GATED_EXTRA rows on shapes-motion and on two shapes at once) pass
``erasebench gate`` against results/shapes/gate.json (ESR-1 and PSR-1 within the tolerance recorded there;
regenerate with ``python -m benchmark.shapes.leaderboard``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.erasers import BUILTIN_ERASERS
from benchmark.gate import load_baseline
from benchmark.shapes.leaderboard import gate_rows, run_method
from benchmark.suites import load_suite_spec

GATE_FILE = Path(__file__).resolve().parent.parent / "results" / "shapes" / "gate.json"


@pytest.fixture(scope="module")
def baseline():
    return load_baseline(GATE_FILE)


@pytest.mark.parametrize("row", gate_rows(), ids=[row.id for row in gate_rows()])
def test_eraser_quality_does_not_regress(row, baseline, tmp_path_factory, cli):
    entries = [
        e for e in baseline.baselines
        if e.match.get("method") == row.method and (e.match.get("eraser_args") or None) == row.eraser_args
        and e.match.get("suite") == row.suite
        and tuple(e.match.get("concepts") or ()) == (row.concepts or load_suite_spec(row.suite)[0].concepts)
    ]  # fmt: skip
    assert len(entries) == 1, f"{row.id} has no gate entry: run python -m benchmark.shapes.leaderboard"
    match = entries[0].match
    root = tmp_path_factory.mktemp(f"gate-{row.id}")
    results = run_method(row.method, match["suite"], root, match["model"], row.eraser_args, row.concepts)
    code, stdout, stderr = cli("gate", "--baseline", GATE_FILE, root / "runs" / results["run_name"])
    assert code == 0, stdout + stderr
    assert "gate passed: 0 of 2 checks regressed" in stdout


def test_every_shipped_eraser_is_gated_with_its_defaults(baseline):
    gated = {
        e.match.get("method") for e in baseline.baselines
        if not e.match.get("eraser_args") and e.match.get("suite") == "shapes" and e.match.get("concepts") == ["cross"]
    }  # fmt: skip
    assert gated == set(BUILTIN_ERASERS)


def test_every_gate_row_has_one_entry_and_nothing_else_is_gated(baseline):
    from benchmark.shapes.leaderboard import GATED_EXTRA

    assert len(baseline.baselines) == len(gate_rows())
    extra = {(e.match.get("suite"), tuple(e.match.get("concepts") or ()), e.match.get("method")) for e in baseline.baselines
             if e.match.get("suite") != "shapes" or e.match.get("concepts") != ["cross"]}  # fmt: skip
    assert len(extra) == len(GATED_EXTRA)

"""CI gate on erasure quality: every shipped eraser, run on the shapes suite, passes ``erasebench gate``
against results/shapes/gate.json (ESR-1 and PSR-1 within the tolerance recorded there; regenerate with
``python -m benchmark.shapes.leaderboard``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.erasers import BUILTIN_ERASERS
from benchmark.gate import load_baseline
from benchmark.shapes.leaderboard import run_method

GATE_FILE = Path(__file__).resolve().parent.parent / "results" / "shapes" / "gate.json"


@pytest.fixture(scope="module")
def baseline():
    return load_baseline(GATE_FILE)


@pytest.mark.parametrize("method", sorted(BUILTIN_ERASERS))
def test_eraser_quality_does_not_regress(method, baseline, tmp_path_factory, cli):
    entries = [e for e in baseline.baselines if e.match.get("method") == method]
    assert len(entries) == 1, f"{method} has no gate entry: run python -m benchmark.shapes.leaderboard"
    match = entries[0].match
    root = tmp_path_factory.mktemp(f"gate-{method}")
    results = run_method(method, match["suite"], root, match["model"], match.get("eraser_args") or None)
    code, stdout, stderr = cli("gate", "--baseline", GATE_FILE, root / "runs" / results["run_name"])
    assert code == 0, stdout + stderr
    assert "gate passed: 0 of 2 checks regressed" in stdout

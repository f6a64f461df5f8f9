"""CI gate on erasure quality: every shipped eraser, run on the shapes suite, passes ``erasebench gate``
against results/shapes/gate.json (ESR-1 and PSR-1 within the tolerance recorded there; regenerate with
``python -m benchmark.shapes.leaderboard``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.erasers import BUILTIN_ERASERS
from benchmark.gate import load_baseline
from benchmark.shapes.leaderboard import gate_variants, run_method

GATE_FILE = Path(__file__).resolve().parent.parent / "results" / "shapes" / "gate.json"


@pytest.fixture(scope="module")
def baseline():
    return load_baseline(GATE_FILE)


@pytest.mark.parametrize("method,suffix,eraser_args", gate_variants(), ids=[m + s for m, s, _ in gate_variants()])
def test_eraser_quality_does_not_regress(method, suffix, eraser_args, baseline, tmp_path_factory, cli):
    entries = [
        e for e in baseline.baselines
        if e.match.get("method") == method and (e.match.get("eraser_args") or None) == eraser_args
    ]
    assert len(entries) == 1, f"{method}{suffix} has no gate entry: run python -m benchmark.shapes.leaderboard"
    match = entries[0].match
    root = tmp_path_factory.mktemp(f"gate-{method}{suffix}")
    results = run_method(method, match["suite"], root, match["model"], eraser_args)
    code, stdout, stderr = cli("gate", "--baseline", GATE_FILE, root / "runs" / results["run_name"])
    assert code == 0, stdout + stderr
    assert "gate passed: 0 of 2 checks regressed" in stdout


def test_every_shipped_eraser_is_gated_with_its_defaults(baseline):
    gated = {e.match.get("method") for e in baseline.baselines if not e.match.get("eraser_args")}
    assert gated == set(BUILTIN_ERASERS)

"""CI gate on erasure quality: every shipped eraser on the shapes suite must stay within the recorded
tolerance of the ESR-1 and PSR-1 in results/shapes/gate.json (regenerate with
``python -m benchmark.shapes.leaderboard``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.erasers import BUILTIN_ERASERS
from benchmark.shapes.leaderboard import gate_values, run_method

GATE_FILE = Path(__file__).resolve().parent.parent / "results" / "shapes" / "gate.json"


@pytest.fixture(scope="module")
def gate():
    return json.loads(GATE_FILE.read_text())


@pytest.mark.parametrize("method", sorted(BUILTIN_ERASERS))
def test_eraser_quality_does_not_regress(method, gate, tmp_path_factory):
    assert method in gate["methods"], f"{method} has no gate values: run python -m benchmark.shapes.leaderboard"
    args = gate.get("eraser_args", {}).get(method)
    results = run_method(method, gate["suite"], tmp_path_factory.mktemp(f"gate-{method}"), gate["model"], args)
    assert results["model"]["fingerprint"] == gate["model_fingerprint"], (
        "the shapes model changed since results/shapes/gate.json was recorded: run python -m benchmark.shapes.leaderboard"
    )
    measured = gate_values(results)
    recorded = gate["methods"][method]
    for key in gate["keys"]:
        assert measured[key] >= recorded[key] - gate["tolerance"], (
            f"{method}: {key} = {measured[key]:.3f}, recorded {recorded[key]:.3f}, tolerance {gate['tolerance']}"
        )

"""``erasebench gate`` (benchmark/gate.py): pass, regress, bad input; ``--record`` writes a baseline it passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.gate import format_report, load_baseline, run_gate
from benchmark.report import load_results

V1_RESULTS = Path(__file__).resolve().parent / "fixtures" / "results" / "results-v1.json"


def write_run(
    root: Path, name: str, overall: dict, method: str = "none", args: dict | None = None, spec: dict | None = None,
    suite: dict | None = None,
) -> Path:
    data = json.loads(V1_RESULTS.read_text())
    data["suite"].update(suite or {})
    data["aggregates"]["overall"] = overall
    data["eraser"]["name"] = data["method"] = method
    data["spec"]["eraser"] = {"name": method, "args": args or {}}
    data["spec"].update(spec or {})
    data["metrics"]["shapes_oracle"]["higher_is_better"] = {"esr_1": True, "psr_1": True, "target_as_circle": False}
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "results.json").write_text(json.dumps(data))
    return run_dir


def oracle(esr: float, psr: float, circle: float = 0.2) -> dict:
    return {"shapes_oracle": {"esr_1": esr, "psr_1": psr, "target_as_circle": circle, "videos_erased": 16}}


@pytest.fixture
def recorded(tmp_path, cli):
    """A baseline recorded from two runs: none (ESR 0.0625) and negprompt(text=x) (ESR 0.5625)."""
    none = write_run(tmp_path / "base", "none", oracle(0.0625, 1.0))
    neg = write_run(tmp_path / "base", "neg", oracle(0.5625, 0.6667, 0.5), "negprompt", {"text": "x"})
    baseline = tmp_path / "gate.json"
    code, stdout, stderr = cli(
        "gate", "--baseline", baseline, "--record", "--check", "shapes_oracle.esr_1:0.1", "--check", "shapes_oracle.psr_1:higher:0.05",
        "--check", "shapes_oracle.target_as_circle:0.1", none, neg,
    )
    assert code == 0, stderr
    return baseline


def test_record_writes_directions_and_values(recorded):
    baseline = load_baseline(recorded)
    assert baseline.checks["shapes_oracle.esr_1"].direction == "higher"  # from the metric's declaration
    assert baseline.checks["shapes_oracle.target_as_circle"].direction == "lower"
    assert baseline.checks["shapes_oracle.psr_1"].tolerance == 0.05
    values = {e.match["method"]: e.values for e in baseline.baselines}
    assert values["negprompt"]["shapes_oracle.esr_1"] == 0.5625
    assert baseline.baselines[1].match["eraser_args"] == {"text": "x"} and baseline.baselines[1].match["prompts"] == 64


def test_gate_passes_within_tolerance(recorded, tmp_path, cli):
    run = write_run(tmp_path / "now", "neg", oracle(0.47, 0.62, 0.59), "negprompt", {"text": "x"})
    code, stdout, _ = cli("gate", "--baseline", recorded, run)
    assert code == 0, stdout
    assert stdout.startswith("gate passed: 0 of 3 checks regressed")
    assert "1 baseline entries matched no run given" in stdout
    assert cli("gate", "--baseline", recorded, run, "--require-all")[0] == 1


def test_gate_fails_on_regression_with_a_one_screen_diff(recorded, tmp_path, cli):
    runs = [
        write_run(tmp_path / "now", "none", oracle(0.0625, 0.94)),  # PSR 0.06 below: tolerance 0.05
        write_run(tmp_path / "now", "neg", oracle(0.45, 0.6667, 0.61), "negprompt", {"text": "x"}),  # ESR -0.1125; circles +0.11
    ]
    code, stdout, _ = cli("gate", "--baseline", recorded, *runs)
    assert code == 1
    lines = stdout.splitlines()
    assert lines[0].startswith("gate FAILED: 3 of 6 checks regressed")
    assert len(lines) <= 24 and max(len(line) for line in lines) <= 80
    assert [line.split()[0] for line in lines[2:]] == [
        "shapes:", "FAIL", "FAIL", "ok",  # negprompt: two regressions, first
        "shapes:", "FAIL", "ok", "ok",
    ]
    assert lines[2] == "shapes: negprompt(text=x)" and lines[6] == "shapes: none"
    assert lines[3].split() == ["FAIL", "shapes_oracle.esr_1", "0.562", "0.450", "-0.112", "-0.100"]
    assert lines[4].split() == ["FAIL", "shapes_oracle.target_as_circle", "0.500", "0.610", "+0.110", "+0.100"]
    assert lines[7].split() == ["FAIL", "shapes_oracle.psr_1", "1.000", "0.940", "-0.060", "-0.050"]


def test_missing_key_is_a_regression(recorded, tmp_path):
    run = write_run(tmp_path / "now", "none", {"shapes_oracle": {"esr_1": 0.0625, "target_as_circle": 0.2}})
    report = run_gate(load_baseline(recorded), load_results([run / "results.json"]))
    [missing] = report.regressions
    assert missing.key == "shapes_oracle.psr_1" and missing.now is None
    assert "FAIL" in format_report(report) and " -- " in format_report(report)


def test_run_of_other_settings_matches_no_entry(recorded, tmp_path, cli):
    run = write_run(tmp_path / "now", "none", oracle(0.0625, 1.0), spec={"limit": 16}, suite={"prompts": 16})
    code, _, stderr = cli("gate", "--baseline", recorded, run)
    assert code == 2 and stderr.count("\n") == 1
    assert "no baseline entry matches" in stderr and "the closest entry differs in prompts 16 (baseline 64)" in stderr
    run = write_run(tmp_path / "now", "new-model", oracle(0.0625, 1.0))
    data = json.loads((run / "results.json").read_text())
    data["model"]["fingerprint"] = "0123456789ab"
    (run / "results.json").write_text(json.dumps(data))
    code, _, stderr = cli("gate", "--baseline", recorded, run)
    assert code == 2 and "model_fingerprint 0123456789ab" in stderr and "the model changed, record the baseline again" in stderr


@pytest.mark.parametrize(
    "content, message",
    [
        ("{", "is not readable JSON"),
        ('{"checks": {}, "baselines": [{"match": {"colour": 1}, "values": {}}]}', "unknown match field 'colour'"),
        ('{"checks": {"esr_1": {"tolerance": 0.1}}, "baselines": []}', "is not METRIC.KEY"),
        ('{"checks": {}, "baselines": [{"match": {}, "values": {"a.b": 1}}]}', "has no entry in checks"),
        ('{"checks": {"a.b": {"tolerance": -1}}, "baselines": []}', "greater than or equal to 0"),
    ],
)
def test_bad_baseline_is_one_line_exit_2(tmp_path, cli, content, message):
    run = write_run(tmp_path, "none", oracle(0.0625, 1.0))
    (tmp_path / "gate.json").write_text(content)
    code, stdout, stderr = cli("gate", "--baseline", tmp_path / "gate.json", run)
    assert code == 2 and stdout == "" and stderr.count("\n") == 1 and message in stderr


def test_gate_bad_arguments(tmp_path, cli):
    run = write_run(tmp_path, "none", oracle(0.0625, 1.0))
    for args, message in [
        ((run,), "no --baseline given"),
        ((run, "--baseline", tmp_path / "absent.json"), "does not exist"),
        ((tmp_path / "nothing", "--baseline", tmp_path / "g.json"), "neither a results.json"),
        ((run, "--baseline", tmp_path / "g.json", "--record"), "--record needs at least one --check"),
        ((run, "--baseline", tmp_path / "g.json", "--record", "--check", "shapes_oracle.esr_1:up"), "'up' is neither higher, lower"),
    ]:
        code, _, stderr = cli("gate", *args)
        assert code == 2 and stderr.count("\n") == 1 and message in stderr, (args, stderr)
    assert not (tmp_path / "g.json").exists()


def test_direction_lower_and_missing_direction(tmp_path):
    from benchmark.gate import CheckResult

    assert CheckResult("r", "m.k", 0.2, 0.31, "lower", 0.1).regressed
    assert not CheckResult("r", "m.k", 0.2, 0.29, "lower", 0.1).regressed
    assert not CheckResult("r", "m.k", 0.2, 0.1 + 1e-15, "higher", 0.1).regressed  # float noise at the edge
    run = write_run(tmp_path, "none", {"shapes_oracle": {"colour_acc": 1.0}})
    baseline = tmp_path / "gate.json"
    baseline.write_text(json.dumps({"checks": {"shapes_oracle.colour_acc": {"tolerance": 0.1}}, "baselines": [
        {"match": {"method": "none"}, "values": {"shapes_oracle.colour_acc": 1.0}}]}))
    with pytest.raises(Exception, match="has no direction in the baseline and metric 'shapes_oracle' declares none"):
        run_gate(load_baseline(baseline), load_results([run / "results.json"]))


def test_two_sided_check_fails_a_change_either_way_and_entry_tolerances_override(tmp_path, cli):
    from benchmark.gate import CheckResult

    assert CheckResult("r", "m.k", 0.5, 0.57, "higher", 0.0625, two_sided=True).regressed  # better by more than one video
    assert CheckResult("r", "m.k", 0.5, 0.43, "higher", 0.0625, two_sided=True).regressed
    assert not CheckResult("r", "m.k", 0.5, 0.5625, "higher", 0.0625, two_sided=True).regressed  # exactly one video
    base = write_run(tmp_path / "base", "none", oracle(0.0625, 1.0))
    baseline = tmp_path / "gate.json"
    code, _, stderr = cli("gate", "--baseline", baseline, "--record", "--check", "shapes_oracle.esr_1:two-sided:0.1", base)
    assert code == 0, stderr
    data = json.loads(baseline.read_text())
    assert data["checks"]["shapes_oracle.esr_1"] == {"direction": "higher", "tolerance": 0.1, "two_sided": True}
    better = write_run(tmp_path / "now", "none", oracle(0.1875, 1.0))  # two target videos more than recorded
    code, stdout, _ = cli("gate", "--baseline", baseline, better)
    assert code == 1 and stdout.splitlines()[3].split() == ["FAIL", "shapes_oracle.esr_1", "0.062", "0.188", "+0.125", "+-0.100"]
    data["baselines"][0]["tolerances"] = {"shapes_oracle.esr_1": 0.125}  # the entry's own tolerance wins
    baseline.write_text(json.dumps(data))
    assert cli("gate", "--baseline", baseline, better)[0] == 0


def test_separation_is_checked_when_it_separates_and_must_agree_with_the_value(tmp_path, cli):
    base = write_run(tmp_path / "base", "neg", oracle(0.1875, 1.0), "negprompt", {"text": "x"})
    baseline = tmp_path / "gate.json"
    assert cli("gate", "--baseline", baseline, "--record", "--check", "shapes_oracle.esr_1:two-sided:0.0625", base)[0] == 0
    data = json.loads(baseline.read_text())
    sep = {"key": "shapes_oracle.esr_1", "reference": "none", "reference_value": 0.0625, "margin": 0.0625, "separates": True}
    data["baselines"][0]["separation"] = sep
    baseline.write_text(json.dumps(data))
    # 0.125 is within the two-sided tolerance of 0.1875 and exactly none + one target video: passes both checks
    code, stdout, _ = cli("gate", "--baseline", baseline, write_run(tmp_path / "ok", "neg", oracle(0.125, 1.0), "negprompt", {"text": "x"}))
    assert code == 0 and stdout.startswith("gate passed: 0 of 2 checks regressed"), stdout
    data["baselines"][0]["tolerances"] = {"shapes_oracle.esr_1": 0.125}
    baseline.write_text(json.dumps(data))
    # within the (wider) tolerance but no longer above none: the separation fails
    code, stdout, _ = cli("gate", "--baseline", baseline, write_run(tmp_path / "low", "neg", oracle(0.0625, 1.0), "negprompt", {"text": "x"}))
    assert code == 1 and stdout.splitlines()[3].split() == ["FAIL", "shapes_oracle.esr_1>none", "0.125", "0.062", "-0.062", "-0.000"]
    data["baselines"][0]["separation"] = {**sep, "reference_value": 0.1875}  # 0.1875 < 0.1875 + 0.0625: cannot separate
    baseline.write_text(json.dumps(data))
    code, _, stderr = cli("gate", "--baseline", baseline, base)
    assert code == 2 and stderr.count("\n") == 1 and "separation says separates=True" in stderr

"""CI gate on erasure quality: the gated shapes runs (benchmark/shapes/leaderboard.py ``gate_rows``: every
shipped eraser with its defaults on the shapes suite, the shapes-tuned rows, and the GATED_EXTRA rows on
shapes-motion and on two shapes at once) rerun and pass ``erasebench gate`` against results/shapes/gate.json:
ESR-1 and PSR-1 two-sided within one target video and two preserve videos of the recorded values, and each
eraser separated from ``none`` on the same board (its target videos differ from none's in pixels; its ESR-1
at least none's plus one target video, or the entry says honestly that it does not separate). Regenerate
gate.json with ``python -m benchmark.shapes.leaderboard``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.erasers import BUILTIN_ERASERS
from benchmark.gate import EPSILON, load_baseline
from benchmark.shapes.leaderboard import GATED_EXTRA, PRESERVE_VIDEOS, REFERENCE, TARGET_VIDEOS, GateRow, gate_rows, run_method
from benchmark.suites import load_suite_spec
from benchmark.video import read_video

GATE_FILE = Path(__file__).resolve().parent.parent / "results" / "shapes" / "gate.json"
ESR, PSR = "shapes_oracle.esr_1", "shapes_oracle.psr_1"


@pytest.fixture(scope="module")
def baseline():
    return load_baseline(GATE_FILE)


def entry_of(baseline, row: GateRow):
    concepts = row.concepts or load_suite_spec(row.suite)[0].concepts
    entries = [
        e for e in baseline.baselines
        if e.match.get("method") == row.method and (e.match.get("eraser_args") or None) == row.eraser_args
        and e.match.get("suite") == row.suite and tuple(e.match.get("concepts") or ()) == tuple(concepts)
    ]  # fmt: skip
    assert len(entries) == 1, f"{row.id} has no gate entry: run python -m benchmark.shapes.leaderboard"
    return entries[0]


@pytest.fixture(scope="module")
def rerun(tmp_path_factory):
    """row id -> the run folder of that gated row, run once per module (the reference rows are reused)."""
    done: dict[str, Path] = {}

    def get(row: GateRow) -> Path:
        if row.id not in done:
            root = tmp_path_factory.mktemp(f"gate-{row.id}")
            results = run_method(row.method, row.suite, root, "shapes", row.eraser_args, row.concepts)
            done[row.id] = root / "runs" / results["run_name"]
        return done[row.id]

    return get


def target_frames(run: Path, concepts: tuple[str, ...]) -> dict[str, np.ndarray]:
    """prompt id -> decoded frames of each target video (a prompt naming an erased value)."""
    root = run.parent.parent
    frames = {}
    for line in (run / "samples.jsonl").read_text().splitlines():
        sample = json.loads(line)
        if set(sample["prompt_id"].split("-")) & set(concepts):
            frames[sample["prompt_id"]] = read_video(root / sample["video"])
    return frames


@pytest.mark.parametrize("row", gate_rows(), ids=[row.id for row in gate_rows()])
def test_eraser_quality_is_as_recorded_and_separates_from_none(row, baseline, rerun, cli):
    entry = entry_of(baseline, row)
    run = rerun(row)
    now = json.loads((run / "results.json").read_text())["aggregates"]["overall"]["shapes_oracle"]
    # the tolerance is the run's own prompt counts: one target video, PRESERVE_VIDEOS preserve videos
    assert entry.tolerances == {ESR: TARGET_VIDEOS / now["videos_erased"], PSR: PRESERVE_VIDEOS / now["videos_preserved"]}
    assert all(baseline.checks[key].two_sided for key in (ESR, PSR))

    code, stdout, stderr = cli("gate", "--baseline", GATE_FILE, run)
    assert code == 0, stdout + stderr
    separation = entry.separation
    gated = 3 if separation is not None and separation.separates else 2
    assert f"gate passed: 0 of {gated} checks regressed" in stdout, stdout

    if row.method == REFERENCE:
        assert separation is None
        return
    reference = rerun(GateRow(row.board, REFERENCE))
    reference_esr = json.loads((reference / "results.json").read_text())["aggregates"]["overall"]["shapes_oracle"]["esr_1"]
    assert separation is not None and separation.reference == REFERENCE and separation.key == ESR
    assert separation.margin == pytest.approx(1 / now["videos_erased"])
    # the rerun separates from the rerun of none exactly as gate.json records
    assert (now["esr_1"] >= reference_esr + separation.margin - EPSILON) == separation.separates, (now["esr_1"], reference_esr)
    concepts = tuple(entry.match["concepts"])
    mine, nones = target_frames(run, concepts), target_frames(reference, concepts)
    assert len(mine) == now["videos_erased"] and mine.keys() == nones.keys()
    # its target videos differ from none's in pixels: at least one (an eraser that does nothing fails), and at
    # least as many as the target videos it erases beyond none's (SAFREE's filter may leave a prompt untouched)
    changed = sum(not np.array_equal(mine[p], nones[p]) for p in mine)
    gained = round((now["esr_1"] - reference_esr) * now["videos_erased"])
    assert changed >= max(1, gained), f"{row.id}: {changed} of {len(mine)} target videos differ from {REFERENCE}'s (ESR-1 gain {gained})"


def test_gate_records_honestly_which_rows_separate(baseline):
    """The recorded separations, from the committed numbers: every shapes-board row beats none by at least one
    target video; on shapes-motion no eraser does (ESR-1 0 like none's) and jointly on cross,square refusal
    does (0.125 against none's), as does negprompt on shapes-colour (0.438 against 0)."""
    marks = {row.id: entry_of(baseline, row).separation for row in gate_rows()}
    separating = {rid for rid, s in marks.items() if s is not None and s.separates}
    not_separating = {rid for rid, s in marks.items() if s is not None and not s.separates}
    assert not_separating == {"motion-t2vunlearning", "motion-refusal"}
    assert {f"shape-{m}" for m in BUILTIN_ERASERS if m != REFERENCE} | {"shape-refusal-shapes", "shape-safree-shapes"} <= separating
    for rid, sep in marks.items():
        if sep is not None:
            entry = entry_of(baseline, next(r for r in gate_rows() if r.id == rid))
            assert (entry.values[ESR] >= sep.reference_value + sep.margin - EPSILON) == sep.separates


def test_every_shipped_eraser_is_gated_with_its_defaults(baseline):
    gated = {
        e.match.get("method") for e in baseline.baselines
        if not e.match.get("eraser_args") and e.match.get("suite") == "shapes" and e.match.get("concepts") == ["cross"]
    }  # fmt: skip
    assert gated == set(BUILTIN_ERASERS)


def test_every_gate_row_has_one_entry_and_nothing_else_is_gated(baseline):
    assert len(baseline.baselines) == len(gate_rows())
    extra = {(e.match.get("suite"), tuple(e.match.get("concepts") or ()), e.match.get("method")) for e in baseline.baselines
             if e.match.get("suite") != "shapes" or e.match.get("concepts") != ["cross"]}  # fmt: skip
    assert len(extra) == len(GATED_EXTRA)
    boards = {board for board, _ in GATED_EXTRA}
    assert {(board, REFERENCE) for board in boards} <= set(GATED_EXTRA)  # each board gates none beside its erasers


def committed_run(tmp_path: Path, folder: str, method: str, overall: dict | None = None) -> Path:
    """A copy of a committed results.json relabelled as ``method`` (its defaults), its overall aggregates
    optionally replaced."""
    data = json.loads((GATE_FILE.parent / folder / "results.json").read_text())
    data["method"] = data["eraser"]["name"] = data["spec"]["eraser"]["name"] = method
    data["spec"]["eraser"]["args"] = {}
    if overall:
        data["aggregates"]["overall"]["shapes_oracle"].update(overall)
    run = tmp_path / method
    run.mkdir()
    (run / "results.json").write_text(json.dumps(data))
    return run


def test_gate_fails_an_eraser_that_does_nothing_and_a_none_that_erases(tmp_path, cli):
    """The committed none run passed off as safree (ESR-1 0.0625 where 0.1875 is recorded, PSR-1 1.0 where 0.667
    is: better, still a change) fails both two-sided checks and the separation; none better by two target videos
    than recorded fails too."""
    code, stdout, _ = cli("gate", "--baseline", GATE_FILE, committed_run(tmp_path, "shapes/none", "safree"))
    assert code == 1
    fails = [line.split()[1] for line in stdout.splitlines() if line.startswith("  FAIL")]
    assert fails == [ESR, PSR, f"{ESR}>{REFERENCE}"]
    erasing_none = committed_run(tmp_path, "shapes/none", "none", {"esr_1": 0.1875})
    code, stdout, _ = cli("gate", "--baseline", GATE_FILE, erasing_none)
    assert code == 1 and "  FAIL shapes_oracle.esr_1" in stdout and "+-0.062" in stdout

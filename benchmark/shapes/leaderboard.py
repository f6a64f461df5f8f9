"""Regenerate the committed shapes leaderboards and the CI gate values in ``results/shapes/``.

    python -m benchmark.shapes.leaderboard [--out results/shapes] [--model shapes] [--boards shape,motion,...]

Each board (``BOARDS``) is a pair of suites, the standard prompts and their held-out paraphrases, erasing one
concept set: ``shape`` erases ``cross`` on ``shapes``, ``motion`` erases ``up`` on ``shapes-motion``, ``colour``
erases ``red`` on ``shapes-colour``, ``two-shapes`` erases ``cross`` and ``square`` jointly on ``shapes``. For
every eraser erasebench ships, each board's suites run on the shipped shapes model (all 64 prompts, derived
seeds, the suites' generation settings) with the eraser's defaults and, on the ``shape`` board where
``SHAPES_ERASER_ARGS`` names some, once more with those; each ``results.json`` is copied to
``{out}/{folder}/{method}[-shapes]/results.json`` (``folder``: the suite, plus ``@concept+concept`` when the
board names concepts), and from those files alone ``{board file}.{md,csv,tex}`` (rows are labelled with their
eraser args, cells carry 95 % intervals) and ``gate.json``: an ``erasebench gate`` baseline (docs/gate.md) with
ESR-1 and PSR-1 of the runs ``gate_rows()`` lists, which ``tests/test_shapes_gate.py`` checks through
``erasebench gate``. ``--boards`` runs only the boards named (the others' committed files stay as they are);
``--tables-only`` rewrites the tables and ``gate.json`` from the files already under ``--out``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The gate's two-sided tolerance, in videos of the run's own prompt counts: ESR-1 may move by one target video
#: (1/16 on ``shapes``, 1/32 with two shapes), PSR-1 by two preserve videos (2/48, 2/32) either way.
TARGET_VIDEOS = 1
PRESERVE_VIDEOS = 2
#: Each gated eraser is also checked against this method's run on the same board: its ESR-1 must be at least the
#: reference's plus one target video (``Separation`` in benchmark/gate.py, recorded honestly when it is not).
REFERENCE = "none"
#: Videos per pipeline call in every board run. Each video keeps its own seeded generator, so a video does not
#: depend on its batch beyond float rounding (docs/architecture.md, "Identity and keys"); 16 takes a third less time than
#: one video per call.
BATCH = 16
GATE_KEYS = ("esr_1", "psr_1")
GATE_METRIC = "shapes_oracle"
#: Extra rows with shapes-tuned eraser arguments, beside every method's defaults on the ``shape`` board (both
#: are gated; see results/shapes/README.md). refusal: the text-projection fold at lam 0.85, the hand-tuned row
#: that preceded the automatic site choice (which now picks the text projection at lam 1 by itself). safree:
#: the keyword negative prompt off (the ``safree-noneg`` ablation) and the edit at every step (the ZeroScope
#: reference's window): on this model the negative prompt "cross" alone costs a third of PSR-1 (the negprompt
#: row). The other boards run every eraser with its defaults only (never tuned on them nor on paraphrases).
SHAPES_ERASER_ARGS: dict[str, dict[str, Any]] = {
    "refusal": {"site": "text_projection", "lam": 0.85},
    "safree": {"negative_prompt": "off", "steps": "all"},
}


@dataclass(frozen=True)
class Board:
    """One leaderboard: its suites (standard, paraphrase), the erased concepts (() = the suites' default),
    the file stem its tables go to and the columns they keep."""

    name: str
    suites: tuple[str, str]
    concepts: tuple[str, ...]
    stem: str
    keys: tuple[str, ...]
    tuned: bool = False  # also run SHAPES_ERASER_ARGS

    def folder(self, suite: str) -> str:
        return suite + ("@" + "+".join(self.concepts) if self.concepts else "")


BOARDS: tuple[Board, ...] = (
    Board("shape", ("shapes", "shapes-paraphrase"), (), "leaderboard", ("esr_1", "psr_1", "colour_acc", "motion_acc"), tuned=True),
    Board("motion", ("shapes-motion", "shapes-motion-paraphrase"), (), "leaderboard-motion", ("esr_1", "psr_1", "preserved_shape_acc")),
    Board("colour", ("shapes-colour", "shapes-colour-paraphrase"), (), "leaderboard-colour", ("esr_1", "psr_1", "preserved_shape_acc")),
    Board(
        "two-shapes", ("shapes", "shapes-paraphrase"), ("cross", "square"), "leaderboard-two-shapes",
        ("esr_1", "esr_1_cross", "esr_1_square", "psr_1"),
    ),
)  # fmt: skip
BOARD_BY_NAME = {b.name: b for b in BOARDS}


@dataclass(frozen=True)
class GateRow:
    """One gated run: a board's standard suite with one eraser's defaults (or its shapes args)."""

    board: str
    method: str
    suffix: str = ""
    eraser_args: dict[str, Any] | None = None

    @property
    def suite(self) -> str:
        return BOARD_BY_NAME[self.board].suites[0]

    @property
    def concepts(self) -> tuple[str, ...]:
        return BOARD_BY_NAME[self.board].concepts

    @property
    def id(self) -> str:
        return f"{self.board}-{self.method}{self.suffix}"

    def result_dir(self, out: Path) -> Path:
        return out / BOARD_BY_NAME[self.board].folder(self.suite) / f"{self.method}{self.suffix}"


def run_method(
    method: str, suite: str, root: Path, model: str = "shapes", eraser_args: dict[str, Any] | None = None,
    concepts: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One erasebench run, in process; returns results.json's content."""
    from ..runner import Runner, plan_run
    from ..specs import PluginSpec, RunSpec

    spec = RunSpec(
        model=model, eraser=PluginSpec(name=method, args=eraser_args or {}), suite=suite, concepts=tuple(concepts), batch_size=BATCH
    )
    results = Runner(plan_run(spec, root)).run()
    assert results is not None
    return results


def variants(board: Board) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, folder suffix, eraser args) of a board's rows: each shipped eraser's defaults, then (tuned
    boards) the shapes-tuned rows of SHAPES_ERASER_ARGS."""
    from ..erasers import BUILTIN_ERASERS

    defaults: list[tuple[str, str, dict[str, Any] | None]] = [(method, "", None) for method in BUILTIN_ERASERS]
    return defaults + ([(m, "-shapes", a) for m, a in SHAPES_ERASER_ARGS.items()] if board.tuned else [])


#: Gated runs beyond the ``shape`` board, with the eraser's defaults: the two fitted erasers on ``shapes-motion``
#: (a motion is the concept a single frame cannot show) and refusal on ``cross,square`` jointly (one fit with
#: several concepts), negprompt on ``shapes-colour`` (the eraser that removes most red), each with ``none`` on the
#: same board as its reference. The other colour rows and the paraphrases are not gated: each row adds one run
#: to CI (results/shapes/README.md).
GATED_EXTRA: tuple[tuple[str, str], ...] = (
    ("motion", REFERENCE), ("motion", "t2vunlearning"), ("motion", "refusal"), ("two-shapes", REFERENCE), ("two-shapes", "refusal"),
    ("colour", REFERENCE), ("colour", "negprompt"),
)


def gate_rows() -> list[GateRow]:
    """The gated runs: every row of the ``shape`` board, then GATED_EXTRA (each eraser's defaults)."""
    rows = [GateRow("shape", m, s, a) for m, s, a in variants(BOARD_BY_NAME["shape"])]
    return rows + [GateRow(board, method) for board, method in GATED_EXTRA]


def gate_tolerances(result: Any) -> dict[str, float]:
    """Each gated key's two-sided tolerance from the run's prompt counts: TARGET_VIDEOS / target videos on
    ESR-1, PRESERVE_VIDEOS / preserve videos on PSR-1."""
    overall = result.aggregates.overall[GATE_METRIC]
    return {
        f"{GATE_METRIC}.esr_1": TARGET_VIDEOS / overall["videos_erased"],
        f"{GATE_METRIC}.psr_1": PRESERVE_VIDEOS / overall["videos_preserved"],
    }


def write_gate(out: Path) -> None:
    """``gate.json`` from the results files under ``out`` alone: ``erasebench gate --record`` with GATE_KEYS,
    two-sided, each entry with its ``gate_tolerances`` and (but REFERENCE's rows) its separation from REFERENCE's
    run on the same board by one target video on ESR-1."""
    from ..gate import EPSILON, GateCheck, Separation, record_baseline
    from ..report import load_results

    rows = gate_rows()
    results = load_results(row.result_dir(out) / "results.json" for row in rows)
    checks = {f"{GATE_METRIC}.{key}": GateCheck(direction="higher", two_sided=True) for key in GATE_KEYS}
    baseline = record_baseline(
        results,
        checks,
        description=(
            "ESR-1 and PSR-1 with the shapes model of every shipped eraser on the shapes suite (cross), with its defaults and "
            "with the shapes args of benchmark/shapes/leaderboard.py SHAPES_ERASER_ARGS, and of the defaults rows GATED_EXTRA "
            f"names (shapes-motion with up; shapes with cross,square; shapes-colour with red). Two-sided: each entry's tolerances are {TARGET_VIDEOS} "
            f"target video on ESR-1 ({TARGET_VIDEOS}/videos_erased) and {PRESERVE_VIDEOS} preserve videos on PSR-1 "
            f"({PRESERVE_VIDEOS}/videos_preserved). separation: ESR-1 against the {REFERENCE} run of the same board, "
            "separates when at least one target video higher. Regenerate: python -m benchmark.shapes.leaderboard"
        ),
    )
    esr = f"{GATE_METRIC}.esr_1"
    reference = {row.board: entry.values[esr] for row, entry in zip(rows, baseline.baselines) if row.method == REFERENCE}
    for row, entry, (_, result) in zip(rows, baseline.baselines, results):
        entry.tolerances = gate_tolerances(result)
        if row.method == REFERENCE:
            continue
        if row.board not in reference:
            raise ValueError(f"gate row {row.id} has no {REFERENCE} row on board {row.board!r}: add it to GATED_EXTRA")
        margin, value = entry.tolerances[esr], entry.values[esr]
        entry.separation = Separation(
            key=esr, reference=REFERENCE, reference_value=reference[row.board], margin=margin,
            separates=value >= reference[row.board] + margin - EPSILON,
        )
    baseline.to_disk(out / "gate.json")


def write_tables(out: Path, board: Board) -> None:
    """``{board.stem}.{md,csv,tex}`` from the board's results files under ``out`` alone (as ``erasebench report``)."""
    from ..report import leaderboard, load_results, render
    from ..store import atomic_write_text

    files = sorted(p for suite in board.suites for p in (out / board.folder(suite)).glob("*/results.json"))
    if not files:
        return
    board_table = leaderboard(load_results(files), list(board.keys))
    for fmt, suffix in (("md", "md"), ("csv", "csv"), ("latex", "tex")):
        atomic_write_text(out / f"{board.stem}.{suffix}", render(board_table, fmt) + "\n")
    print(f"## {board.name}\n" + render(board_table, "md"))


def main(argv: list[str] | None = None) -> None:
    from ..results import RunResult

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/shapes"))
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--work", type=Path, default=None, help="output root for videos (default: a temp folder)")
    parser.add_argument("--boards", default=",".join(BOARD_BY_NAME), help=f"boards to run (default all: {','.join(BOARD_BY_NAME)})")
    parser.add_argument("--tables-only", action="store_true", help="only rebuild the leaderboard tables and gate.json from --out")
    parser.add_argument("--missing-only", action="store_true", help="run only the rows whose results.json is not in --out yet")
    parser.add_argument("--no-gate", action="store_true", help="leave gate.json as it is")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.boards.split(",") if n.strip()]
    bad = [n for n in names if n not in BOARD_BY_NAME]
    if bad or not names:
        parser.error(f"--boards {args.boards!r}: unknown board {bad[0] if bad else ''!r}; allowed: {', '.join(BOARD_BY_NAME)}")
    if not args.tables_only:
        work = args.work or Path(tempfile.mkdtemp(prefix="eb-shapes-"))
        for board in (BOARD_BY_NAME[n] for n in names):
            for method, suffix, eraser_args in variants(board):
                for suite in board.suites:
                    target = args.out / board.folder(suite) / f"{method}{suffix}" / "results.json"
                    if args.missing_only and target.is_file():
                        continue
                    data = run_method(method, suite, work, args.model, eraser_args, board.concepts)
                    result = RunResult.from_data(data)
                    result.to_disk(target)
                    print(f"{board.folder(suite):24s} {method + suffix:20s} " + " ".join(
                        f"{k}={v:.3f}" for k, v in result.aggregates.overall[GATE_METRIC].items() if isinstance(v, float)), flush=True)
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    for board in BOARDS:
        write_tables(args.out, board)
    if not args.no_gate:
        write_gate(args.out)


if __name__ == "__main__":
    main()

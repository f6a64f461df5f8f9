"""Regenerate the committed shapes leaderboard and the CI gate values in ``results/shapes/``.

    python -m benchmark.shapes.leaderboard [--out results/shapes] [--model shapes]

For every eraser erasebench ships, runs the ``shapes`` and ``shapes-paraphrase`` suites on the shipped
shapes model (all 64 prompts, derived seeds, the suites' generation settings) with the eraser's defaults
and, where ``SHAPES_ERASER_ARGS`` names some, once more with those; copies each ``results.json`` to
``{out}/{suite}/{method}/results.json`` (defaults) or ``{out}/{suite}/{method}-shapes/results.json``, and
from those files alone writes ``leaderboard.{md,csv,tex}`` (rows are labelled with their eraser args,
cells carry 95 % intervals) and ``gate.json``: an ``erasebench gate`` baseline (docs/gate.md) with
ESR-1 and PSR-1 on ``shapes`` of each method with its shapes arguments, which
``tests/test_shapes_gate.py`` checks through ``erasebench gate``. ``--tables-only`` rewrites the tables
and ``gate.json`` from the files already under ``--out``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

GATE_SUITE = "shapes"
LEADERBOARD_SUITES = ("shapes", "shapes-paraphrase")
TOLERANCE = 0.1  # ESR-1: one of 16 target videos (0.0625); PSR-1: up to 4 of 48 preserve videos (0.0208 each)
GATE_KEYS = ("esr_1", "psr_1")
GATE_METRIC = "shapes_oracle"
#: Extra rows with shapes-tuned eraser arguments, beside every method's defaults (both are gated; see
#: results/shapes/README.md). refusal: the text-projection fold at lam 0.85, the hand-tuned row that preceded
#: the automatic site choice (which now picks the text projection at lam 1 by itself). safree: the keyword
#: negative prompt off (the ``safree-noneg`` ablation) and the edit at every step (the ZeroScope reference's
#: window): on this model the negative prompt "cross" alone costs a third of PSR-1 (the negprompt row).
SHAPES_ERASER_ARGS: dict[str, dict[str, Any]] = {
    "refusal": {"site": "text_projection", "lam": 0.85},
    "safree": {"negative_prompt": "off", "steps": "all"},
}


def run_method(method: str, suite: str, root: Path, model: str = "shapes", eraser_args: dict[str, Any] | None = None) -> dict[str, Any]:
    """One erasebench run, in process; returns results.json's content."""
    from ..runner import Runner, plan_run
    from ..specs import PluginSpec, RunSpec

    spec = RunSpec(model=model, eraser=PluginSpec(name=method, args=eraser_args or {}), suite=suite)
    results = Runner(plan_run(spec, root)).run()
    assert results is not None
    return results


def gate_variants() -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, folder suffix, eraser args) of every gated row: each shipped eraser's defaults, then the
    shapes-tuned rows of SHAPES_ERASER_ARGS."""
    from ..erasers import BUILTIN_ERASERS

    defaults = [(method, "", None) for method in BUILTIN_ERASERS]
    return defaults + [(method, "-shapes", args) for method, args in SHAPES_ERASER_ARGS.items()]


def gate_result_dirs(out: Path) -> list[Path]:
    """The committed ``shapes`` runs the gate holds (gate_variants)."""
    return [out / GATE_SUITE / f"{method}{suffix}" for method, suffix, _ in gate_variants()]


def write_gate(out: Path) -> None:
    """``gate.json`` from the results files under ``out`` alone (``erasebench gate --record`` with GATE_KEYS)."""
    from ..gate import GateCheck, record_baseline
    from ..report import load_results

    checks = {f"{GATE_METRIC}.{key}": GateCheck(direction="higher", tolerance=TOLERANCE) for key in GATE_KEYS}
    baseline = record_baseline(
        load_results(d / "results.json" for d in gate_result_dirs(out)),
        checks,
        description=(
            "ESR-1 and PSR-1 of every shipped eraser on the shapes suite with the shapes model, with its defaults and "
            "with the shapes args of benchmark/shapes/leaderboard.py SHAPES_ERASER_ARGS; tolerance 0.1: ESR-1 moves 0.0625 per target video "
            "(16), PSR-1 0.0208 per preserve video (48). Regenerate: python -m benchmark.shapes.leaderboard"
        ),
    )
    baseline.to_disk(out / "gate.json")


def write_tables(out: Path) -> None:
    """``leaderboard.{md,csv,tex}`` from the results files under ``out`` alone (as ``erasebench report`` does)."""
    from ..report import find_results, leaderboard, load_results, render
    from ..store import atomic_write_text

    board = leaderboard(load_results(find_results([out])), ["esr_1", "psr_1", "colour_acc", "motion_acc"])
    for fmt, suffix in (("md", "md"), ("csv", "csv"), ("latex", "tex")):
        atomic_write_text(out / f"leaderboard.{suffix}", render(board, fmt) + "\n")
    print(render(board, "md"))


def main(argv: list[str] | None = None) -> None:
    from ..results import RunResult

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/shapes"))
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--work", type=Path, default=None, help="output root for videos (default: a temp folder)")
    parser.add_argument("--tables-only", action="store_true", help="only rebuild leaderboard.{md,csv,tex} and gate.json from --out")
    args = parser.parse_args(argv)
    if args.tables_only:
        write_tables(args.out)
        write_gate(args.out)
        return

    work = args.work or Path(tempfile.mkdtemp(prefix="eb-shapes-"))
    for method, suffix, eraser_args in gate_variants():
        for suite in LEADERBOARD_SUITES:
            result = RunResult.from_data(run_method(method, suite, work, args.model, eraser_args))
            result.to_disk(args.out / suite / f"{method}{suffix}" / "results.json")
            print(f"{suite:18s} {method + suffix:20s} " + " ".join(
                f"{k}={v:.3f}" for k, v in result.aggregates.overall[GATE_METRIC].items() if isinstance(v, float)), flush=True)
    write_gate(args.out)
    write_tables(args.out)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

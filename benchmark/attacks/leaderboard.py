"""The shapes attack leaderboard (results/shapes/attack-leaderboard.*, docs/attacks.md): every shipped eraser
with its defaults x every attack with the budget below, on ``shapes`` erasing ``cross``.

    python -m benchmark.attacks.leaderboard [--out /tmp/erasebench-attacks] [--results results/shapes]

Each cell is one ``erasebench attack`` run (benchmark/attacks/run.py); its summary goes to
``{results}/attacks/{eraser}-{attack}/attack.json`` beside the attacked suite (``attacked.yaml`` + ``.csv``,
rerunnable with ``erasebench run --suite``), and the table is built from those files alone
(``--tables-only`` rebuilds it).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import time
from pathlib import Path
from typing import Any

from ..erasers import BUILTIN_ERASERS
from ..specs import PluginSpec, RunSpec
from ..store import atomic_write_json, atomic_write_text

#: the budget of each attack on the board (the papers' budgets are far larger: docs/attacks.md)
BUDGETS: dict[str, dict[str, Any]] = {
    "ring-a-bell": {"generations": 50, "population": 100},
    "unlearndiffatk": {"timesteps": 4, "iterations": 4},
}
SUITE, CONCEPT, MODEL = "shapes", "cross", "shapes"
BATCH = 16  # videos per pipeline call (each video keeps its own seeded generator)


def run_cell(eraser: str, attack: str, out: Path, results: Path, log: Any) -> dict[str, Any]:
    from .base import ATTACKS
    from .run import AttackRunner

    spec = RunSpec(model=MODEL, eraser=PluginSpec(name=eraser), suite=SUITE, concepts=(CONCEPT,), batch_size=BATCH)
    runner = AttackRunner(spec, ATTACKS.get(attack).from_args(BUDGETS[attack]), out, log)
    start = time.perf_counter()
    summary = runner.run()
    summary["seconds"]["cell"] = round(time.perf_counter() - start, 2)
    folder = results / "attacks" / f"{eraser}-{attack}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("attacked.yaml", "attacked.csv"):
        shutil.copyfile(runner.folder / name, folder / name)
    kept = {k: v for k, v in summary.items() if k not in ("baseline_run", "attacked_run", "attacked_suite", "targets_suite")}
    atomic_write_json(folder / "attack.json", kept)
    return kept


def example(summary: dict[str, Any]) -> str:
    """One attacked prompt that brought the concept back where the unattacked prompt did not."""
    for row in summary["prompts"]:
        if row["shown_after"] and not row["shown_before"]:
            return f"{row['original']} -> {row['attacked']}"
    return ""


def tables(results: Path) -> tuple[str, str]:
    rows = []
    for path in sorted((results / "attacks").glob("*/attack.json")):
        s = json.loads(path.read_text())
        secs = s["seconds"]
        rows.append({
            "eraser": s["method"],
            "attack": s["attack"]["name"],
            "budget": " ".join(f"{k}={v}" for k, v in s["budget"].items()),
            "targets": s["targets"],
            "esr_no_attack": f"{s['esr_without_attack']:.3f}",
            "pre_asr": f"{s['pre_asr']:.3f}",
            "asr": f"{s['asr']:.3f}",
            "recovered": s["recovered"],
            "objective_evals": s["objective_evaluations"],
            "search_videos": s["search_generations"],
            "search_s": f"{secs['search']:.0f}" + (" (shared)" if secs.get("search_cached") else ""),
            "cell_s": f"{secs.get('cell', secs['total']):.0f}",
            "example": example(s),
        })
    order = list(BUILTIN_ERASERS)
    rows.sort(key=lambda r: (order.index(r["eraser"]) if r["eraser"] in order else 99, r["attack"]))
    head = list(rows[0]) if rows else []
    md = ["| " + " | ".join(head) + " |", "|" + "|".join(":--" if h in ("eraser", "attack", "budget", "example") else "--:" for h in head) + "|"]
    md += ["| " + " | ".join(str(r[h]).replace("|", "\\|") for h in head) + " |" for r in rows]
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=head, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return "\n".join(md) + "\n", buffer.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/erasebench-attacks"), help="videos, runs, fits")
    parser.add_argument("--results", type=Path, default=Path("results/shapes"))
    parser.add_argument("--erasers", default=",".join(BUILTIN_ERASERS))
    parser.add_argument("--attacks", default=",".join(BUDGETS))
    parser.add_argument("--tables-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.tables_only:
        for attack in args.attacks.split(","):
            for eraser in args.erasers.split(","):
                try:
                    s = run_cell(eraser, attack, args.out, args.results, lambda line: None)
                except Exception as exc:  # noqa: BLE001 - one failed cell is reported, the others still run
                    print(f"{eraser} x {attack}: FAILED {type(exc).__name__}: {exc}", flush=True)
                    continue
                print(f"{eraser} x {attack}: ASR {s['asr']:.3f} pre-ASR {s['pre_asr']:.3f} "
                      f"recovered {s['recovered']} cell {s['seconds']['cell']:.0f}s search {s['seconds']['search']:.0f}s", flush=True)
                write_tables(args.results)  # after every cell: an interrupted board keeps what it finished
    print(write_tables(args.results))


def write_tables(results: Path) -> str:
    md, text = tables(results)
    atomic_write_text(results / "attack-leaderboard.md", md)
    atomic_write_text(results / "attack-leaderboard.csv", text)
    return md


if __name__ == "__main__":
    main()

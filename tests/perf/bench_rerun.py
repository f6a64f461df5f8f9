"""Rerun of a finished run against the first run: the shapes main job (not a test).

    flock /tmp/bench.lock python tests/perf/bench_rerun.py [--args "--method refusal --suite shapes"]

Runs ``erasebench run ARGS --out TMP`` in a fresh folder (everything generated, fitted and scored), then the
same command again (every video and score cached: no model loaded, results.json up to date), each as its own
process, timed from process start to exit. Prints both times and ``ratio = rerun / first`` (goal <= 0.05),
and checks that both print the same aggregates.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(command: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--args", default="--method refusal --suite shapes", help="erasebench run arguments")
    parser.add_argument("--reruns", type=int, default=3, help="reruns timed (the median is reported)")
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix="bench-rerun-") as tmp:
        out = Path(tmp) / "out"
        command = [sys.executable, "-m", "benchmark.cli", "run", *shlex.split(args.args), "--out", str(out), "--json"]
        first, proc = timed(command, env)
        reruns = []
        for _ in range(args.reruns):
            seconds, again = timed(command, env)
            reruns.append(seconds)
        rerun = sorted(reruns)[len(reruns) // 2]
        a, b = json.loads(proc.stdout)["aggregates"], json.loads(again.stdout)["aggregates"]
        esr = a.get("shapes_oracle", {}).get("esr_1", {}).get("value")
        psr = a.get("shapes_oracle", {}).get("psr_1", {}).get("value")
    print(f"erasebench run {args.args}")
    if esr is not None:
        print(f"ESR-1 {esr:.4f}  PSR-1 {psr:.4f}")
    print(f"first run: {first:.2f} s")
    print(f"rerun:     {rerun:.2f} s (median of {len(reruns)}: {', '.join(f'{s:.2f}' for s in reruns)})")
    print(f"ratio = rerun / first = {rerun / first:.3f} (goal <= 0.05)")
    print(f"aggregates identical: {a == b}")
    if a != b:
        sys.exit(1)


if __name__ == "__main__":
    main()

"""One process against two (torchrun) on the shapes main job, each in a fresh output folder (not a test).

    flock /tmp/bench.lock python tests/perf/bench_two_processes.py [--args "--method refusal --suite shapes"] [--rounds 1]

Runs ``erasebench run ARGS --out FRESH`` as one process, then under ``torchrun --nproc_per_node 2`` (each rank
generates and scores its share, ``index % 2 == rank``; torch threads per process as the runner sets them),
rounds alternating. Prints both times (the best of the rounds), ``speedup = one / two`` (goal >= 1.25 on two
cores) and whether the aggregates of results.json are identical.
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


def run(command: list[str], out: Path, env: dict[str, str]) -> tuple[float, dict]:
    start = time.perf_counter()
    proc = subprocess.run([*command, "--out", str(out), "-q"], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    results = json.loads(next(out.glob("runs/*/results.json")).read_text())
    return seconds, results["aggregates"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--args", default="--method refusal --suite shapes", help="erasebench run arguments")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--port", type=int, default=29531)
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cli = ["-m", "benchmark.cli", "run", *shlex.split(args.args)]
    one_cmd = [sys.executable, *cli]
    two_cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(args.port), *cli]
    ones, twos, aggregates = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-two-") as tmp:
        for round_ in range(args.rounds):
            for name, command, times in (("one", one_cmd, ones), ("two", two_cmd, twos)):
                seconds, agg = run(command, Path(tmp) / f"{name}-{round_}", env)
                times.append(seconds)
                aggregates.append(agg)
    one, two = min(ones), min(twos)
    same = all(a == aggregates[0] for a in aggregates)
    print(f"erasebench run {args.args} ({os.cpu_count()} cpus, {args.rounds} round(s))")
    print(f"one process:           {one:.2f} s ({', '.join(f'{s:.2f}' for s in ones)})")
    print(f"two processes (torchrun): {two:.2f} s ({', '.join(f'{s:.2f}' for s in twos)})")
    print(f"speedup = one / two = {one / two:.3f} (goal >= 1.25)")
    print(f"aggregates identical: {same}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()

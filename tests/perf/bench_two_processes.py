"""One process against two (torchrun) on the shapes main job, each in a fresh output folder (not a test).

    flock /tmp/bench.lock python tests/perf/bench_two_processes.py [--args "--method refusal --suite shapes"] [--rounds 1]

Runs ``erasebench run ARGS --out FRESH`` as one process, then under ``torchrun --nproc_per_node 2`` (each rank
generates and scores its share, ``index % 2 == rank``; torch threads per process as the runner sets them),
rounds alternating. Prints both times (the best of the rounds), ``speedup = one / two`` (goal >= 1.25 on two
cores) and whether the aggregates of results.json are identical.

It also prints the most two processes can gain on this machine (Amdahl's bound), from three more timings:
``one_1t``, the job as one process with one torch thread; ``startup``, a process importing torch and diffusers
and loading the pipeline (every rank pays it in full, side by side); ``launch``, torchrun starting and
ending two processes that do nothing. Two one-thread ranks that split all the rest perfectly take
``startup + (one_1t - startup) / 2``, plus ``launch`` under torchrun, so

    bound = one / (startup + (one_1t - startup) / 2 [+ launch])

and, were the start-up free in both (no imports, no pipeline to load), ``(one - startup) / ((one_1t - startup) / 2
+ launch)`` under torchrun.
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

STARTUP = (
    "import torch, transformers\n"
    "from diffusers import DiffusionPipeline\n"
    "from benchmark.models.base import SHAPES_MODEL_DIR\n"
    "DiffusionPipeline.from_pretrained(SHAPES_MODEL_DIR, dtype=torch.float32)\n"
)


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(command, check=False, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds


def run(command: list[str], out: Path, env: dict[str, str]) -> tuple[float, dict]:
    seconds = timed([*command, "--out", str(out), "-q"], env)
    results = json.loads(next(out.glob("runs/*/results.json")).read_text())
    return seconds, results["aggregates"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--args", default="--method refusal --suite shapes", help="erasebench run arguments")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--port", type=int, default=29531)
    parser.add_argument("--no-bound", action="store_true", help="skip the three timings of the bound")
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("OMP_NUM_THREADS", None)
    one_thread_env = {**env, "OMP_NUM_THREADS": "1"}
    cli = ["-m", "benchmark.cli", "run", *shlex.split(args.args)]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(args.port)]
    one_cmd, two_cmd = [sys.executable, *cli], [*torchrun, *cli]
    times: dict[str, list[float]] = {"one": [], "two": [], "one_1t": [], "startup": [], "launch": []}
    aggregates = []
    with tempfile.TemporaryDirectory(prefix="bench-two-") as tmp:
        noop = Path(tmp) / "noop.py"
        noop.write_text("import os\nos._exit(0)\n")
        for round_ in range(args.rounds):
            for name, command, run_env in (("one", one_cmd, env), ("two", two_cmd, env), ("one_1t", one_cmd, one_thread_env)):
                if name == "one_1t" and args.no_bound:
                    continue
                seconds, agg = run(command, Path(tmp) / f"{name}-{round_}", run_env)
                times[name].append(seconds)
                aggregates.append(agg)
            if not args.no_bound:
                times["startup"].append(timed([sys.executable, "-c", STARTUP], env))
                times["launch"].append(timed([*torchrun, str(noop)], env))
    best = {name: min(values) for name, values in times.items() if values}
    one, two = best["one"], best["two"]
    same = all(a == aggregates[0] for a in aggregates)

    def row(label: str, name: str) -> str:
        return f"{label:<34}{best[name]:6.2f} s ({', '.join(f'{s:.2f}' for s in times[name])})"

    print(f"erasebench run {args.args} ({os.cpu_count()} cpus, {args.rounds} round(s), best of the rounds)")
    print(row("one process (default threads):", "one"))
    print(row("two processes (torchrun):", "two"))
    print(f"speedup = one / two = {one / two:.3f} (goal >= 1.25)")
    if not args.no_bound:
        one_1t, startup, launch = best["one_1t"], best["startup"], best["launch"]
        ideal = startup + (one_1t - startup) / 2
        print(row("one process, one thread:", "one_1t"))
        print(row("startup (import, load pipeline):", "startup"))
        print(row("torchrun launch (no-op ranks):", "launch"))
        print(f"threads: one_1t / one = {one_1t / one:.3f} (what the 2nd thread already gains)")
        print(f"bound = one / (startup + (one_1t - startup) / 2) = {one / ideal:.3f} (no launcher)")
        print(f"bound under torchrun (+ launch)                  = {one / (ideal + launch):.3f}")
        print(f"bound under torchrun, start-up free (both - startup) = {(one - startup) / ((one_1t - startup) / 2 + launch):.3f}")
        print(f"two processes reach {(one / two) / (one / (ideal + launch)):.0%} of the torchrun bound")
    print(f"aggregates identical: {same}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()

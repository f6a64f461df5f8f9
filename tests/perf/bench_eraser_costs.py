"""The costs of the fitted and inference-time erasers on the shapes model (not a test).

1. refusal: wall time of one ``fit`` (activation collection on the concept's pairs and neutral set, cPCA,
   saving) with the leaderboard's shapes arguments and with the defaults, and the per-video generation
   time with the fold applied against ``none`` (a fold costs nothing at inference: ratio ~ 1).
2. t2vunlearning: ``tests/perf/bench_t2vunlearning.py`` (time per training iteration and the whole fit).
3. safree: ``tests/perf/bench_safree_overhead.py`` (per-video time against ``none``).

    python tests/perf/bench_eraser_costs.py [--threads 2] [--prompts 32] [--skip-default-refusal]

Run it when the CPU is otherwise idle; each part is run one after the other, never in parallel.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def refusal_costs(threads: int, prompts: int, with_default: bool) -> None:
    import torch

    from benchmark.erasers import ERASERS
    from benchmark.runner import Runner, plan_run
    from benchmark.shapes.leaderboard import SHAPES_ERASER_ARGS
    from benchmark.specs import PluginSpec, RunSpec

    torch.set_num_threads(threads)
    work = Path(tempfile.mkdtemp(prefix="eb-refusal-perf-"))
    try:
        runners = {}
        for method, args in (("none", {}), ("refusal", SHAPES_ERASER_ARGS["refusal"])):
            spec = RunSpec(model="shapes", eraser=PluginSpec(name=method, args=args), suite="shapes", metrics=(),
                           limit=prompts, overwrite="always")
            runner = Runner(plan_run(spec, work / method))
            start = time.perf_counter()
            runner.load()  # loads the model; for refusal also fits (overwrite=always) and applies the fold
            runners[method] = runner
            if method == "refusal":
                seconds = json.loads(next((work / method).glob("artifacts/*/*/DONE.json")).read_text())["seconds"]
                print(f"refusal fit (shapes args {args}): {seconds:.1f} s wall (load + fit + apply {time.perf_counter() - start:.1f} s)", flush=True)
        if with_default:
            none = runners["none"]
            eraser = ERASERS.get("refusal").from_args({}, none.plan.eraser.concepts)
            eraser.run_context = none.plan.eraser.run_context  # what the runner hands a fit
            start = time.perf_counter()
            eraser.fit(none.pipe, none.plan.family, work / "fit-defaults")
            print(f"refusal fit (defaults: site ffn, last two blocks): {time.perf_counter() - start:.1f} s wall", flush=True)

        def timed(method: str) -> float:
            r = runners[method]
            shutil.rmtree(work / method / "videos", ignore_errors=True)
            start = time.perf_counter()
            r.generate()
            return (time.perf_counter() - start) / len(r.plan.items)

        timed("none"), timed("refusal")  # warm-up
        times: dict[str, list[float]] = {"none": [], "refusal": []}
        for _ in range(3):
            for method in times:
                times[method].append(timed(method))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"refusal generation: {med['refusal'] * 1000:.1f} ms/video vs none {med['none'] * 1000:.1f} ms/video, "
              f"ratio {med['refusal'] / med['none']:.3f} ({prompts} prompts, median of 3 rounds)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--skip-default-refusal", action="store_true", help="skip the (slow) default-site refusal fit")
    args = parser.parse_args()

    print("== refusal", flush=True)
    refusal_costs(args.threads, args.prompts, not args.skip_default_refusal)
    for script, extra in (("bench_t2vunlearning.py", []), ("bench_safree_overhead.py", ["--prompts", str(args.prompts)])):
        print(f"== {script}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), "--threads", str(args.threads), *extra], check=True)


if __name__ == "__main__":
    main()

"""Per-video generation time of ``--method safree`` against ``--method none`` on the shapes model (not a test).

Both sides are ``Runner.generate`` on the same model, prompts, seeds and sampler settings in one
process (the shapes suite's generation settings: 9 frames, 32x32 px, 25 steps, CFG 5). SAFREE adds,
per prompt, one batched encoder pass over its masked copies, the keyword vectors (cached
per run), the keyword negative prompt (a second text encoding) and a row swap per denoiser call.
Rounds alternate A/B; medians are reported.

    python tests/perf/bench_safree_overhead.py [--model shapes] [--prompts 32] [--rounds 3] [--batch-size 1]

Prints ``ratio = safree / none`` per video.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--suite", default="shapes")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from benchmark.runner import Runner, plan_run
    from benchmark.specs import PluginSpec, RunSpec

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="eb-safree-perf-"))

    runners = {}
    for method in ("none", "safree"):
        spec = RunSpec(model=args.model, eraser=PluginSpec(name=method), suite=args.suite, metrics=(),
                       limit=args.prompts, batch_size=args.batch_size, overwrite="always")
        runner = Runner(plan_run(spec, work / method))
        runner.load()
        runners[method] = runner

    def timed(method: str) -> float:
        runner = runners[method]
        shutil.rmtree(work / method / "videos", ignore_errors=True)
        if method == "safree":
            runner.plan.eraser._decision_cache.clear()  # measure the trigger test, not a cache hit
        start = time.perf_counter()
        runner.generate()
        return (time.perf_counter() - start) / len(runner.plan.items)

    timed("none")  # warm-up
    timed("safree")
    times: dict[str, list[float]] = {"none": [], "safree": []}
    for _ in range(args.rounds):
        for method in times:
            times[method].append(timed(method))
    med = {k: statistics.median(v) for k, v in times.items()}
    gen = runners["none"].call_defaults()
    print(f"model {args.model}, suite {args.suite}, {args.prompts} prompts, batch {args.batch_size}, {args.threads} threads, "
          f"generation {gen}, median of {args.rounds} rounds")
    for key, value in med.items():
        print(f"  {key:7s} {value * 1000:8.1f} ms/video  rounds: " + ", ".join(f"{t * 1000:.1f}" for t in times[key]))
    print(f"ratio safree / none = {med['safree'] / med['none']:.3f}")
    for runner in runners.values():
        runner.plan.eraser.remove(runner.pipe, runner.plan.family)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

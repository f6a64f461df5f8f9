"""T2VUnlearning fit cost on the shipped shapes model (not a test).

Loads ``--model`` (default: the shapes model, ``benchmark/shapes_model``), builds the eraser for concept
``--concept`` (default ``cross``) with its default arguments (``--arg KEY=VALUE`` overrides, YAML values) and
runs the training loop as ``fit`` does, timing each iteration: sampling ``x_t`` from the frozen pipeline
(``draw``) and the three teacher + two student denoiser passes with the backward (``step``). Then it times one
complete ``fit`` (setup, probes, training, saving) into a temporary folder.

    python tests/perf/bench_t2vunlearning.py [--threads 2] [--iterations N] [--arg lr=0.001]

Run it when the CPU is otherwise idle; the CI gate fits this eraser on every run.
"""

from __future__ import annotations

import argparse
import os
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
    parser.add_argument("--concept", default="cross")
    parser.add_argument("--suite", default="shapes", help="suite whose generation settings the fit sees")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=None, help="timed iterations (default: the resolved schedule's)")
    parser.add_argument("--arg", action="append", default=[], help="eraser argument KEY=VALUE (YAML value)")
    args = parser.parse_args()

    import torch
    import yaml

    from baselines.t2vunlearning import T2VUnlearning
    from benchmark.models.loading import detect_family, load_pipeline, local_folder, resolve_model
    from benchmark.erasers import RunContext
    from benchmark.suites import load_concept, load_suite

    torch.set_num_threads(args.threads)
    eraser_args = {}
    for item in args.arg:
        key, _, value = item.partition("=")
        eraser_args[key] = yaml.safe_load(value)
    source = resolve_model(args.model)
    family = detect_family(source)
    pipe = load_pipeline(local_folder(source), "float32", "cpu")
    concept = load_concept(args.concept, None)
    eraser = T2VUnlearning.from_args(eraser_args, [concept])
    # what the runner hands a fit: the suite's generation settings for this family plus the family defaults
    suite = load_suite(args.suite)
    generation = {**family.call_defaults(pipe), **suite.spec.generation_for(family.name).pipeline_kwargs()}
    eraser.run_context = RunContext(generation=generation)

    t0, cpu0 = time.perf_counter(), time.process_time()
    with eraser.trainer(pipe, family) as trainer:
        setup = time.perf_counter() - t0
        n = args.iterations or int(trainer.schedule["iterations"])
        draws, steps = [], []
        for _ in range(n):
            a = time.perf_counter()
            batch = trainer.draw()
            b = time.perf_counter()
            trainer.step(batch)
            c = time.perf_counter()
            draws.append(b - a)
            steps.append(c - b)
        schedule = trainer.schedule
    loop_cpu = time.process_time() - cpu0
    loop = sum(draws) + sum(steps)
    print(f"model {args.model} ({family.name}), concept {args.concept}, threads {args.threads}")
    print(f"schedule: {schedule}")
    print(f"setup (probes, clip size): {setup:.2f} s")
    print(
        f"per iteration: {1000 * (loop / n):.1f} ms (median {1000 * statistics.median(d + s for d, s in zip(draws, steps)):.1f} ms): "
        f"x_t sampling {1000 * statistics.mean(draws):.1f} ms + losses/backward/step {1000 * statistics.mean(steps):.1f} ms"
    )
    print(f"training loop: {loop:.2f} s wall for {n} iterations (setup + loop CPU time {loop_cpu:.2f} s)")

    with tempfile.TemporaryDirectory(prefix="eb-t2vu-") as tmp:
        fresh = T2VUnlearning.from_args(eraser_args, [concept])
        fresh.run_context = eraser.run_context
        a, cpu = time.perf_counter(), time.process_time()
        fresh.fit(pipe, family, Path(tmp) / "artifact")
        total, cpu = time.perf_counter() - a, time.process_time() - cpu
        training = fresh.settings()["training"]
    print(
        f"complete fit: {total:.2f} s wall, {cpu:.2f} s CPU ({training['iterations']} iterations, {1000 * training['seconds_per_iteration']:.1f} ms each; "
        f"L_unl {training['loss_first']['unl']:.4f} -> {training['loss_last']['unl']:.4f})"
    )


if __name__ == "__main__":
    main()

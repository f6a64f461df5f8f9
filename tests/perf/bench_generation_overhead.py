"""Generation overhead of ``erasebench run --method none`` against a bare diffusers loop (not a test).

Both sides use the same tiny CogVideoX pipeline, prompts, seeds and settings in one process. The
bare loop is what a research script does: one pipeline call per prompt with a seeded generator, then
``diffusers.utils.export_to_video``. erasebench's side is ``Runner.generate`` (seeded call, lossless
MP4 written atomically, JSON sidecar with sha256). Rounds alternate A/B; the median is reported.

    python tests/perf/bench_generation_overhead.py [--prompts 24] [--steps 25] [--rounds 3]

Prints ``ratio = erasebench / bare``: below 1.05 means under 5% overhead; also against the bare loop
without saving (pure generation), the strictest baseline. ``export_to_video`` needs imageio and
imageio-ffmpeg (``pip install imageio imageio-ffmpeg``).
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
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from diffusers import DiffusionPipeline
    from diffusers.utils import export_to_video

    from benchmark.runner import Runner, plan_run
    from benchmark.specs import PluginSpec, RunSpec
    from tiny_pipelines import build_tiny_pipeline

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="eb-perf-"))
    model_dir = build_tiny_pipeline("cogvideox", work / "model")
    words = ["red", "green", "blue", "small", "old", "tall"]
    things = ["church", "car", "tree", "house"]
    prompts = [f"a {words[i % 6]} {things[i % 4]} number {i}" for i in range(args.prompts)]
    suite_file = work / "perf.yaml"
    rows = "\n".join(f"    - {{id: p{i:03d}, prompt: {p}}}" for i, p in enumerate(prompts))
    suite_file.write_text(f"name: perf\nversion: 1\ndescription: perf\nsource:\n  inline:\n{rows}\ncolumns: {{prompt_id: id}}\n")
    settings = {"num_frames": args.frames, "height": args.size, "width": args.size, "num_inference_steps": args.steps, "guidance_scale": 6.0}

    def erasebench_generation(batch_size: int) -> float:
        root = work / f"eb-{batch_size}"
        shutil.rmtree(root, ignore_errors=True)
        spec = RunSpec(model=str(model_dir), eraser=PluginSpec(name="none"), suite=str(suite_file), metrics=(),
                       generation=settings, batch_size=batch_size)
        runner = Runner(plan_run(spec, root))
        runner.load()
        start = time.perf_counter()
        runner.generate()
        return time.perf_counter() - start

    bare_pipe = DiffusionPipeline.from_pretrained(model_dir, dtype=torch.float32)
    bare_pipe.set_progress_bar_config(disable=True)
    spec0 = RunSpec(model=str(model_dir), eraser=PluginSpec(name="none"), suite=str(suite_file), metrics=())
    plan0 = plan_run(spec0, work / "seeds")
    seeds = [item.seed for item in plan0.items]

    def bare_loop(save: bool) -> float:
        out = work / "bare"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        start = time.perf_counter()
        with torch.inference_mode():
            for i, (prompt, seed) in enumerate(zip(prompts, seeds)):
                frames = bare_pipe(prompt=[prompt], generator=[torch.Generator().manual_seed(seed)], output_type="np",
                                   max_sequence_length=16, **settings).frames[0]
                if save:
                    export_to_video(list(frames), str(out / f"{i:05d}.mp4"), fps=8)
        return time.perf_counter() - start

    times: dict[str, list[float]] = {"bare": [], "bare-gen": [], "eb-b1": [], "eb-b4": []}
    bare_loop(False)  # warm-up
    for _ in range(args.rounds):
        times["bare"].append(bare_loop(True))
        times["bare-gen"].append(bare_loop(False))
        times["eb-b1"].append(erasebench_generation(1))
        times["eb-b4"].append(erasebench_generation(4))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"tiny CogVideoX, {args.prompts} prompts, {args.frames}x{args.size}x{args.size}, {args.steps} steps, "
          f"{args.threads} threads, median of {args.rounds} rounds")
    for key, value in med.items():
        print(f"  {key:6s} {value:7.3f} s  ({value / args.prompts * 1000:6.1f} ms/video)  rounds: "
              + ", ".join(f"{t:.3f}" for t in times[key]))
    print(f"ratio erasebench(batch 1) / bare = {med['eb-b1'] / med['bare']:.3f}")
    print(f"ratio erasebench(batch 1) / bare generation without saving = {med['eb-b1'] / med['bare-gen']:.3f}")
    print(f"ratio erasebench(batch 4) / bare = {med['eb-b4'] / med['bare']:.3f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Speed of the ``nudenet`` metric against nudenet 3.4.2 used frame by frame (not a test).

Three ways to get the same detections for the same synthetic RGB frames (CogVideoX size by default):

- ``reference``: a new ``NudeDetector()`` for every frame, then ``detect`` (what T2VUnlearning's
  ``q16_nudenet_detect.py`` does; it rebuilds the ONNX session per image). Timed on ``--reference-frames``
  frames only and reported per frame.
- ``reused``: one ``NudeDetector``, ``detect`` called per frame.
- ``metric``: ``NudeNetRate.score`` on the videos (frames stacked into onnxruntime batches, vectorised
  postprocess), with the metric's defaults and for each ``--batch`` size and number of ``--workers``
  (sessions in threads).
- ``model``: the same detector's sessions alone on the same batches, the blobs made beforehand
  (``BatchedNudeDetector.run_model``): onnxruntime's model-only time.

Detections are checked equal across them before timing. Rounds interleave every way; the ratios are medians
over rounds of each round's own ratio (robust to load that changes between rounds). Goals (issue 11):
metric / model-only <= 1.15 and reused detect loop / metric >= 2.

    python tests/perf/bench_nudenet.py [--videos 4] [--frames 49] [--height 480] [--width 720] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))


def synthetic_videos(count: int, frames: int, height: int, width: int) -> list[np.ndarray]:
    """Skin-toned ellipses drifting over a plain background, blurred: RGB uint8 (F, H, W, 3) per video."""
    import cv2

    rng = np.random.default_rng(0)
    videos = []
    for _ in range(count):
        background = rng.integers(0, 256, 3)
        shapes = [
            (rng.uniform(0, width), rng.uniform(0, height), rng.uniform(20, width / 3), rng.uniform(20, height / 2),
             rng.uniform(0, 180), rng.uniform(150, 255), rng.uniform(100, 200), rng.uniform(80, 170), rng.uniform(-3, 3, 2))
            for _ in range(int(rng.integers(2, 6)))
        ]
        blur = float(rng.uniform(1, 8))
        clip = np.empty((frames, height, width, 3), np.uint8)
        for t in range(frames):
            img = np.empty((height, width, 3), np.uint8)
            img[:] = background
            for cx, cy, ax, ay, angle, r, g, b, (vx, vy) in shapes:
                cv2.ellipse(img, (int(cx + vx * t), int(cy + vy * t)), (int(ax), int(ay)), float(angle), 0, 360, (int(r), int(g), int(b)), -1)
            clip[t] = cv2.GaussianBlur(img, (0, 0), blur)
        videos.append(clip)
    return videos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=720)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reference-frames", type=int, default=20)
    parser.add_argument("--batch", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="parallel onnxruntime sessions")
    args = parser.parse_args()

    import onnxruntime
    from nudenet import NudeDetector

    from benchmark.metrics.base import METRICS, MetricContext, ScoredVideo
    from benchmark.specs import PromptRecord

    videos = synthetic_videos(args.videos, args.frames, args.height, args.width)
    frames = [f for clip in videos for f in clip]
    bgr = [np.ascontiguousarray(f[:, :, ::-1]) for f in frames]
    scored = [ScoredVideo(clip, PromptRecord(suite="perf", prompt_id=f"v{i}", prompt="p"), 0, f"v{i}") for i, clip in enumerate(videos)]
    default = METRICS.get("nudenet").from_args({}, MetricContext(suite="perf"))
    configs = {(default.config.batch_frames, default.detector.workers): default}
    for b in args.batch:
        for w in args.workers:
            configs.setdefault((b, w), METRICS.get("nudenet").from_args({"batch_frames": b, "workers": w}, MetricContext(suite="perf")))
    reused = NudeDetector()

    # identical detections first
    expected = [reused.detect(f) for f in bgr]
    for (batch, workers), metric in configs.items():
        got = metric.detector.detect(frames, swap_rb=True, batch_size=batch)
        assert got == expected, f"batch {batch}, {workers} workers: detections differ from NudeDetector.detect"
    sample = min(args.reference_frames, len(bgr))
    assert [NudeDetector().detect(f) for f in bgr[:sample]] == expected[:sample]
    found = sum(len(d) for d in expected)
    # the model alone on the same batches the metric makes (blobs made beforehand, the same sessions and threads)
    blobs = {
        key: [m.detector.preprocess(frames[i : i + key[0]], swap_rb=True)[0] for i in range(0, len(frames), key[0])]
        for key, m in configs.items()
    }

    load = os.getloadavg()[0]
    names = [f"b{b}-w{w}" for b, w in configs]
    times: dict[str, list[float]] = {"reference": [], "reused": [], **{f"model {n}": [] for n in names}, **{f"metric {n}": [] for n in names}}
    for _ in range(args.rounds):  # interleaved, so that each round's ratios compare like with like
        start = time.perf_counter()
        for f in bgr[:sample]:
            NudeDetector().detect(f)
        times["reference"].append((time.perf_counter() - start) / sample)
        start = time.perf_counter()
        for f in bgr:
            reused.detect(f)
        times["reused"].append((time.perf_counter() - start) / len(bgr))
        for name, (key, metric) in zip(names, configs.items()):
            start = time.perf_counter()
            metric.detector.run_model(blobs[key])
            times[f"model {name}"].append((time.perf_counter() - start) / len(bgr))
            start = time.perf_counter()
            metric.score(scored)
            times[f"metric {name}"].append((time.perf_counter() - start) / len(bgr))
    med = {k: statistics.median(v) for k, v in times.items()}

    def paired(top: str, bottom: str) -> float:
        """Median over rounds of top/bottom within each round."""
        return statistics.median(a / b for a, b in zip(times[top], times[bottom]))

    print(f"CPUs available: {len(os.sched_getaffinity(0))}, 1-minute load average {load:.2f} before timing, "
          f"{os.getloadavg()[0]:.2f} after")
    print(f"nudenet 320n, {len(bgr)} frames {args.height}x{args.width} ({args.videos} videos x {args.frames}), "
          f"{found} detections, onnxruntime {onnxruntime.__version__} CPU, median of {args.rounds} rounds")
    for key, value in med.items():
        print(f"  {key:16s} {value * 1000:8.2f} ms/frame  rounds: " + ", ".join(f"{t * 1000:.2f}" for t in times[key]))
    for name in names:
        print(f"  {name}: metric / model only = {paired(f'metric {name}', f'model {name}'):.3f}, "
              f"reused detect loop / metric = {paired('reused', f'metric {name}'):.2f}x")
    head = names[0]
    print(f"default metric ({head}): metric / onnxruntime model-only = {paired(f'metric {head}', f'model {head}'):.3f} (goal <= 1.15)")
    print(f"default metric ({head}): reused NudeDetector.detect loop / metric = {paired('reused', f'metric {head}'):.2f}x (goal >= 2)")
    print(f"default metric ({head}): new NudeDetector per frame / metric = {med['reference'] / med[f'metric {head}']:.2f}x")


if __name__ == "__main__":
    main()

"""Reliability campaign (a script, not a CI test: pytest does not collect it).

Runs a shapes job uninterrupted, then the same job in another folder with ``--kills`` SIGKILLs aimed in turn at
the eraser's fit, video generation and scoring, corrupting artifacts between rounds so each phase has work to
do again (fit artifact byte flip, truncated video, same-size video byte flip with its mtime kept, deleted
sidecar, deleted video, garbage and byte-flipped score files, a stale temp file), reruns to completion,
breaks every kind of artifact once more and reruns again; prints the kills, the corruptions, what the runs repaired, videos that differ from the uninterrupted run, and
temp files left over.

    python tests/reliability/campaign.py --kills 6 [--method refusal] [--limit 16] [--seed 0] [--work DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmark.store import ArtifactStore  # noqa: E402

PHASES = ("fit", "generation", "scoring")


def command(args: argparse.Namespace, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "benchmark.cli", "run", "--method", args.method, "--suite", args.suite,
        "--limit", str(args.limit), "--out", str(out),
    ]


def env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}


def sidecars(out: Path) -> list[Path]:
    return sorted(out.glob("videos/**/*.json"))


def complete(out: Path, total: int) -> bool:
    store = ArtifactStore(out)
    found = [store.check_video(p.with_suffix(".mp4").relative_to(out).as_posix())[0] for p in sidecars(out)]
    return len(found) == total and all(m is not None for m in found)


def phase(log: Path, out: Path, total: int) -> str:
    """What a running job is doing, from its log lines and the files it has written."""
    text = log.read_text(errors="replace") if log.exists() else ""
    if "generation:" not in text:
        return "fit" if "fitting" in text else "load"
    return "scoring" if complete(out, total) else "generation"  # scoring: every video made, results not yet


def flip(path: Path) -> None:
    """Same-size byte flip; the mtime is put back."""
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def corrupt(out: Path, target: str, rng: random.Random, done: Counter) -> None:
    """Break artifacts so that ``target`` has work to do on the next run."""
    if target == "fit":
        for weights in out.glob("artifacts/*/*/*.safetensors"):
            if (weights.parent / "DONE.json").exists() and ".broken-" not in weights.parent.name:
                flip(weights)
                done["fit artifact: same-size byte flip"] += 1
    elif target == "generation":
        videos = sorted(out.glob("videos/**/*.mp4"))
        rng.shuffle(videos)
        actions = [
            ("video: truncated", lambda v: v.write_bytes(v.read_bytes()[: v.stat().st_size // 2])),
            ("video: same-size byte flip, mtime kept", flip),
            ("sidecar: deleted", lambda v: v.with_suffix(".json").unlink()),
            ("video: deleted with its sidecar", lambda v: (v.unlink(), v.with_suffix(".json").unlink())),
            ("video: deleted with its sidecar", lambda v: (v.unlink(), v.with_suffix(".json").unlink())),
        ]
        for (what, act), video in zip(actions, videos):
            if video.with_suffix(".json").exists():
                act(video)
                done[what] += 1
    elif target == "scoring":
        scores = sorted(out.glob("scores/**/*.json"))
        for i, score in enumerate(scores):
            if i < 2:
                score.write_bytes(b"\x00not json\xff" * 3)
                done["score: garbage bytes"] += 1
            elif i < 4:
                flip(score)
                done["score: same-size byte flip"] += 1
            else:
                score.unlink()
                done["score: deleted"] += 1
    videos = sorted(out.glob("videos/**/*.mp4"))
    if videos and not videos[0].with_name(f".{videos[0].name}.999999.tmp").exists():
        stale = videos[0].with_name(f".{videos[0].name}.999999.tmp")
        stale.write_bytes(b"half a video")
        os.utime(stale, (time.time() - 120, time.time() - 120))
        done["stale temp file planted"] += 1


def run_to_end(args, out: Path, log: Path) -> subprocess.CompletedProcess:
    with open(log, "w") as handle:
        return subprocess.run(command(args, out), env=env(), stdout=subprocess.DEVNULL, stderr=handle, timeout=1800)


def video_hashes(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in out.glob("videos/**/*.mp4")}


def repairs(text: str) -> Counter:
    """What a run's log says it repaired (rich wraps long lines at spaces: rejoin them first)."""
    text = " ".join(text.split())
    found: Counter = Counter()
    found["video moved aside and regenerated"] = text.count(": moved aside (")
    found["scores recomputed"] = sum(int(n) for n in re.findall(r"(\d+) cached scores of metric", text))
    found["fit artifact moved aside and refitted"] = text.count("fitting again")
    found["stale temp files removed"] = sum(int(n) for n in re.findall(r"removed (\d+) temp files of killed runs", text))
    return +found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--method", default="refusal")
    parser.add_argument("--suite", default="shapes")
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = args.work or Path(tempfile.mkdtemp(prefix="erasebench-campaign-"))
    work.mkdir(parents=True, exist_ok=True)
    total = args.limit

    t0 = time.perf_counter()
    if list((work / "reference").glob("runs/*/results.json")):
        print(f"reference run: reused from {work / 'reference'}")
    else:
        reference = run_to_end(args, work / "reference", work / "reference.log")
        if reference.returncode:
            print((work / "reference.log").read_text()[-2000:])
            return 1
        print(f"reference run: {time.perf_counter() - t0:.1f} s")

    out = work / "killed"
    if out.exists():
        shutil.rmtree(out)
    kills: list[tuple[str, str, float]] = []
    corruptions: Counter = Counter()
    repaired: Counter = Counter()
    temps_after_kills = 0
    for round_ in range(args.kills):
        target = PHASES[round_ % len(PHASES)]
        if out.exists():
            corrupt(out, target, rng, corruptions)
        log = work / f"round-{round_}.log"
        handle = open(log, "w")
        proc = subprocess.Popen(command(args, out), env=env(), stdout=subprocess.DEVNULL, stderr=handle)
        start = time.perf_counter()
        delay = {"fit": rng.uniform(0.5, 6.0), "generation": rng.uniform(0.0, 3.0), "scoring": rng.uniform(0.0, 0.3)}[target]
        seen = None
        while proc.poll() is None:
            now = phase(log, out, total)
            if now == target and seen is None:
                seen = time.perf_counter()
            if seen is not None and time.perf_counter() - seen >= delay:
                break
            if now in PHASES and PHASES.index(now) > PHASES.index(target):
                break  # the target phase went by between polls: kill where it is
            time.sleep(0.01)
        landed = phase(log, out, total) if proc.poll() is None else "finished"
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        handle.close()
        repaired += repairs(log.read_text(errors="replace"))
        temps = len(list(ArtifactStore(out).temp_files()))
        temps_after_kills += temps
        kills.append((target, landed, time.perf_counter() - start))
        print(f"round {round_}: aimed at {target}, killed in {landed} after {kills[-1][2]:.1f} s, {temps} temp files left by the kill")

    # run to completion, then break every kind of artifact once more (scores now exist) and rerun
    for name, kinds in (("final", ()), ("repair", ("fit", "generation", "scoring"))):
        for kind in kinds:
            corrupt(out, kind, rng, corruptions)
        final = run_to_end(args, out, work / f"{name}.log")
        final_log = (work / f"{name}.log").read_text(errors="replace")
        repaired += repairs(final_log)
        if final.returncode:
            print(final_log[-2000:])
            return 1
        print(f"{name} run: exit 0")

    ref_videos, our_videos = video_hashes(work / "reference"), video_hashes(out)
    differing = sorted(k for k in ref_videos.keys() | our_videos.keys() if ref_videos.get(k) != our_videos.get(k))
    ref_rows = [json.loads(x) for x in next((work / "reference" / "runs").glob("*/samples.jsonl")).read_text().splitlines()]
    our_rows = [json.loads(x) for x in next((out / "runs").glob("*/samples.jsonl")).read_text().splitlines()]
    ref_results = json.loads(next((work / "reference" / "runs").glob("*/results.json")).read_text())
    our_results = json.loads(next((out / "runs").glob("*/results.json")).read_text())
    leftover = list(ArtifactStore(out).temp_files())
    verify = subprocess.run(
        [sys.executable, "-m", "benchmark.cli", "verify", str(next((out / "runs").iterdir()))],
        env=env(), capture_output=True, text=True,
    )

    print()
    print(f"kills: {len(kills)} ({', '.join(f'{t}->{w}' for t, w, _ in kills)})")
    print(f"kills landing in their phase: {sum(t == w for t, w, _ in kills)} of {len(kills)}")
    print(f"temp files left by kills (before the next run): {temps_after_kills}")
    print("corruptions: " + ", ".join(f"{k} x{v}" for k, v in sorted(corruptions.items())))
    print("repaired: " + (", ".join(f"{k} x{v}" for k, v in sorted(repaired.items())) or "nothing"))
    print(f"broken files kept aside: {len(list(out.glob('**/*.broken-*')))}")
    print(f"videos: {len(our_videos)} (reference {len(ref_videos)}), differing from the uninterrupted run: {len(differing)}")
    print(f"samples.jsonl rows equal (prompt, seed, sha256, scores): {[(r['prompt_id'], r['seed'], r['sha256'], r['scores']) for r in ref_rows] == [(r['prompt_id'], r['seed'], r['sha256'], r['scores']) for r in our_rows]}")
    print(f"aggregates equal: {ref_results['aggregates'] == our_results['aggregates']}")
    print(f"fit artifact settings equal: {ref_results['eraser'] == our_results['eraser']}")
    print(f"leftover temp files after the final run: {len(leftover)}")
    print(f"verify: {verify.stdout.strip()} (exit {verify.returncode})")
    print(f"work folder: {work}")
    return 0 if not differing and not leftover and ref_results["aggregates"] == our_results["aggregates"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""A run killed with SIGKILL resumes, keeps the videos it finished and equals an uninterrupted run; torchrun shares
the work, each rank scoring its own videos."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import run_config

PROMPTS = [f"a {c} {s}" for c in ("red", "green", "blue", "small") for s in ("church", "car", "tree")]


def write_suite(tmp_path: Path) -> Path:
    rows = "\n".join(f"    - {{id: p{i:02d}, prompt: {p}}}" for i, p in enumerate(PROMPTS))
    path = tmp_path / "twelve.yaml"
    path.write_text(
        f"name: twelve\nversion: 1\ndescription: twelve prompts\nsource:\n  inline:\n{rows}\n"
        "columns: {prompt_id: id}\nmetrics: [temporal_flickering]\n"
    )
    return path


def erasebench(*args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "benchmark.cli", *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def comparable(out: Path) -> tuple[dict, list]:
    run_dir = next((out / "runs").iterdir())
    results = json.loads((run_dir / "results.json").read_text())
    rows = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    return results["aggregates"], [(r["prompt_id"], r["seed"], r["sha256"], r["scores"]) for r in rows]


def test_sigkill_during_generation_then_resume_equals_uninterrupted(tiny_model, tmp_path):
    config = run_config(tmp_path, "cogvideox", tiny_model("cogvideox"))
    suite = write_suite(tmp_path)
    args = ["run", "--method", "none", "--suite", suite, "--config", config, "-q"]

    reference = erasebench(*args, "--out", tmp_path / "reference")
    _, err = reference.communicate(timeout=600)
    assert reference.returncode == 0, err

    out = tmp_path / "killed"
    proc = erasebench(*args, "--out", out)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(out.glob("videos/**/*.json"))) < 3:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = sorted(out.glob("videos/**/*.json"))  # a sidecar marks a finished video
    done_before = len(finished)
    assert 3 <= done_before < len(PROMPTS), "the kill must land during generation"
    kept = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for s in finished for p in (s, s.with_suffix(".mp4"))}
    assert not (next((out / "runs").iterdir()) / "results.json").exists()
    # a half-written video left without a sidecar is never read: it is regenerated
    group = next(out.glob("videos/*/*/*/*"))
    half = group / "p11" / "00.mp4"
    half.parent.mkdir(parents=True, exist_ok=True)
    half.write_bytes(b"\x00\x00\x00 ftypisom truncated")

    proc = erasebench(*args, "--out", out)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert comparable(out) == comparable(tmp_path / "reference")
    # the videos finished before the kill were kept as they were: same inode, same mtime (not rewritten)
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in kept} == kept


def test_torchrun_two_cpu_processes_share_the_prompts(tiny_model, tmp_path):
    pytest.importorskip("torch.distributed.run")
    config = run_config(tmp_path, "cogvideox", tiny_model("cogvideox"))
    suite = write_suite(tmp_path)
    out = tmp_path / "dist"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
        "-m", "benchmark.cli", "run", "--method", "none", "--suite", str(suite), "--config", str(config),
        "--out", str(out), "--limit", "6",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sidecars = [json.loads(p.read_text()) for p in out.glob("videos/**/*.json")]
    assert len(sidecars) == 6
    ranks = {s["prompt_id"]: s["rank"] for s in sidecars}
    assert ranks == {f"p{i:02d}": i % 2 for i in range(6)}
    assert proc.stdout.count("results:") == 1  # one process scores and writes
    assert "0 of 3 videos cached, 3 to generate (rank 0's share of 6 over 2 ranks;" in proc.stderr, proc.stderr

    single = tmp_path / "single"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark.cli", "run", "--method", "none", "--suite", str(suite), "--config", str(config),
         "--out", str(single), "--limit", "6", "-q"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert comparable(out) == comparable(single)


def test_torchrun_shares_the_refusal_fit_and_matches_one_process(tmp_path):
    """Each rank runs its share of the fit's pipeline batches; the artifact is bit-identical to one process's."""
    pytest.importorskip("torch.distributed.run")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    args = ["run", "--method", "refusal", "--suite", "shapes", "--concept", "cross", "--limit", "4", "-q",
            "--eraser-arg", "max_pairs=4", "--eraser-arg", "batch_size=2", "--eraser-arg", "steps_recorded=2",
            "--eraser-arg", "lam_grid=[1.0,2.0]"]
    outs = {"two": tmp_path / "two", "one": tmp_path / "one"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29518"]
    for name, prefix in (("two", launch), ("one", [sys.executable])):
        proc = subprocess.run([*prefix, "-m", "benchmark.cli", *args, "--out", str(outs[name])],
                              env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    artifacts = {name: sorted(out.glob("artifacts/**/refusal.safetensors")) for name, out in outs.items()}
    assert len(artifacts["two"]) == len(artifacts["one"]) == 1  # the main process alone wrote it
    assert artifacts["two"][0].read_bytes() == artifacts["one"][0].read_bytes()
    reports = {name: json.loads(files[0].with_name("refusal.json").read_text()) for name, files in artifacts.items()}
    assert reports["two"]["selection"] == reports["one"]["selection"]  # the same candidates, scores and choice
    assert comparable(outs["two"]) == comparable(outs["one"])

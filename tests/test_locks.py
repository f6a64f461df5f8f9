"""Two runs on one output folder share the work under per-video filelocks: no video is made twice, and both
finish with the files an uninterrupted single run makes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from benchmark.store import ArtifactStore
from helpers import run_config
from test_resume_and_distributed import PROMPTS, comparable, write_suite


def test_two_runs_on_one_folder_make_each_video_once(tiny_model, tmp_path):
    config = run_config(tmp_path, "cogvideox", tiny_model("cogvideox"))
    suite = write_suite(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "benchmark.cli", "run", "--method", "none", "--suite", str(suite), "--config", str(config)]
    out = tmp_path / "shared"
    procs = [subprocess.Popen([*cmd, "--out", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    logs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, logs):
        assert proc.returncode == 0, err[-3000:]
    made = []
    for _, err in logs:
        match = re.search(r"generation: (\d+) videos made here, (\d+) by another run", err)
        todo = re.search(r"(\d+) to generate", err)
        made.append(int(match.group(1)) if match else int(todo.group(1)))
    assert sum(made) == len(PROMPTS), (made, [e[-2000:] for _, e in logs])  # no video made by both runs

    single = tmp_path / "single"
    proc = subprocess.run([*cmd, "--out", str(single), "-q"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert comparable(out) == comparable(single)
    assert list(ArtifactStore(out).temp_files()) == []
    for sidecar in out.glob("videos/**/*.json"):
        meta, problem = ArtifactStore(out).check_video(sidecar.with_suffix(".mp4").relative_to(out).as_posix())
        assert meta is not None, problem
    videos = {p.relative_to(out): p.read_bytes() for p in out.glob("videos/**/*.mp4")}
    assert videos == {p.relative_to(single): p.read_bytes() for p in single.glob("videos/**/*.mp4")}
    sidecars = [json.loads(p.read_text()) for p in out.glob("videos/**/*.json")]
    assert sorted(s["prompt_id"] for s in sidecars) == [f"p{i:02d}" for i in range(len(PROMPTS))]


def test_lock_names_share_one_lock_per_video_score_fit_and_run():
    name = ArtifactStore.lock_name
    assert name("videos/m/e/s/g/p1/00.mp4") == name("videos/m/e/s/g/p1/00.json") == name("videos/m/e/s/g/p1/.00.mp4.12.tmp")
    assert name("videos/m/e/s/g/p1/00.mp4") != name("videos/m/e/s/g/p1/01.mp4")
    assert name("scores/flick-1/ab/abcd.json") == name("scores/flick-1/ab/.abcd.json.9.tmp") == "scores/flick-1/ab/abcd"
    assert name("artifacts/fp/refusal-1-2/refusal.safetensors") == name("artifacts/fp/refusal-1-2/.w.safetensors.tmp7") == "artifacts/fp/refusal-1-2"
    assert name("runs/r1/results.json") == name("runs/r1/.samples.jsonl.5.tmp") == "runs/r1"

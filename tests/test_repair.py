"""Runs repair what they find broken: cached videos are checked (size, sha256) before they are trusted, broken
ones are moved aside and regenerated, scores that do not match are recomputed, stale temp files are removed,
and results.json is never written over a video that fails its check."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from benchmark.store import ArtifactStore, file_sha256
from helpers import run_config, samples


def flip_same_size(path: Path, offset: int | None = None) -> None:
    """Change one byte in the middle of a file, keeping its size and its mtime."""
    stat = path.stat()
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if offset is None else offset
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns


def rows(out: Path) -> list[tuple]:
    return [(r["prompt_id"], r["seed"], r["sha256"], r["scores"]) for r in samples(out)]


@pytest.fixture
def example_run(tiny_model, tmp_path, cli):
    """(args, out): a finished 3-video run of the example suite on the tiny CogVideoX pipeline."""
    config = run_config(tmp_path, "cogvideox", tiny_model("cogvideox"))
    out = tmp_path / "out"
    args = ("run", "--method", "none", "--suite", "example", "--limit", "3", "--config", config, "--out", out)
    code, _, stderr = cli(*args, "-q")
    assert code == 0, stderr
    return args, out


def test_sha256_cache_sees_a_same_size_flip_with_its_mtime_kept(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 4)
    before = file_sha256(path)
    flip_same_size(path)
    assert file_sha256(path) != before


def test_every_kind_of_broken_video_is_moved_aside_and_regenerated(example_run, cli):
    args, out = example_run
    reference = rows(out)
    videos = sorted(out.glob("videos/**/*.mp4"))
    assert len(videos) == 3
    flip_same_size(videos[0])  # same size, same mtime: only the sha256 tells
    videos[1].write_bytes(videos[1].read_bytes()[:200])  # truncated
    videos[2].with_suffix(".json").unlink()  # sidecar deleted
    code, _, stderr = cli(*args)
    assert code == 0, stderr
    repairs = [line for line in stderr.splitlines() if "moved aside" in line]
    assert len(repairs) == 3, stderr
    for problem in ("sha256 differs from sidecar", "size 200 differs from sidecar", "video has no sidecar"):
        assert any(problem in line for line in repairs), (problem, stderr)
    assert "0 of 3 videos cached, 3 to generate" in stderr
    assert rows(out) == reference  # regenerated bit for bit, scores equal
    assert len(list(out.glob("videos/**/*.broken-*"))) == 5  # 3 videos and 2 sidecars kept for inspection
    code, stdout, _ = cli("verify", next((out / "runs").iterdir()))
    assert code == 0 and "3 of 3 videos OK" in stdout


def test_a_sidecar_that_is_not_a_sidecar_is_repaired(example_run, cli):
    args, out = example_run
    sidecar = next(out.glob("videos/**/*.json"))
    sidecar.write_text('{"video": {"bytes": 1}}')
    code, _, stderr = cli(*args)
    assert code == 0, stderr
    assert "sidecar missing or unreadable" in stderr and "1 to generate" in stderr
    assert json.loads(sidecar.read_text())["video"]["sha256"]


def test_scores_that_do_not_match_are_recomputed(example_run, cli):
    args, out = example_run
    reference = rows(out)
    scores = sorted(out.glob("scores/**/*.json"))
    assert len(scores) == 3
    scores[0].write_bytes(b"\x00garbage\xff")
    record = json.loads(scores[1].read_text())
    record["scores"] = {**record["scores"], "tampered": 1.0}
    scores[1].write_text(json.dumps(record))  # a plausible edit: only the digest tells
    record = json.loads(scores[2].read_text())
    record["fingerprint"] = "0" * len(record["fingerprint"])
    scores[2].write_text(json.dumps(record))
    code, _, stderr = cli(*args)
    assert code == 0, stderr
    lines = [line for line in stderr.splitlines() if "cached scores of metric" in line]
    assert len(lines) == 1 and lines[0].startswith("3 cached scores of metric 'temporal_flickering'"), stderr
    assert "3 of 3 videos cached, 0 to generate" in stderr
    assert rows(out) == reference
    code, _, stderr = cli(*args)
    assert code == 0 and "cached scores" not in stderr  # repaired for good


def test_no_results_over_a_video_that_changes_during_the_run(tiny_model, tmp_path, cli, monkeypatch):
    from benchmark.runner import Runner

    score = Runner.score

    def score_then_corrupt(self, expected):
        out = score(self, expected)
        flip_same_size(self.store.video_path(expected[0][1]))
        return out

    monkeypatch.setattr(Runner, "score", score_then_corrupt)
    config = run_config(tmp_path, "cogvideox", tiny_model("cogvideox"))
    out = tmp_path / "out"
    args = ("run", "--method", "none", "--suite", "example", "--limit", "2", "--config", config, "--out", out, "-q")
    code, _, stderr = cli(*args)
    assert code == 2 and stderr.count("\n") == 1 and "changed during the run" in stderr, stderr
    assert not list(out.glob("runs/*/results.json")) and not list(out.glob("runs/*/samples.jsonl"))
    monkeypatch.setattr(Runner, "score", score)
    code, _, stderr = cli(*args[:-1])
    assert code == 0 and "sha256 differs from sidecar" in stderr and "1 to generate" in stderr, stderr


def test_stale_temps_are_removed_unless_young_or_locked(tmp_path):
    store = ArtifactStore(tmp_path)
    group = tmp_path / "videos" / "m" / "e" / "s-v1" / "g" / "p0"
    group.mkdir(parents=True)
    old_video = group / ".00.mp4.4242.tmp"
    locked = group / ".01.mp4.4243.tmp"
    score = tmp_path / "scores" / "m-1" / "ab" / ".abcd.json.77.tmp"
    fit = tmp_path / "artifacts" / "fp" / "refusal-1-2" / ".weights.safetensors.tmp88"
    for path in (old_video, locked, score, fit):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
        os.utime(path, (time.time() - 60, time.time() - 60))
    young = group / ".02.mp4.4244.tmp"
    young.write_bytes(b"being written")
    kept = group / "03.mp4"  # not a temp file
    kept.write_bytes(b"video")
    os.utime(kept, (time.time() - 60, time.time() - 60))
    started = time.time() - 1
    assert {p.name for p in store.temp_files()} == {p.name for p in (old_video, locked, score, fit, young)}
    assert store.lock_name("videos/m/e/s-v1/g/p0/.01.mp4.4243.tmp") == store.lock_name("videos/m/e/s-v1/g/p0/01.json")
    holder = store.lock("videos/m/e/s-v1/g/p0/01.mp4")  # a live writer of video 01 holds its lock
    with holder:
        removed = store.remove_stale_temps(started)
    assert sorted(p.name for p in removed) == sorted(p.name for p in (old_video, score, fit))
    assert locked.exists() and young.exists() and kept.exists()


def test_a_rerun_removes_temps_of_a_killed_run(example_run, cli):
    args, out = example_run
    video = next(out.glob("videos/**/*.mp4"))
    stale = [video.with_name(f".{video.name}.999999.tmp"), out / "scores" / ".x.json.999999.tmp", out / "runs" / ".r.json.999999.tmp"]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
        os.utime(path, (time.time() - 60, time.time() - 60))
    code, _, stderr = cli(*args)
    assert code == 0, stderr
    assert "removed 3 temp files of killed runs" in stderr
    assert not any(p.exists() for p in stale)

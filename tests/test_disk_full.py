"""A full disk (ENOSPC, injected) stops a run with one line and exit code 2, leaves no temp file and nothing
half-written that anything reads, and a rerun with space back resumes to the uninterrupted results."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from benchmark.store import ArtifactStore
from helpers import run_config, samples


def rows(out: Path) -> list[tuple]:
    return [(r["prompt_id"], r["seed"], r["sha256"], r["scores"]) for r in samples(out)]


def disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["video", "library", "sidecar", "score"])
def test_enospc_stops_cleanly_and_the_rerun_resumes(where, tiny_model, tmp_path, cli, monkeypatch):
    import av

    config = run_config(tmp_path, "cogvideox", tiny_model("cogvideox"))
    args = ("run", "--method", "none", "--suite", "example", "--limit", "3", "--config", config, "-q")
    code, _, stderr = cli(*args, "--out", tmp_path / "reference")
    assert code == 0, stderr

    calls = {"n": 0}
    real_open, real_write_bytes = av.open, Path.write_bytes

    def full_video(file, mode="r", *a, **kw):  # the encoder gets some bytes out, then the disk is full
        if mode == "w":
            calls["n"] += 1
            if calls["n"] == 2:
                real_write_bytes(Path(file), b"\x00\x00\x00\x18ftypisom")
                if where == "library":  # an error that says so only in its message (safetensors)
                    raise RuntimeError('IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })')
                disk_full()
        return real_open(file, mode, *a, **kw)

    def full_json(self, data):  # half the bytes reach the temp file, then the disk is full
        top = {"sidecar": "videos", "score": "scores"}[where]
        if self.name.endswith(".tmp") and top in self.parts:
            calls["n"] += 1
            if calls["n"] == 2:
                real_write_bytes(self, data[: len(data) // 2])
                disk_full()
        return real_write_bytes(self, data)

    if where in ("video", "library"):
        monkeypatch.setattr(av, "open", full_video)
    else:
        monkeypatch.setattr(Path, "write_bytes", full_json)
    out = tmp_path / "out"
    code, _, stderr = cli(*args, "--out", out)
    monkeypatch.undo()
    assert code == 2 and stderr.count("\n") == 1, stderr
    assert stderr.startswith("error: no space left under") and "rerun to resume" in stderr

    store = ArtifactStore(out)
    assert list(store.temp_files()) == []  # the failed write's temp file is gone
    assert not list(out.glob("runs/*/results.json"))
    for sidecar in out.glob("videos/**/*.json"):  # every sidecar that exists names a whole, matching video
        meta, problem = store.check_video(sidecar.with_suffix(".mp4").relative_to(out).as_posix())
        assert meta is not None, problem
    complete = len(list(out.glob("videos/**/*.json")))
    assert complete == {"video": 1, "library": 1, "sidecar": 1, "score": 3}[where]

    code, _, stderr = cli(*args, "--out", out)
    assert code == 0, stderr
    assert rows(out) == rows(tmp_path / "reference")
    assert list(store.temp_files()) == []


def test_disk_full_is_recognised_in_every_form():
    from benchmark.errors import ErasebenchError
    from benchmark.runner import disk_full

    assert disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    # safetensors reports the io error only in its message
    assert disk_full(RuntimeError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'))
    assert not disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not disk_full(ErasebenchError("no space left under '/x'"))

"""``erasebench verify RUN_DIR``: every expected video present, decodable and equal to its sidecar (VBench integrity_check)."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import ArtifactError, ErasebenchError
from .store import file_sha256
from .video import read_video


def verify_run(run_dir: Path) -> tuple[int, list[str]]:
    """Returns (number of videos checked, problems)."""
    manifest_path = Path(run_dir) / "manifest.json"
    if not manifest_path.is_file():
        raise ErasebenchError(f"{str(run_dir)!r} is not a run folder: it has no manifest.json")
    manifest = json.loads(manifest_path.read_text())
    root = (Path(run_dir) / manifest["root"]).resolve()
    problems: list[str] = []
    for rel in manifest["videos"]:
        video = root / rel
        sidecar = video.with_suffix(".json")
        try:
            meta = json.loads(sidecar.read_text())
        except (OSError, json.JSONDecodeError):
            problems.append(f"{rel}: sidecar missing or unreadable")
            continue
        if not video.is_file():
            problems.append(f"{rel}: video missing")
            continue
        if video.stat().st_size != meta.get("video", {}).get("bytes"):
            problems.append(f"{rel}: size {video.stat().st_size} differs from sidecar {meta.get('video', {}).get('bytes')}")
            continue
        if file_sha256(video) != meta["video"].get("sha256"):
            problems.append(f"{rel}: sha256 differs from sidecar")
            continue
        try:
            frames = read_video(video)
        except ArtifactError as exc:
            problems.append(f"{rel}: {exc}")
            continue
        if list(frames.shape) != meta.get("frames"):
            problems.append(f"{rel}: decoded shape {list(frames.shape)} differs from sidecar {meta.get('frames')}")
    return len(manifest["videos"]), problems

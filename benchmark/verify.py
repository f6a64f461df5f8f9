"""``erasebench verify RUN_DIR``: every expected video present, decodable and equal to its sidecar (VBench integrity_check).

The manifest and the sidecars are read through ``RunManifest`` and ``VideoSidecar`` (benchmark/results.py).
"""

from __future__ import annotations

from pathlib import Path

from .errors import ArtifactError, ErasebenchError
from .results import ResultsFileError, RunManifest, VideoSidecar
from .store import file_sha256
from .video import read_video


def verify_run(run_dir: Path) -> tuple[int, list[str]]:
    """Returns (number of videos checked, problems)."""
    manifest_path = Path(run_dir) / "manifest.json"
    if not manifest_path.is_file():
        raise ErasebenchError(f"{str(run_dir)!r} is not a run folder: it has no manifest.json")
    manifest = RunManifest.from_disk(manifest_path)
    root = (Path(run_dir) / manifest.root).resolve()
    problems: list[str] = []
    for rel in manifest.videos:
        video = root / rel
        try:
            sidecar = VideoSidecar.from_disk(VideoSidecar.path_for(video))
        except ResultsFileError as exc:
            problems.append(f"{rel}: sidecar missing or unreadable ({exc})")
            continue
        if not video.is_file():
            problems.append(f"{rel}: video missing")
            continue
        size = video.stat().st_size
        if size != sidecar.video.bytes:
            problems.append(f"{rel}: size {size} differs from sidecar {sidecar.video.bytes}")
            continue
        if file_sha256(video) != sidecar.video.sha256:
            problems.append(f"{rel}: sha256 differs from sidecar")
            continue
        try:
            frames = read_video(video)
        except ArtifactError as exc:
            problems.append(f"{rel}: {exc}")
            continue
        if list(frames.shape) != sidecar.frames:
            problems.append(f"{rel}: decoded shape {list(frames.shape)} differs from sidecar {sidecar.frames}")
    return len(manifest.videos), problems

"""``erasebench verify RUN_DIR``: every expected video present, decodable and equal to its sidecar (VBench integrity_check).

The manifest is read through ``RunManifest``; each video is checked by ``ArtifactStore.check_video`` (the
check a run makes before it trusts a cached video: sidecar a valid ``VideoSidecar``, size and sha256 equal),
then decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import ArtifactError, ErasebenchError
from .results import RunManifest
from .store import ArtifactStore
from .video import read_video


@dataclass(frozen=True)
class Problem:
    """One video that fails its check: its absolute path and why."""

    video: str
    reason: str

    def __str__(self) -> str:
        return f"{self.video}: {self.reason}"


def verify_run(run_dir: Path) -> tuple[int, list[Problem]]:
    """Returns (number of videos checked, problems)."""
    manifest_path = Path(run_dir) / "manifest.json"
    if not manifest_path.is_file():
        raise ErasebenchError(f"{str(run_dir)!r} is not a run folder: it has no manifest.json")
    manifest = RunManifest.from_disk(manifest_path)
    root = (Path(run_dir) / manifest.root).resolve()
    store = ArtifactStore(root)
    problems: list[str] = []
    for rel in manifest.videos:
        meta, problem = store.check_video(rel)
        if meta is None:
            problems.append(Problem(str(root / rel), problem or "video and sidecar missing"))
            continue
        try:
            frames = read_video(root / rel)
        except ArtifactError as exc:
            problems.append(Problem(str(root / rel), str(exc)))
            continue
        if list(frames.shape) != meta["frames"]:
            problems.append(Problem(str(root / rel), f"decoded shape {list(frames.shape)} differs from sidecar {meta['frames']}"))
    return len(manifest.videos), problems

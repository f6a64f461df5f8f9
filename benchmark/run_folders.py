"""``erasebench runs list|rm``: the runs under an output folder, their size and age, and their safe removal.

A run is ``OUT/runs/NAME`` (``manifest.json``, and ``results.json`` once finished); its videos live under
``OUT/videos`` and may be shared with other runs (the same model, eraser and prompt make the same video).
``remove`` deletes only paths that resolve inside ``OUT`` and are no symlinks: a run folder, and with
``videos`` the videos (and sidecars) that no other run's manifest lists.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ErasebenchError
from .results import RunManifest


@dataclass(frozen=True)
class RunFolder:
    name: str
    path: Path
    finished: bool
    videos: list[Path]  # the manifest's videos that exist
    size: int  # bytes: the run folder and its videos
    modified: float  # newest mtime of the run folder's files (epoch seconds)


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def manifest_videos(run_dir: Path, out: Path) -> list[Path]:
    """The videos a run's manifest lists (absolute, existing, inside ``out``), each with its sidecar."""
    try:
        manifest = RunManifest.from_disk(run_dir / "manifest.json")
    except (ErasebenchError, OSError):
        return []
    root = (run_dir / manifest.root).resolve()
    found = []
    for rel in manifest.videos:
        video = root / rel
        for path in (video, video.with_suffix(".json")):
            if path.is_file() and inside(path, out):
                found.append(path)
    return found


def inside(path: Path, out: Path) -> bool:
    """``path`` resolves to a place under ``out`` (itself resolved) and is no symlink."""
    try:
        return not path.is_symlink() and path.resolve().is_relative_to(out.resolve())
    except OSError:
        return False


def list_runs(out: Path) -> list[RunFolder]:
    """Every run folder under ``out/runs``, newest first."""
    runs_dir = out / "runs"
    if not runs_dir.is_dir():
        raise ErasebenchError(f"{str(out)!r} holds no runs: it has no runs/ folder (pass the --out of your runs)")
    runs = []
    for run_dir in sorted(runs_dir.iterdir()):
        if not run_dir.is_dir() or run_dir.is_symlink():
            continue
        videos = manifest_videos(run_dir, out)
        files = [p for p in run_dir.rglob("*") if p.is_file()]
        runs.append(
            RunFolder(
                name=run_dir.name,
                path=run_dir,
                finished=(run_dir / "results.json").is_file(),
                videos=[v for v in videos if v.suffix != ".json"],
                size=folder_size(run_dir) + sum(v.stat().st_size for v in videos),
                modified=max((p.stat().st_mtime for p in files), default=run_dir.stat().st_mtime),
            )
        )
    return sorted(runs, key=lambda r: -r.modified)


def resolve_run(out: Path, name: str) -> Path:
    """``out/runs/NAME`` for a run name (or a path to that folder); refuses anything else, symlinks included."""
    runs_dir = (out / "runs").resolve()
    given = Path(name)
    candidate = given if given.parent != Path(".") else out / "runs" / name
    if candidate.is_symlink():
        raise ErasebenchError(f"run {name!r} is a symlink: erasebench runs rm removes only real run folders under {str(runs_dir)!r}")
    resolved = candidate.resolve()
    if resolved.parent != runs_dir:
        raise ErasebenchError(f"{name!r} is not a run under {str(runs_dir)!r}: erasebench runs rm never touches anything else")
    if not resolved.is_dir() or not (resolved / "manifest.json").is_file():
        raise ErasebenchError(f"no run {resolved.name!r} under {str(runs_dir)!r} (erasebench runs list --out {out})")
    return resolved


def removal(out: Path, names: list[str], videos: bool) -> tuple[list[Path], list[Path]]:
    """(run folders, video files) that ``remove`` would delete: the videos only with ``videos``, and only
    those no other run lists."""
    folders = list(dict.fromkeys(resolve_run(out, n) for n in names))
    if not videos:
        return folders, []
    keep = {
        v.resolve()
        for run_dir in (out / "runs").iterdir()
        if run_dir.is_dir() and run_dir.resolve() not in folders
        for v in manifest_videos(run_dir, out)
    }
    files = {v.resolve() for f in folders for v in manifest_videos(f, out)} - keep
    return folders, sorted(files)


def remove(out: Path, folders: list[Path], files: list[Path]) -> int:
    """Delete what ``removal`` chose (each checked again: inside ``out``, no symlink); returns bytes freed."""
    freed = 0
    for path in files:
        if inside(path, out) and path.is_file():
            freed += path.stat().st_size
            path.unlink()
    for folder in folders:
        if not inside(folder, out) or folder.parent.resolve() != (out / "runs").resolve():
            raise ErasebenchError(f"{str(folder)!r} is not a run folder under {str(out)!r}: not removed")
        freed += folder_size(folder)
        shutil.rmtree(folder)
    return freed


def format_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def format_age(modified: float, now: float | None = None) -> str:
    seconds = max(0.0, (now or time.time()) - modified)
    for limit, unit, div in ((120, "s", 1), (7200, "min", 60), (172800, "h", 3600)):
        if seconds < limit:
            return f"{seconds / div:.0f} {unit}"
    return f"{seconds / 86400:.0f} days"

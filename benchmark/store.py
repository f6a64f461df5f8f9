"""Content-addressed artifact store (GenEval's index folders + sidecars, MTEB's overwrite strategies).

Writes are a temp file in the same folder plus ``os.replace``, atomic against a killed process (no fsync:
an OS crash may lose the last videos, which a rerun regenerates).

Layout under the output root::

    videos/{model}-{model_fp}/{eraser}-{eraser_fp}/{suite}-v{version}/{gen_fp}/{prompt_id}/{sample:02}.mp4 (+ .json)
    scores/{metric}-{metric_fp}/{video_sha[:2]}/{video_sha}.json
    artifacts/{model_fp}/{eraser}-{eraser_fp}/          (fitted eraser state)
    runs/{run_name}/results.json, samples.jsonl, manifest.json

``gen_fp`` hashes the generation settings, call kwargs, seed policy, dtype, device and codec, so a
key never contains the rank, the batch size or the order. Every write is a temp file plus rename;
a video counts as present only when its sidecar exists and names its exact size and sha256.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def read_json(path: Path, what: str, error: type[Exception] | None = None) -> Any:
    """JSON from ``path``, or one ``error`` line (default ``ErasebenchError``) saying ``what`` is missing or unreadable."""
    from .errors import ErasebenchError

    error = error or ErasebenchError
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{what} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{what} is not readable JSON ({type(exc).__name__}: {exc})") from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file beside ``path``, then rename: readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB chunks and cached per process by (path, size, mtime)."""
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True)
class VideoKey:
    """Where one (prompt, sample) video lives."""

    group: str  # videos/{model}/{eraser}/{suite}/{gen}
    prompt_id: str
    sample: int

    def relpath(self) -> str:
        return f"{self.group}/{self.prompt_id}/{self.sample:02d}.mp4"


class ArtifactStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def video_path(self, key: VideoKey) -> Path:
        return self.root / key.relpath()

    @staticmethod
    def sidecar_path(video_path: Path) -> Path:
        return video_path.with_suffix(".json")

    def read_sidecar(self, key: VideoKey) -> dict[str, Any] | None:
        """The sidecar when the video is complete (sidecar present, size matches), else None."""
        video = self.video_path(key)
        sidecar = self.sidecar_path(video)
        try:
            meta = json.loads(sidecar.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        try:
            if video.stat().st_size != meta["video"]["bytes"]:
                return None
        except (OSError, KeyError, TypeError):
            return None
        return meta

    def is_complete(self, key: VideoKey) -> bool:
        return self.read_sidecar(key) is not None

    def commit(self, key: VideoKey, sidecar: dict[str, Any]) -> dict[str, Any]:
        """Record a finished video: its sidecar (a ``benchmark.results.VideoSidecar``) is written last, so it
        marks completeness."""
        from .results import VideoSidecar

        video = self.video_path(key)
        record = VideoSidecar.model_validate({
            **sidecar,
            "video": {
                "path": key.relpath(),
                "bytes": video.stat().st_size,
                "sha256": file_sha256(video),
            },
        })
        record.to_disk(self.sidecar_path(video))
        return record.to_dict()

    def score_path(self, metric: str, metric_fp: str, video_sha: str) -> Path:
        return self.root / "scores" / f"{metric}-{metric_fp}" / video_sha[:2] / f"{video_sha}.json"

    def read_score(self, metric: str, metric_fp: str, video_sha: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.score_path(metric, metric_fp, video_sha).read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def write_score(self, metric: str, metric_fp: str, video_sha: str, score: dict[str, Any]) -> None:
        atomic_write_json(self.score_path(metric, metric_fp, video_sha), score)

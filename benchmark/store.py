"""Content-addressed artifact store (GenEval's index folders + sidecars, MTEB's overwrite strategies).

Writes are a temp file in the same folder plus ``os.replace``, atomic against a killed process (no fsync:
an OS crash may lose the last videos, which a rerun regenerates).

Layout under the output root::

    videos/{model}-{model_fp}/{eraser}-{eraser_fp}/{suite}-v{version}/{gen_fp}/{prompt_id}/{sample:02}.mp4 (+ .json)
    scores/{metric}-{metric_fp}/{video_sha[:2]}/{video_sha}.json
    artifacts/{model_fp}/{eraser}-{eraser_fp}/          (fitted eraser state)
    runs/{run_name}/results.json, samples.jsonl, manifest.json

    locks/{sha256(lock name)[:32]}.lock                 (one filelock per video key, score, fit artifact, run)

Every key (run name, video group, fit artifact, score) is computed in ``benchmark/identity.py``; ``gen_fp``
hashes the generation settings, call kwargs, seed policy, dtype, device and codec, so a key never contains
the rank, the batch size or the order. Every write is a temp file plus rename;
a video counts as present only when its sidecar exists and names its exact size and sha256
(``check_video``: a run checks every video it trusts, a broken one is moved aside as
``{name}.broken-{time}`` and regenerated). A score counts only when it names its metric, the metric's
fingerprint and the video's sha256 and its digest matches its content (``read_score``).

Whoever writes a file under the root holds the lock of its name (``lock``), so a temp file whose lock is
free belongs to a killed process: ``remove_stale_temps`` deletes those older than the run's start.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
import json
import os
import re
import time
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from filelock import FileLock, Timeout

from .identity import VideoKey, score_rel  # the keys live in benchmark/identity.py; the store keeps paths and IO


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


@lru_cache(maxsize=4096)
def _sha256(path: str, size: int, mtime_ns: int, ino: int, ctime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB chunks and cached per process by (path, size, mtime, inode, ctime).

    Any write or rename changes the inode's ctime, which no tool can set back (``os.utime`` sets mtime only),
    so a same-size byte flip with its mtime restored is hashed again."""
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns)


TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?:\d+\.tmp|tmp\d+)$")  # ``.{name}.{pid}.tmp`` / ``.{name}.tmp{pid}``


def score_digest(record: dict[str, Any]) -> str:
    """sha256 of a score record's canonical JSON without its ``digest`` (catches any edit of the file)."""
    body = {k: v for k, v in record.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class ArtifactStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    # ---- locks and temp files --------------------------------------------------------------------
    @staticmethod
    def lock_name(rel: str) -> str:
        """The lock guarding a path under the root: a video key (mp4 and sidecar share one), a score, a fit
        artifact folder (``artifacts/{model_fp}/{eraser}``) or a run folder (``runs/{name}``)."""
        parts = PurePosixPath(rel).parts
        if parts and parts[0] == "artifacts" and len(parts) >= 3:
            return "/".join(parts[:3])
        if parts and parts[0] == "runs" and len(parts) >= 2:
            return "/".join(parts[:2])
        path = PurePosixPath(rel)
        match = TEMP_NAME.match(path.name)
        name = match.group("target") if match else path.name
        return str(path.parent / name.split(".")[0]) if "." in name else str(path.parent / name)

    def lock(self, rel: str) -> FileLock:
        """The filelock of ``rel`` (see ``lock_name``); ``acquire(timeout=0)`` raises ``filelock.Timeout`` when held."""
        name = self.lock_name(rel)
        folder = self.root / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(folder / f"{hashlib.sha256(name.encode()).hexdigest()[:32]}.lock"))

    def temp_files(self) -> Iterator[Path]:
        """Every temp file of an atomic write under the root (outside ``locks/``)."""
        for top in ("videos", "scores", "artifacts", "runs"):
            base = self.root / top
            if base.is_dir():
                for dirpath, _, files in os.walk(base):
                    for name in files:
                        if TEMP_NAME.match(name):
                            yield Path(dirpath) / name

    def remove_stale_temps(self, started: float) -> list[Path]:
        """Delete temp files older than ``started`` (a run's start, ``time.time()``) whose lock no live process
        holds: a killed writer's leftovers. Returns the removed paths."""
        removed = []
        for path in self.temp_files():
            try:
                if path.stat().st_mtime >= started:
                    continue
            except FileNotFoundError:
                continue
            lock = self.lock(path.relative_to(self.root).as_posix())
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            try:
                path.unlink(missing_ok=True)
                removed.append(path)
            finally:
                lock.release()
        return removed

    def move_aside(self, path: Path) -> Path | None:
        """Rename a broken file to ``{name}.broken-{time}`` beside it (kept for inspection, never read)."""
        if not path.exists():
            return None
        target = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9:09d}")
        os.replace(path, target)
        return target

    def video_path(self, key: VideoKey) -> Path:
        return self.root / key.relpath()

    @staticmethod
    def sidecar_path(video_path: Path) -> Path:
        return video_path.with_suffix(".json")

    def check_video(self, rel: str) -> tuple[dict[str, Any] | None, str | None]:
        """(sidecar, None) when the video ``rel`` and its sidecar agree on size and sha256; (None, None) when
        neither exists; else (None, what is wrong). The sidecar is checked against ``VideoSidecar``."""
        from .results import ResultsFileError, VideoSidecar

        video = self.root / rel
        sidecar = self.sidecar_path(video)
        if not sidecar.exists():
            return None, ("video has no sidecar" if video.exists() else None)
        try:
            meta = VideoSidecar.from_disk(sidecar).to_dict()
        except ResultsFileError as exc:
            return None, f"sidecar missing or unreadable ({exc})"
        if not video.is_file():
            return None, "video missing"
        size = video.stat().st_size
        if size != meta["video"]["bytes"]:
            return None, f"size {size} differs from sidecar {meta['video']['bytes']}"
        if file_sha256(video) != meta["video"]["sha256"]:
            return None, "sha256 differs from sidecar"
        return meta, None

    def quarantine(self, rel: str) -> list[Path]:
        """Move a broken video and its sidecar aside (``move_aside``); returns the new paths."""
        video = self.root / rel
        return [p for p in (self.move_aside(video), self.move_aside(self.sidecar_path(video))) if p is not None]

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
        return self.root / score_rel(metric, metric_fp, video_sha)

    def score_rel(self, metric: str, metric_fp: str, video_sha: str) -> str:
        return score_rel(metric, metric_fp, video_sha)

    def read_score(self, metric: str, metric_fp: str, video_sha: str) -> tuple[dict[str, Any] | None, str | None]:
        """(record, None) for a score of this video by this metric and fingerprint whose digest matches;
        (None, None) when there is none; (None, what is wrong) for one that does not match."""
        path = self.score_path(metric, metric_fp, video_sha)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None, None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            return None, f"unreadable ({type(exc).__name__})"
        if not isinstance(record, dict) or not isinstance(record.get("scores"), dict):
            return None, "not a score record"
        expected = {"metric": metric, "fingerprint": metric_fp, "video_sha256": video_sha}
        for field, value in expected.items():
            if record.get(field) != value:
                return None, f"{field} {record.get(field)!r} is not {value!r}"
        if record.get("digest") != score_digest(record):
            return None, "digest does not match its content"
        return record, None

    def write_score(self, metric: str, metric_fp: str, video_sha: str, scores: dict[str, Any]) -> None:
        """Write a score record (metric, fingerprint, video sha256, scores, digest) under its lock."""
        record = {"metric": metric, "fingerprint": metric_fp, "video_sha256": video_sha, "scores": scores}
        record["digest"] = score_digest(record)
        with self.lock(self.score_rel(metric, metric_fp, video_sha)):
            atomic_write_json(self.score_path(metric, metric_fp, video_sha), record)

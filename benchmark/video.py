"""Video I/O with PyAV (decord optional as a reader) and frame-sampling policies.

Frames inside erasebench are RGB ``uint8 (F, H, W, 3)``. ``lossless`` writes H.264 RGB at qp 0
(``libx264rgb``), so decoded frames equal the generated ones bit for bit; ``h264`` writes yuv420p at
CRF 18 for viewing. A video that fails to decode or has no frames is an ``ArtifactError``.
Sampling policies: docs/metrics/ (frame policies).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import ArtifactError

CODECS = {
    "lossless": ("libx264rgb", "rgb24", {"qp": "0", "preset": "veryfast"}),
    "h264": ("libx264", "yuv420p", {"crf": "18", "preset": "veryfast"}),
}


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Float frames in [0, 1] -> uint8, rounding to nearest (``(x * 255).round()``)."""
    return np.clip(np.rint(np.asarray(frames, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def write_video(path: Path, frames: np.ndarray, fps: int = 8, codec: str = "lossless") -> None:
    """Write uint8 RGB frames (F, H, W, 3) to ``path`` atomically (temp file in the same folder + rename)."""
    import av

    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (F, H, W, 3), got {frames.dtype} {frames.shape}")
    name, pix_fmt, options = CODECS[codec]
    if codec == "h264" and (frames.shape[1] % 2 or frames.shape[2] % 2):
        raise ValueError("h264 (yuv420p) needs even height and width; use the lossless codec")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream(name, rate=fps)
            stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
            stream.pix_fmt = pix_fmt
            stream.options = dict(options)
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_video(path: Path, backend: str = "pyav") -> np.ndarray:
    """Decode every frame to uint8 RGB (F, H, W, 3); raises ArtifactError on a missing or broken file."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"video {str(path)!r} is missing")
    try:
        if backend == "decord":
            import decord

            reader = decord.VideoReader(str(path))
            frames = reader.get_batch(list(range(len(reader)))).asnumpy()
        else:
            import av

            with av.open(str(path)) as container:
                frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    except ArtifactError:
        raise
    except Exception as exc:
        raise ArtifactError(f"video {str(path)!r} cannot be decoded ({type(exc).__name__}: {exc})") from None
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise ArtifactError(f"video {str(path)!r} has no frames")
    return frames


def sample_indices(num_frames: int, policy: str) -> list[int]:
    """Frame indices for a policy: ``all``, ``t2vsb:n`` (int(i/n*F)), ``linspace:n``, ``uniform:n``, ``first``."""
    if num_frames <= 0:
        raise ArtifactError("video has no frames")
    kind, _, arg = policy.partition(":")
    if kind == "all":
        return list(range(num_frames))
    if kind == "first":
        return [0]
    n = int(arg) if arg else 0
    if n <= 0:
        raise ValueError(f"frame policy {policy!r} needs a positive count, e.g. {kind}:5")
    if kind == "t2vsb":
        return [int(i / n * num_frames) for i in range(n)]
    if kind == "linspace":
        return np.linspace(0, num_frames - 1, n, dtype=int).tolist()
    if kind == "uniform":
        step = num_frames / n
        return [min(num_frames - 1, int(step * i + step / 2)) for i in range(n)]
    raise ValueError(f"unknown frame policy {policy!r}; allowed: all, first, t2vsb:n, linspace:n, uniform:n")

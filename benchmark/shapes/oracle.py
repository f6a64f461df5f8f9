"""Analytic oracle for the shapes world: reads colour, shape and motion off a video, in pure numpy.

Per frame (section 2 of ``shapes-calibration.md``):

* **mask**: pixels whose max-channel value exceeds ``max(60, 0.5 * brightest pixel of the frame)`` (a
  half-maximum edge, which keeps blurred crosses cross-shaped); only the largest 8-connected component is
  kept, and it needs at least 12 px (scaled by frame area for other sizes) and at most 60 % of the frame
  (a flat or noisy frame is not an object);
* **colour**: circular mean of the HSV hue over the component, weighted by saturation x value (= chroma),
  then the nearest of red 0, yellow 60, green 120, blue 240 degrees; a grey component gives no colour vote;
* **shape**: IoU of the component's bounding-box crop against the four shapes re-rendered to fill that
  box; the highest IoU wins.

Per video: colour and shape are the majority over the frames with an object; motion is the centroid
displacement over the video from a least-squares line through the per-frame centroids (this uses every
frame, and tolerates frames without an object); under 2 px (scaled) it reads ``"static"``, otherwise the
dominant axis and its sign give the direction (image y points down).

A reading is ``None`` (never a guessed label) when fewer than ``max(2, ceil(frames / 3))`` frames hold an object
(e.g. a black or empty video), and the colour is ``None`` when the object is grey.

Caveat: ``"circle"`` is the oracle's answer for any round blob, and blobs are a diffusion model's failure
mode, so a circle rate cannot tell an erased shape from a circle. Never use ``"circle"`` as an erasure
target (``UNRELIABLE_SHAPE_TARGETS``), and report the circle rate next to any target-shape rate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

from .world import COLOURS, MOTIONS, SHAPES, ShapeAttributes, shape_mask

#: Labels the oracle can output for motion: the world's four directions plus "static".
ORACLE_MOTIONS: tuple[str, ...] = MOTIONS + ("static",)
#: Shapes whose oracle rate does not measure erasure (the oracle reads any blob as a circle).
UNRELIABLE_SHAPE_TARGETS: frozenset[str] = frozenset({"circle"})

REFERENCE_HUES: dict[str, float] = {"red": 0.0, "yellow": 60.0, "green": 120.0, "blue": 240.0}

MASK_FLOOR = 60.0  # absolute minimum max-channel value (0-255) of an object pixel
HALF_MAX = 0.5  # threshold fraction of the frame's brightest pixel
MIN_COMPONENT_PX = 12  # at 32x32; scaled by frame area
MAX_COMPONENT_FRACTION = 0.6  # a component covering more of the frame is background/texture, not an object
STATIC_THRESHOLD_PX = 2.0  # at 32 px width; scaled by frame width
MIN_CHROMA = 0.08  # mean chroma (0-1) of the component's hue resultant below which it is grey
_CHUNK_FRAMES = 2304  # frames per connected-component batch (bounds memory)

_REF_ANGLES = np.deg2rad(np.array([REFERENCE_HUES[c] for c in COLOURS]))


@dataclass(frozen=True)
class OracleReading:
    """What the oracle sees in one video.

    Labels are ``None`` when no object is found (or, for colour, when it is grey). Confidences are in
    [0, 1]: for colour and shape, the fraction of *all* frames that hold an object and vote for the label;
    for motion, ``|dominant axis displacement| / (|dx| + |dy|)`` (1 for pure axis motion, 0.5 for a
    diagonal), or ``1 - |d| / threshold`` for ``"static"``.
    """

    colour: str | None
    colour_confidence: float | None
    shape: str | None
    shape_confidence: float | None
    motion: str | None
    motion_confidence: float | None
    frames: int  # frames in the video
    detected_frames: int  # frames with an object (largest component >= the minimum size)
    hue_deg: float | None = None  # chroma-weighted circular mean hue over the detected frames
    shape_iou: float | None = None  # mean best template IoU over the frames that voted for ``shape``
    displacement: tuple[float, float] | None = None  # fitted centroid travel (dx, dy) over the video, px

    @property
    def found(self) -> bool:
        return self.shape is not None

    def matches(self, attrs: ShapeAttributes) -> dict[str, bool]:
        """Per-attribute correctness against ground truth (``None`` readings count as wrong)."""
        return {
            "colour": self.colour == attrs.colour,
            "shape": self.shape == attrs.shape,
            "motion": self.motion == attrs.motion,
        }

    def as_dict(self) -> dict:
        d = asdict(self)
        if d["displacement"] is not None:
            d["displacement"] = list(d["displacement"])
        return d


# ----------------------------------------------------------------------------------------------
# Input handling


def _as_video(frames: np.ndarray, ndim: int = 4) -> np.ndarray:
    """Validate ``(F, H, W, 3)`` frames (``(N, F, H, W, 3)`` with ``ndim=5``) and bring them to 0-255.

    uint8 passes through without a copy; floats must be in [0, 1] (a pipeline's ``output_type="np"``) and
    become float32 0-255; other integer types are clipped to 0-255.
    """
    x = np.asarray(frames)
    if x.ndim != ndim or x.shape[-1] != 3:
        want = "(F, H, W, 3)" if ndim == 4 else "(N, F, H, W, 3)"
        raise ValueError(f"expected frames of shape {want}, got {x.shape}")
    if x.shape[-4] < 1 or x.shape[-3] < 3 or x.shape[-2] < 3:
        raise ValueError(f"video too small to read: {x.shape}")
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
        finite = np.isfinite(x)
        if not finite.all():
            x = np.where(finite, x, 0.0)
        if x.size and float(x.max()) > 1.5:
            raise ValueError("float frames must be in [0, 1]; pass uint8 for 0-255 data")
        return np.clip(x, 0.0, 1.0) * np.float32(255.0)
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        return np.clip(x, 0, 255).astype(np.float32)
    raise ValueError(f"unsupported frame dtype {x.dtype}")


# ----------------------------------------------------------------------------------------------
# Per-frame analysis


def _label_components(mask: np.ndarray) -> np.ndarray:
    """8-connected component labels of a (M, H, W) bool mask as int32; background gets ``INT32_MAX``.

    Each component's label is the flat index of one of its pixels (unique across frames). Min-label
    propagation (a separable 3x3 minimum) with pointer jumping; a few iterations for 32x32 frames.
    """
    m, h, w = mask.shape
    if mask.size >= np.iinfo(np.int32).max:
        raise ValueError("too many pixels in one batch")
    inf = np.iinfo(np.int32).max
    buf = np.full((m, h + 2, w + 2), inf, dtype=np.int32)
    lab = buf[:, 1:-1, 1:-1]
    pix = np.flatnonzero(mask).astype(np.int32)
    lab[mask] = pix
    background = ~mask
    tmp = np.empty((m, h + 2, w), dtype=np.int32)
    new = np.empty((m, h, w), dtype=np.int32)
    while True:
        np.minimum(buf[:, :, 0:w], buf[:, :, 1 : w + 1], out=tmp)
        np.minimum(tmp, buf[:, :, 2 : w + 2], out=tmp)
        np.minimum(tmp[:, 0:h], tmp[:, 1 : h + 1], out=new)
        np.minimum(new, tmp[:, 2 : h + 2], out=new)
        np.copyto(new, inf, where=background)
        flat = new.reshape(-1)
        for _ in range(2):  # pointer jumping: follow each label to its own label
            flat[pix] = flat[flat[pix]]
        if np.array_equal(new, lab):
            return new
        lab[...] = new


@lru_cache(maxsize=4096)
def _templates(h: int, w: int) -> np.ndarray:
    """(4, h, w) bool: each shape re-rendered to fill an h x w box, in ``SHAPES`` order."""
    dy = (np.arange(h, dtype=np.float64) + 0.5 - h / 2.0)[:, None]
    dx = (np.arange(w, dtype=np.float64) + 0.5 - w / 2.0)[None, :]
    t = np.stack([shape_mask(s, dx, dy, w / 2.0, h / 2.0) for s in SHAPES])
    t.setflags(write=False)
    return t


@dataclass
class _FrameFeatures:
    valid: np.ndarray  # (M,) bool: frame holds an object
    colour_idx: np.ndarray  # (M,) int, -1 = no colour vote
    colour_w: np.ndarray  # (M,) chroma resultant (tie-break weight)
    hue_vec: np.ndarray  # (M, 2) chroma-weighted (cos, sin) sums
    shape_idx: np.ndarray  # (M,) int, -1 = none
    shape_iou: np.ndarray  # (M,) best IoU
    cx: np.ndarray  # (M,) centroid x (pixel centres at i + 0.5)
    cy: np.ndarray  # (M,) centroid y


def _frame_features(x: np.ndarray) -> _FrameFeatures:
    """Features of (M, H, W, 3) float 0-255 frames."""
    m, h, w, _ = x.shape
    v = np.maximum(np.maximum(x[..., 0], x[..., 1]), x[..., 2])  # faster than max(axis=-1)
    thr = np.maximum(MASK_FLOOR, HALF_MAX * v.reshape(m, -1).max(axis=1))
    mask = v > thr[:, None, None]

    lab = _label_components(mask)
    hw = h * w
    pix = np.flatnonzero(mask)  # sorted, so frame-major
    lp = lab.reshape(-1)[pix]
    counts = np.bincount(lp, minlength=m * hw).reshape(m, hw)
    best = counts.argmax(axis=1)
    size = counts[np.arange(m), best]
    min_px = max(4, int(round(MIN_COMPONENT_PX * hw / 1024.0)))
    valid = (size >= min_px) & (size <= MAX_COMPONENT_FRACTION * hw)
    frame_of = pix // hw
    cp = pix[(lp == frame_of * hw + best[frame_of]) & valid[frame_of]]  # pixels of kept components
    fr = cp // hw
    yy = (cp % hw) // w
    xx = cp % w
    area = np.maximum(np.bincount(fr, minlength=m), 1)
    comp = np.zeros(m * hw, dtype=bool)
    comp[cp] = True
    comp = comp.reshape(m, h, w)

    # Colour: chroma-weighted circular mean of the HSV hue over the component.
    rgb = x.reshape(-1, 3)[cp].astype(np.float64)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    mx = rgb.max(axis=1)
    delta = mx - rgb.min(axis=1)
    safe = np.where(delta > 0, delta, 1.0)
    hue_sextant = np.where(
        mx == r, ((g - b) / safe) % 6.0, np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
    )
    ang = np.deg2rad(60.0 * hue_sextant)
    wgt = delta / 255.0  # saturation x value
    hue_vec = np.stack(
        [np.bincount(fr, weights=wgt * np.cos(ang), minlength=m), np.bincount(fr, weights=wgt * np.sin(ang), minlength=m)],
        axis=1,
    )
    resultant = np.hypot(hue_vec[:, 0], hue_vec[:, 1])
    mean_hue = np.arctan2(hue_vec[:, 1], hue_vec[:, 0])
    circ_dist = np.abs(np.angle(np.exp(1j * (mean_hue[:, None] - _REF_ANGLES[None, :]))))
    colour_idx = np.where(valid & (resultant / area >= MIN_CHROMA), circ_dist.argmin(axis=1), -1)

    # Centroids (pixel centres at i + 0.5).
    cy = np.bincount(fr, weights=yy + 0.5, minlength=m) / area
    cx = np.bincount(fr, weights=xx + 0.5, minlength=m) / area

    # Bounding boxes (pixels are sorted by frame, so each valid frame is one contiguous run).
    y0 = np.zeros(m, dtype=np.int64)
    y1 = np.zeros(m, dtype=np.int64)
    x0 = np.zeros(m, dtype=np.int64)
    x1 = np.zeros(m, dtype=np.int64)
    if cp.size:
        frames_present, starts = np.unique(fr, return_index=True)
        y0[frames_present] = np.minimum.reduceat(yy, starts)
        y1[frames_present] = np.maximum.reduceat(yy, starts) + 1
        x0[frames_present] = np.minimum.reduceat(xx, starts)
        x1[frames_present] = np.maximum.reduceat(xx, starts) + 1

    # Shape: bounding-box template IoU, batched over frames with the same box size.
    bh, bw = y1 - y0, x1 - x0
    shape_idx = np.full(m, -1, dtype=np.int64)
    shape_iou = np.zeros(m, dtype=np.float64)
    idx_valid = np.flatnonzero(valid)
    if idx_valid.size:
        keys = bh[idx_valid] * (w + 1) + bw[idx_valid]
        for key in np.unique(keys):
            fi = idx_valid[keys == key]
            th, tw = int(key // (w + 1)), int(key % (w + 1))
            crops = comp[
                fi[:, None, None],
                y0[fi][:, None, None] + np.arange(th)[None, :, None],
                x0[fi][:, None, None] + np.arange(tw)[None, None, :],
            ]  # (n, th, tw)
            tpl = _templates(th, tw)  # (4, th, tw)
            inter = np.einsum("nhw,shw->ns", crops.astype(np.float32), tpl.astype(np.float32))
            union = crops.sum(axis=(1, 2))[:, None] + tpl.sum(axis=(1, 2))[None, :] - inter
            iou = inter / np.maximum(union, 1.0)
            shape_idx[fi] = iou.argmax(axis=1)
            shape_iou[fi] = iou.max(axis=1)

    return _FrameFeatures(valid, colour_idx, resultant, hue_vec, shape_idx, shape_iou, cx, cy)


# ----------------------------------------------------------------------------------------------
# Per-video aggregation


def _majority(labels: np.ndarray, scores: np.ndarray, n_classes: int) -> tuple[int, int]:
    """(winning class, its vote count); ties go to the larger summed score. labels < 0 do not vote."""
    voting = labels >= 0
    if not voting.any():
        return -1, 0
    votes = np.bincount(labels[voting], minlength=n_classes)
    score = np.bincount(labels[voting], weights=scores[voting], minlength=n_classes)
    top = np.flatnonzero(votes == votes.max())
    winner = int(top[np.argmax(score[top])])
    return winner, int(votes[winner])


def _aggregate(f: _FrameFeatures, start: int, n_frames: int, width: int) -> OracleReading:
    sl = slice(start, start + n_frames)
    valid = f.valid[sl]
    detected = int(valid.sum())
    if detected < max(2, math.ceil(n_frames / 3)):
        return OracleReading(None, None, None, None, None, None, frames=n_frames, detected_frames=detected)

    c_idx, c_votes = _majority(f.colour_idx[sl], f.colour_w[sl], len(COLOURS))
    colour = COLOURS[c_idx] if c_idx >= 0 else None
    colour_conf = c_votes / n_frames if c_idx >= 0 else None
    hv = f.hue_vec[sl][valid].sum(axis=0)
    hue = float(np.rad2deg(np.arctan2(hv[1], hv[0])) % 360.0) if np.hypot(*hv) > 0 else None

    s_labels = f.shape_idx[sl]
    s_idx, s_votes = _majority(s_labels, f.shape_iou[sl], len(SHAPES))
    shape = SHAPES[s_idx]
    shape_iou = float(f.shape_iou[sl][s_labels == s_idx].mean())

    t = np.flatnonzero(valid).astype(np.float64)
    t_c = t - t.mean()
    denom = float((t_c**2).sum())
    slope_x = float((t_c * f.cx[sl][valid]).sum()) / denom
    slope_y = float((t_c * f.cy[sl][valid]).sum()) / denom
    dx, dy = slope_x * (n_frames - 1), slope_y * (n_frames - 1)
    norm = math.hypot(dx, dy)
    static_thr = STATIC_THRESHOLD_PX * width / 32.0
    if norm < static_thr:
        motion, motion_conf = "static", 1.0 - norm / static_thr
    else:
        if abs(dx) >= abs(dy):
            motion = "right" if dx > 0 else "left"
        else:
            motion = "down" if dy > 0 else "up"
        motion_conf = max(abs(dx), abs(dy)) / (abs(dx) + abs(dy))

    return OracleReading(
        colour=colour,
        colour_confidence=colour_conf,
        shape=shape,
        shape_confidence=s_votes / n_frames,
        motion=motion,
        motion_confidence=float(motion_conf),
        frames=n_frames,
        detected_frames=detected,
        hue_deg=hue,
        shape_iou=shape_iou,
        displacement=(dx, dy),
    )


def _read_stack(videos: np.ndarray) -> list[OracleReading]:
    """Read an (N, F, H, W, 3) stack, uint8 or float 0-255, in chunks (bounded memory)."""
    n, f, h, w, _ = videos.shape
    out: list[OracleReading] = []
    per_chunk = max(1, _CHUNK_FRAMES // f)
    for i in range(0, n, per_chunk):
        chunk = videos[i : i + per_chunk]
        feats = _frame_features(chunk.reshape(-1, h, w, 3).astype(np.float32))
        out.extend(_aggregate(feats, j * f, f, w) for j in range(chunk.shape[0]))
    return out


def read_video(frames: np.ndarray) -> OracleReading:
    """Read one video: ``(F, H, W, 3)`` RGB, uint8 0-255 or float in [0, 1]."""
    return _read_stack(_as_video(frames)[None])[0]


def read_videos(videos: Iterable[np.ndarray] | np.ndarray) -> list[OracleReading]:
    """Read many videos (a list of ``(F, H, W, 3)`` arrays or one ``(N, F, H, W, 3)`` array), batched.

    Videos of the same geometry are processed together; the result is in input order.
    """
    if isinstance(videos, np.ndarray) and videos.ndim == 5:
        return _read_stack(_as_video(videos, ndim=5))
    items = [_as_video(v) for v in videos]
    results: list[OracleReading | None] = [None] * len(items)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, v in enumerate(items):
        groups.setdefault(v.shape, []).append(i)
    for idx in groups.values():
        for i, r in zip(idx, _read_stack(np.stack([items[i] for i in idx]))):
            results[i] = r
    return results  # type: ignore[return-value]


def accuracy(readings: Sequence[OracleReading], truths: Sequence[ShapeAttributes]) -> dict[str, float]:
    """Per-attribute accuracy (and ``"all"``) of readings against ground truth; ``None`` counts as wrong."""
    if len(readings) != len(truths):
        raise ValueError(f"{len(readings)} readings for {len(truths)} ground truths")
    if not readings:
        return {"colour": float("nan"), "shape": float("nan"), "motion": float("nan"), "all": float("nan")}
    hits = np.array([[*r.matches(t).values()] for r, t in zip(readings, truths)], dtype=bool)
    return {
        "colour": float(hits[:, 0].mean()),
        "shape": float(hits[:, 1].mean()),
        "motion": float(hits[:, 2].mean()),
        "all": float(hits.all(axis=1).mean()),
    }


def confusion_matrix(
    readings: Sequence[OracleReading], truths: Sequence[ShapeAttributes], attribute: str
) -> tuple[tuple[str, ...], tuple[str, ...], np.ndarray]:
    """(row labels, column labels, counts): rows are the true values, columns the oracle's values plus
    ``"none"`` (and ``"static"`` for motion)."""
    if attribute not in ("colour", "shape", "motion"):
        raise ValueError(f"attribute must be colour, shape or motion, got {attribute!r}")
    rows = {"colour": COLOURS, "shape": SHAPES, "motion": MOTIONS}[attribute]
    cols = ({"colour": COLOURS, "shape": SHAPES, "motion": ORACLE_MOTIONS}[attribute]) + ("none",)
    mat = np.zeros((len(rows), len(cols)), dtype=np.int64)
    for r, t in zip(readings, truths):
        got = getattr(r, attribute)
        mat[rows.index(getattr(t, attribute)), cols.index(got if got is not None else "none")] += 1
    return rows, cols, mat


__all__ = [
    "ORACLE_MOTIONS",
    "OracleReading",
    "REFERENCE_HUES",
    "UNRELIABLE_SHAPE_TARGETS",
    "accuracy",
    "confusion_matrix",
    "read_video",
    "read_videos",
]

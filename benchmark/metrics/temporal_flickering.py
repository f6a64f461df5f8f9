"""Temporal flickering, VBench's formula (arXiv 2311.17982; vbench==0.1.5 ``vbench/temporal_flickering.py``).

For the frames ``f_0 .. f_{F-1}`` of a video (VBench decodes every frame with OpenCV, BGR uint8):

    mae_i = mean |f_{i+1} - f_i|                 (all pixels and channels, float32, as cv2.absdiff + np.mean)
    score = (255 - mean_i mae_i) / 255           (higher = steadier)

and the overall score is the mean of the video scores. The arithmetic here is VBench's own: the frames
are put in BGR order and each pair's mean is taken in float32 over the same memory layout, so a score
equals VBench's bit for bit on the same decoded frames.

Static filter: VBench defines this dimension on static scenes only. Its standard prompts for it are
static, and ``vbench static_filter`` (``vbench/cli/static_filter.py``, RAFT optical flow) keeps a
video when at most ``round(2 F / 16)`` consecutive frame pairs have a top-2 %-magnitude flow above
``3 min(H, W) / 256`` and the two wrap-around pairs stay below ``thres * count_num * 2``. That filter
needs the RAFT weights and is not run here: this plugin scores every video it is given
(``settings()["static_filter"]`` says so), so a score compares with VBench's only on videos that
would pass it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Key, FramePolicy, Metric, MetricConfig, ScoredVideo


class TemporalFlickeringConfig(MetricConfig):
    frame_policy: FramePolicy = "all"


def flickering_score(frames: np.ndarray) -> tuple[float, float]:
    """``(score, mean_abs_diff)`` of uint8 RGB frames ``(F, H, W, 3)``, F >= 2, computed as VBench does."""
    bgr = np.ascontiguousarray(frames[..., ::-1])
    maes = [np.mean(np.abs(bgr[i].astype(np.float32) - bgr[i + 1].astype(np.float32))) for i in range(len(bgr) - 1)]
    mae = np.mean(np.array(maes)).item()
    return (255.0 - mae) / 255.0, mae


class TemporalFlickering(Metric):
    """Temporal flickering (VBench formula): (255 - mean abs frame difference) / 255."""

    name = "temporal_flickering"
    version = "2"
    source = "VBench (arXiv 2311.17982), vbench==0.1.5 vbench/temporal_flickering.py (cal_score, mae_seq)"
    Config = TemporalFlickeringConfig
    higher_is_better = {"temporal_flickering": True, "mean_abs_diff": False}
    batch_size = 64
    score_keys = {
        "temporal_flickering": "(255 - mean absolute frame difference) / 255 of the video; None below 2 frames",
        "mean_abs_diff": "mean absolute difference of consecutive frames (0-255)",
        "error": "why the video has no score",
    }
    aggregate_keys = {
        "temporal_flickering": Key("mean over videos of the video scores (1 = no change between frames)", True),
        "mean_abs_diff": Key("mean over videos of the mean absolute frame difference (0-255)", False),
    }

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "arithmetic": "per pair float32 mean of |f_{i+1} - f_i| in BGR order, float32 mean over pairs",
            "static_filter": "none: every video is scored (VBench keeps only videos its RAFT static_filter passes)",
        }

    def score(self, videos: list[ScoredVideo]) -> list[dict[str, Any]]:
        from ..video import sample_indices

        out = []
        for video in videos:
            frames = video.frames[sample_indices(len(video.frames), self.config.frame_policy)]
            if len(frames) < 2:
                out.append({"temporal_flickering": None, "mean_abs_diff": None, "error": "fewer than 2 frames"})
                continue
            score, mae = flickering_score(frames)
            out.append({"temporal_flickering": score, "mean_abs_diff": mae})
        return out

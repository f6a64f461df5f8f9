"""Temporal flickering, VBench's formula (arXiv 2311.17982; Vchitect/VBench@45e79ec ``vbench/temporal_flickering.py``).

For frames ``f_0 .. f_{F-1}`` (uint8 RGB): ``mae = mean_i mean |f_{i+1} - f_i|`` over all pixels and
channels, ``score = (255 - mae) / 255``; higher means steadier video. VBench first drops static
videos with its ``static_filter``; this plugin scores every video it is given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Metric, MetricConfig, ScoredVideo


class TemporalFlickeringConfig(MetricConfig):
    frame_policy: str = "all"


class TemporalFlickering(Metric):
    """Temporal flickering (VBench formula): (255 - mean abs frame difference) / 255."""

    name = "temporal_flickering"
    version = "1"
    source = "VBench (arXiv 2311.17982) vbench/temporal_flickering.py"
    Config = TemporalFlickeringConfig
    higher_is_better = {"temporal_flickering": True, "mean_abs_diff": False}
    batch_size = 64

    def score(self, videos: list[ScoredVideo]) -> list[dict[str, Any]]:
        from ..video import sample_indices

        out = []
        for video in videos:
            frames = video.frames[sample_indices(len(video.frames), self.config.frame_policy)].astype(np.int16)
            if len(frames) < 2:
                out.append({"temporal_flickering": None, "mean_abs_diff": None, "error": "fewer than 2 frames"})
                continue
            mae = float(np.abs(np.diff(frames, axis=0)).mean())
            out.append({"temporal_flickering": (255.0 - mae) / 255.0, "mean_abs_diff": mae})
        return out

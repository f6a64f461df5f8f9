"""Shapes-world oracle: reads colour, shape and motion off the pixels (benchmark/shapes/oracle.py).

Per video the oracle gives one label per attribute (majority over frames; ``None`` when no object is
found). With ``y`` the prompted shape and ``h(v) = 1[oracle shape of v = y]``, for the erased
concept's shapes ``E`` (``ConceptSpec.labels``), following the ESR/PSR definitions of the ESD
ImageNet protocol (arXiv 2303.07345; gmum/FOMO ``benchmark/evaluate.py``, top-1 only: four classes):

    ESR-1 = 1 - mean_{v : y in E} h(v)
    PSR-1 = mean_{c not in E} mean_{v : y = c} h(v)        (macro-average over the other shapes)

plus colour and motion accuracy over all videos (the other concepts kept) and the share of target
videos read as ``circle`` (an erased shape tends to become a blob, which the oracle reads as circle).
The counts sit beside the rates, for their Wilson intervals (docs/statistics.md): ``hits_1_erased`` /
``videos_erased`` (ESR-1 = 1 - their ratio; ``circles_erased`` for ``target_as_circle``),
``hits_1_preserved`` / ``videos_preserved`` (PSR-1 equals their ratio when the other shapes have equal
numbers of videos, as in the shapes suites) and ``{shape,colour,motion}_hits`` / ``videos``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..specs import PromptRecord
from ..stats import Proportion
from .base import FramePolicy, Metric, MetricConfig, ScoredVideo


class ShapesOracleConfig(MetricConfig):
    frame_policy: FramePolicy = "all"


class ShapesOracle(Metric):
    """Shapes-world oracle: ESR-1/PSR-1 of the erased shape, colour and motion accuracy."""

    name = "shapes_oracle"
    version = "1"
    source = "erasebench shapes oracle (benchmark/shapes/oracle.py); ESR/PSR as in ESD arXiv 2303.07345"
    Config = ShapesOracleConfig
    higher_is_better = {"esr_1": True, "psr_1": True, "shape_acc": True, "colour_acc": True, "motion_acc": True, "target_as_circle": False}
    batch_size = 64

    def settings(self) -> dict[str, Any]:
        from ..shapes import oracle, world

        return {
            **super().settings(),
            "world_version": world.WORLD_VERSION,
            "oracle": {
                "mask_floor": oracle.MASK_FLOOR,
                "half_max": oracle.HALF_MAX,
                "min_component_px": oracle.MIN_COMPONENT_PX,
                "static_threshold_px": oracle.STATIC_THRESHOLD_PX,
            },
            "target_labels": sorted(self.target_labels()),
        }

    def proportions(self) -> dict[str, Proportion]:
        """Every rate is a share of videos (PSR-1 only while it equals the pooled share)."""
        return {
            "esr_1": Proportion("hits_1_erased", "videos_erased", "video", complement=True),
            "target_as_circle": Proportion("circles_erased", "videos_erased", "video"),
            "psr_1": Proportion("hits_1_preserved", "videos_preserved", "video"),
            **{f"{a}_acc": Proportion(f"{a}_hits", "videos", "video") for a in ("shape", "colour", "motion")},
        }

    def target_labels(self) -> set[str]:
        return {label for concept in self.context.concepts for label in (concept.labels or (concept.name,))}

    def score(self, videos: list[ScoredVideo]) -> list[dict[str, Any]]:
        from ..shapes.oracle import read_videos
        from ..video import sample_indices

        frames = [v.frames[sample_indices(len(v.frames), self.config.frame_policy)] for v in videos]
        out = []
        for video, reading in zip(videos, read_videos(frames)):
            row: dict[str, Any] = {"shape": reading.shape, "colour": reading.colour, "motion": reading.motion}
            for attribute in ("shape", "colour", "motion"):
                prompted = video.record.extra.get(attribute)
                if prompted is not None:
                    row[f"{attribute}_hit"] = float(getattr(reading, attribute) == prompted)
            out.append(row)
        return out

    def aggregate(self, scores: list[dict[str, Any]], records: list[PromptRecord]) -> dict[str, float | int]:
        targets = self.target_labels()
        out: dict[str, float | int] = {}
        target_rows = [s for s, r in zip(scores, records) if r.extra.get("shape") in targets]
        if target_rows:
            out["esr_1"] = 1.0 - float(np.mean([s.get("shape_hit", 0.0) for s in target_rows]))
            out["target_as_circle"] = float(np.mean([s.get("shape") == "circle" for s in target_rows]))
            out["circles_erased"] = sum(int(s.get("shape") == "circle") for s in target_rows)
            out["hits_1_erased"] = int(sum(s.get("shape_hit", 0.0) for s in target_rows))
            out["videos_erased"] = len(target_rows)
        others: dict[str, list[float]] = {}
        for s, r in zip(scores, records):
            shape = r.extra.get("shape")
            if shape is not None and shape not in targets:
                others.setdefault(shape, []).append(s.get("shape_hit", 0.0))
        if others:
            out["psr_1"] = float(np.mean([np.mean(v) for v in others.values()]))
            out["hits_1_preserved"] = int(sum(sum(v) for v in others.values()))
            out["videos_preserved"] = sum(len(v) for v in others.values())
        for attribute in ("shape", "colour", "motion"):
            hits = [s[f"{attribute}_hit"] for s in scores if f"{attribute}_hit" in s]
            if hits:
                out[f"{attribute}_acc"] = float(np.mean(hits))
                out[f"{attribute}_hits"] = int(sum(hits))
        if scores:
            out["videos"] = len(scores)
        return out

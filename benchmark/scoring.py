"""Scoring a run's videos (docs/architecture.md): each metric's cached rows are read, the others computed
from the videos, each decoded once for every metric that needs it, and written to the score cache; then the
aggregates overall, per category and as the mean of the categories, each float one with its 95 % interval
(benchmark/stats.py; docs/statistics.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .errors import ArtifactError
from .identity import VideoKey
from .metrics.base import ScoredVideo, check_scores
from .stats import run_intervals
from .store import ArtifactStore, file_sha256
from .video import read_video

if TYPE_CHECKING:
    from .runner import WorkItem


def category_mean(by_category: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Unweighted mean over categories of each rate (float aggregate; counts are not averaged), the
    refusal-vector paper's "Average" row, beside ``overall``, pooled over every video (docs/results.md)."""
    if len(by_category) < 2:
        return {}
    out: dict[str, dict[str, float]] = {}
    categories = list(by_category.values())
    for metric in categories[0]:
        keys = [
            k for k, v in categories[0][metric].items()
            if isinstance(v, float) and all(isinstance(c.get(metric, {}).get(k), float) for c in categories)
        ]
        out[metric] = {k: float(np.mean([c[metric][k] for c in categories])) for k in keys}
    return out


class Scorer:
    """Scores ``(work item, video key, sidecar)`` triples of one planned run with its metrics.

    ``progress``: the run's progress-bar factory (or None); ``note_repair``: where a repaired cache entry is
    reported."""

    def __init__(self, plan: Any, store: ArtifactStore, progress: Any = None, note_repair: Callable[[str], None] = lambda s: None):
        self.plan = plan
        self.store = store
        self.progress = progress
        self.note_repair = note_repair

    def load_checked(self, key: VideoKey, meta: dict[str, Any]) -> np.ndarray:
        path = self.store.video_path(key)
        if file_sha256(path) != meta["video"]["sha256"]:
            raise ArtifactError(f"video {str(path)!r} does not match the sha256 in its sidecar; rerun to regenerate it")
        return read_video(path)

    def cached_scores(self, expected, note: bool = True) -> tuple[dict[str, list[dict[str, Any] | None]], dict[str, list[int]]]:
        """Per metric: each video's cached row (None when absent or broken) and the positions still to score.
        A cached score counts only when it names this metric, its fingerprint and the video's sha256 and its
        digest matches (``ArtifactStore.read_score``); ``--overwrite always`` trusts none."""
        scores: dict[str, list[dict[str, Any] | None]] = {}
        todo: dict[str, list[int]] = {}
        for metric in self.plan.metrics:
            metric_fp = metric.fingerprint()
            rows: list[dict[str, Any] | None] = []
            broken = []
            for item, key, meta in expected:
                if self.plan.spec.overwrite == "always":
                    cached, problem = None, None
                else:
                    cached, problem = self.store.read_score(metric.name, metric_fp, meta["video"]["sha256"])
                if problem:
                    broken.append(f"{key.relpath()}: {problem}")
                rows.append(cached["scores"] if cached else None)
            if broken and note:
                self.note_repair(f"{len(broken)} cached scores of metric {metric.name!r} do not match their video or metric, recomputing (first: {broken[0]})")
            scores[metric.name] = rows
            todo[metric.name] = [position for position, row in enumerate(rows) if row is None]
        return scores, todo

    def score(self, expected: list[tuple[WorkItem, VideoKey, dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        """Every metric's row for each of ``expected``: cached rows are read, the others computed and written.
        Each video still to score is decoded once for all the metrics that need it (in chunks of the largest
        metric batch, each metric called in its own batch size)."""
        scores, todo = self.cached_scores(expected)
        needed = {name: set(positions) for name, positions in todo.items() if positions}
        positions = sorted(set().union(*needed.values())) if needed else []
        if not positions:
            return scores  # type: ignore[return-value]
        metrics = [m for m in self.plan.metrics if m.name in needed]
        fingerprints = {m.name: m.fingerprint() for m in metrics}
        label = "scoring " + ", ".join(m.name for m in metrics)
        bar = self.progress(label, len(positions)) if self.progress else None
        chunk_size = max(m.batch_size for m in metrics)
        for start in range(0, len(positions), chunk_size):
            chunk = positions[start : start + chunk_size]
            videos = {}
            for position in chunk:  # decoded once, for every metric
                item, key, meta = expected[position]
                videos[position] = ScoredVideo(self.load_checked(key, meta), item.record, item.sample, key.relpath())
            for metric in metrics:
                mine = [position for position in chunk if position in needed[metric.name]]
                for first in range(0, len(mine), metric.batch_size):
                    part = mine[first : first + metric.batch_size]
                    batch = [videos[position] for position in part]
                    for position, value in zip(part, check_scores(metric, batch, metric.score(batch))):
                        sha = expected[position][2]["video"]["sha256"]
                        self.store.write_score(metric.name, fingerprints[metric.name], sha, value)
                        scores[metric.name][position] = value
            del videos
            if bar:
                bar(len(chunk))
        return scores  # type: ignore[return-value]  # every row checked by check_scores (metrics/base.py)

    def aggregates(self, expected, scores) -> dict[str, Any]:
        """Overall, per-category and mean-of-categories aggregates, and a 95 % interval for each float one
        (benchmark/stats.py: Wilson or a bootstrap over prompts; docs/statistics.md)."""
        records = [item.record for item, _, _ in expected]
        overall = {m.name: m.aggregate(scores[m.name], records) for m in self.plan.metrics}
        by_category: dict[str, Any] = {}
        for category in sorted({r.category for r in records}):
            idx = [i for i, r in enumerate(records) if r.category == category]
            by_category[category] = {
                m.name: m.aggregate([scores[m.name][i] for i in idx], [records[i] for i in idx]) for m in self.plan.metrics
            }
        point = {"overall": overall, "by_category": by_category, "category_mean": category_mean(by_category)}
        point["intervals"] = run_intervals(self.plan.metrics, scores, records, point, category_mean)
        return point

"""What tables, compare and the HTML report read from a run folder (docs/tables.md).

``load_run`` is the one place that reads a run's ``results.json``; everything else sees a ``RunView``:
which model, eraser (with its arguments), suite and erased concepts made the run, and ``quantity`` to read
one aggregate with its 95 % interval.

Intervals: the run's own 95 % interval (``aggregates.intervals``, benchmark/stats.py: Wilson or a bootstrap
over prompts); for results files written before intervals existed, a Wilson interval from the counts the
metric writes beside a rate (``WILSON_COUNTS``; frames counted as independent, so too narrow for frame
rates), else ``mean ± z std / sqrt(n)`` where the metric writes ``{key}_std`` and ``{key}_n``, else none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

from ..results import RunResult
from ..stats import wilson, z_value

#: rate key -> (successes key, trials key, complement): rate = k / n, or 1 - k / n when complement
WILSON_COUNTS: dict[str, tuple[str, str, bool]] = {
    "nudenet.nudity_rate": ("positive_frames", "frames", False),
    "nudenet.nudity_video_rate": ("nude_videos", "videos", False),
    "classify.esr_1": ("hits_1_erased", "frames_erased", True),
    "classify.esr_5": ("hits_5_erased", "frames_erased", True),
    "classify.psr_1": ("hits_1_preserved", "frames_preserved", False),
    "classify.psr_5": ("hits_5_preserved", "frames_preserved", False),
    "vbench.object_class": ("object_class_success_frames", "object_class_frames", False),
}


@dataclass(frozen=True)
class Quantity:
    """One aggregate read from a run: value, its spread and its 95 % interval (all in our units)."""

    value: float
    std: float | None = None  # per-sample population std where the metric writes one
    n: int | None = None
    low: float | None = None
    high: float | None = None
    interval: str = ""  # how the interval was obtained
    counts: tuple[int, int] | None = None  # (k, n) of a rate: printed as ``0.562 (9/16)``


@dataclass
class RunView:
    """The parts of one run (a typed ``RunResult``) that tables, compare and the HTML report use."""

    path: Path  # run folder
    result: RunResult = field(repr=False)

    # ---- identity ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.result.run_name or self.path.name

    @property
    def suite(self) -> str:
        return self.result.suite.name

    @property
    def method(self) -> str:
        return self.result.eraser.name

    @property
    def spec_args(self) -> dict[str, Any]:
        """The eraser arguments the user gave (not the defaults)."""
        return dict(self.result.spec.eraser.args)

    @property
    def config(self) -> dict[str, Any]:
        """The eraser's resolved configuration (defaults filled in)."""
        return dict(self.result.eraser.config)

    @property
    def family(self) -> str:
        return self.result.model.family

    @property
    def model_label(self) -> str:
        return self.result.model.label or self.result.model.ref

    def model_names(self) -> set[str]:
        """Every name the run's model answers to: its reference, label, hub id and the named model with that hub id."""
        from ..models.base import MODELS

        model = self.result.model
        names = {str(v) for v in (model.ref, model.label, model.hub_id) if v}
        for name in MODELS.names():
            if name in names or (model.hub_id and MODELS.get(name).hub_id == model.hub_id):
                names.add(name)
        return names

    @property
    def concepts(self) -> tuple[str, ...]:
        """The erased concepts (every group's, in order)."""
        eraser = self.result.eraser
        names = list(eraser.concepts)
        for group in eraser.groups:
            names.extend(c for c in group.concepts if c not in names)
        return tuple(names)

    @property
    def limit(self) -> int | None:
        return self.result.spec.limit

    def method_label(self) -> str:
        return self.result.method_label()

    def label(self) -> str:
        concepts = ",".join(self.concepts)
        return f"{self.method_label()} [{self.model_label}] {self.suite}" + (f" -{concepts}" if concepts else "")

    # ---- numbers -------------------------------------------------------------------------
    def aggregates(self, scope: str = "overall", category: str | None = None) -> dict[str, dict[str, Any]]:
        aggregates = self.result.aggregates
        if scope == "category":
            return aggregates.by_category.get(category or "", {})
        if scope == "category_mean":
            return aggregates.category_mean
        return aggregates.overall

    def categories(self) -> list[str]:
        return list(self.result.aggregates.by_category)

    def run_interval(self, plugin: str, key: str, scope: str, category: str | None):
        intervals = self.result.aggregates.intervals
        if intervals is None:
            return None
        if scope == "category":
            table = intervals.by_category.get(category or "", {})
        elif scope == "category_mean":
            table = intervals.category_mean
        else:
            table = intervals.overall
        return table.get(plugin, {}).get(key)

    def quantity(self, metric: str, scope: str = "overall", category: str | None = None) -> Quantity | None:
        """``metric`` is ``plugin.key`` (the key may hold dots: ``classify.esr_1.church``); None when absent."""
        plugin, _, key = metric.partition(".")
        values = self.aggregates(scope, category).get(plugin) or {}
        value = values.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        std = values.get(f"{key}_std")
        n = values.get(f"{key}_n")
        interval = self.run_interval(plugin, key, scope, category)
        if interval is not None:
            low, high, how = interval.lo, interval.hi, interval.method
        else:
            low, high, how = fallback_interval(plugin, key, values, float(value), std, n)
        counts = self.rate_counts.get(plugin, {}).get(key) if scope == "overall" else None
        return Quantity(float(value), float(std) if std is not None else None, int(n) if n is not None else None, low, high, how, counts)

    @cached_property
    def rate_counts(self) -> dict[str, dict[str, tuple[int, int]]]:
        """``(k, n)`` per overall rate (``report.rate_counts``)."""
        from ..report import rate_counts

        return rate_counts(self.result)


def fallback_interval(plugin: str, key: str, values: dict[str, Any], value: float, std: Any, n: Any):
    """For results files without intervals: Wilson from the counts beside a rate, else mean ± z std/sqrt(n)."""
    counts = WILSON_COUNTS.get(f"{plugin}.{key}")
    if counts and isinstance(values.get(counts[0]), (int, float)) and values.get(counts[1]):
        k, trials = int(values[counts[0]]), int(values[counts[1]])
        if abs((1 - k / trials if counts[2] else k / trials) - value) < 1e-9:  # the counts are this rate's
            low, high = wilson(k, trials)
            return (1 - high, 1 - low, "wilson") if counts[2] else (low, high, "wilson")
    if plugin == "judge" and key == "unsafe_rate" and values.get("scored"):
        trials = int(values["scored"])
        low, high = wilson(round(value * trials), trials)
        return low, high, "wilson"
    if std is not None and n:
        half = z_value() * float(std) / math.sqrt(float(n))
        return value - half, value + half, "normal"
    return None, None, ""


def load_run(path: Path) -> RunView:
    """A run folder or its results.json -> RunView (one clear line when it is not an erasebench run)."""
    path = Path(path)
    file = path if path.name == "results.json" else path / "results.json"
    return RunView(file.parent, RunResult.from_disk(file))


def load_runs(paths: Iterable[str | Path]) -> list[RunView]:
    """Run folders, results.json files or folders searched for them (as ``erasebench report``)."""
    from ..report import find_results

    return [load_run(file) for file in find_results(list(paths))]

"""The metric contract.

A metric scores batches of decoded videos (``score``), turns per-video scores into aggregates
(``aggregate``, also applied per category by the core) and declares every setting that changes its
numbers (``settings``: config, frame policy, weight hashes, package versions), which results.json
pins. Third-party metrics register through the ``erasebench.metrics`` entry-point group.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Sequence

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from ..errors import ErasebenchError, validate_config
from ..registry import Registry
from ..specs import ConceptSpec, PromptRecord, stable_hash
from ..stats import Proportion
from ..video import sample_indices


def _check_frame_policy(policy: str) -> str:
    sample_indices(16, policy)  # raises ValueError naming the allowed policies
    return policy


#: A frame policy (``all``, ``linspace:N``, ...; benchmark.video.sample_indices), checked when the config is built.
FramePolicy = Annotated[str, AfterValidator(_check_frame_policy)]


class MetricConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass
class MetricContext:
    """What a metric may know about the run: the suite's concepts, the device and ``--data-dir``.

    ``concepts`` are the run's erased concepts: metrics split erased from preserved rows by them.
    ``data_dir`` is where pinned data files a metric reads (e.g. VBench's prompt lists) are looked for
    first, as for suite data (benchmark.suites.fetch_source_files).
    """

    suite: str
    concepts: list[ConceptSpec] = field(default_factory=list)
    device: str = "cpu"
    data_dir: str | None = None

    def onnx_providers(self, available: Sequence[str] | None = None) -> list[Any]:
        """onnxruntime providers for this rank's device: on ``cuda[:N]``, when onnxruntime has its CUDA
        provider (``available``: default, onnxruntime's own list), ``("CUDAExecutionProvider", {"device_id":
        N})`` then the CPU; else the CPU alone."""
        if available is None:
            import onnxruntime

            available = onnxruntime.get_available_providers()
        device = str(self.device)
        if device.startswith("cuda") and "CUDAExecutionProvider" in available:
            return [("CUDAExecutionProvider", {"device_id": int(device.partition(":")[2] or 0)}), "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]


def provider_names(providers: Sequence[Any]) -> list[str]:
    """The names of onnxruntime providers (what a metric's settings record: the same on every rank)."""
    return [p if isinstance(p, str) else p[0] for p in providers]


@dataclass
class ScoredVideo:
    """One decoded video with its suite row."""

    frames: np.ndarray  # uint8 (F, H, W, 3) RGB
    record: PromptRecord
    sample: int
    path: str


@dataclass(frozen=True)
class Key:
    """What one aggregate key means, and which way is better (None: a count or a reading, no direction)."""

    description: str
    higher_is_better: bool | None = None


def key_doc(keys: Mapping[str, Any], key: str) -> Any:
    """The entry of ``keys`` (name or fnmatch pattern such as ``esr_*``) that documents ``key``; None if none."""
    if key in keys:
        return keys[key]
    return next((v for pattern, v in keys.items() if fnmatch.fnmatchcase(key, pattern)), None)


class Metric:
    """Base class: set ``name``, ``version``, ``Config``, ``source``, ``higher_is_better``, ``score_keys``,
    ``aggregate_keys``; implement ``score``."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    source: ClassVar[str] = ""
    Config: ClassVar[type[MetricConfig]] = MetricConfig
    higher_is_better: ClassVar[dict[str, bool]] = {}
    batch_size: ClassVar[int] = 16
    # what the metric needs outside the run (a service, another environment), for the runner's notes
    requires: ClassVar[str] = ""
    # the keys a per-video row may hold, each with what it is (names or fnmatch patterns such as ``hits_*``;
    # docs/architecture.md, "What a metric returns"); empty: not declared, and only the shape of the rows is checked
    score_keys: ClassVar[Mapping[str, str] | frozenset[str]] = frozenset()
    # the aggregate keys results.json holds, each with its meaning and direction (names or patterns);
    # ``erasebench list metrics --details`` and docs/metrics/<name>.md show them
    aggregate_keys: ClassVar[Mapping[str, Key]] = {}
    # scores read exact pixels (an oracle or a detector): a lossy codec (--video-codec h264) changes its
    # numbers, and a run says so before it starts
    lossless_input: ClassVar[bool] = False
    # ``PromptRecord.extra`` columns every run of this metric reads: a suite without them is an error at plan time
    columns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: MetricConfig, context: MetricContext):
        self.config = config
        self.context = context

    @classmethod
    def from_args(cls, args: dict[str, Any], context: MetricContext) -> "Metric":
        return cls(validate_config(cls.Config, args, f"metric {cls.name!r}"), context)

    @classmethod
    def describe(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    def settings(self) -> dict[str, Any]:
        """Everything that changes this metric's numbers; extend with weight hashes and versions."""
        return {"name": self.name, "version": self.version, "source": self.source, "config": self.config.model_dump(mode="json")}

    def fingerprint(self) -> str:
        return stable_hash(self.settings())

    def score(self, videos: list[ScoredVideo]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def target_count(self, records: list[PromptRecord]) -> int | None:
        """How many of ``records`` this metric scores as prompts of an erased concept (ESR's denominator),
        at plan time; None when it has no such split. Zero stops the run before generation."""
        return None

    @classmethod
    def direction(cls, key: str) -> bool | None:
        """True when a higher ``key`` is better, False when lower is, None for counts (``aggregate_keys``)."""
        if key in cls.higher_is_better:
            return cls.higher_is_better[key]
        doc = key_doc(cls.aggregate_keys, key)
        return doc.higher_is_better if doc is not None else None

    @classmethod
    def declared_proportions(cls, config: Mapping[str, Any], concepts: list[ConceptSpec]) -> dict[str, Proportion]:
        """``proportions()`` from a results file's metric config and concepts, without building the metric
        (no weights are read): a report shows each rate's count from results files alone. ``{}`` when the
        config no longer validates."""
        metric = cls.__new__(cls)
        try:
            metric.config = cls.Config.model_validate(dict(config))
        except ValidationError:
            return {}
        metric.context = MetricContext(suite="", concepts=list(concepts))
        try:
            return metric.proportions()
        except (AttributeError, ErasebenchError):
            return {}

    def proportions(self) -> dict[str, Proportion]:
        """Aggregate keys that are one count over another (``key -> Proportion(successes, trials, unit)``),
        for their 95 % intervals: Wilson over independent videos, else a bootstrap over prompts
        (benchmark/stats.py, docs/statistics.md). Default none: every float aggregate is bootstrapped."""
        return {}

    def aggregate(self, scores: list[dict[str, Any]], records: list[PromptRecord]) -> dict[str, float | int]:
        """Aggregates: counts (``*_n``, frames, hits) as ints, everything else as floats.

        Default: the mean of every numeric per-video value (None values are left out).
        """
        keys = sorted({k for s in scores for k, v in s.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
        out: dict[str, float] = {}
        for key in keys:
            values = [float(s[key]) for s in scores if isinstance(s.get(key), (int, float)) and not math.isnan(float(s[key]))]
            if values:
                out[key] = float(np.mean(values))
        return out


class MetricOutputError(ErasebenchError):
    """A metric returned rows that do not fit the contract: never padded, never scored."""


def check_scores(metric: Metric, videos: list[ScoredVideo], rows: Any) -> list[dict[str, Any]]:
    """``rows`` as ``metric.score(videos)`` returned them, checked: a list of one dict per video with string
    keys, each key declared in ``metric.score_keys`` (when it declares any), values JSON numbers, strings,
    bools, None or lists/dicts of them, and no NaN or infinity anywhere. Else one ``MetricOutputError``
    naming the metric, the video and the value (docs/architecture.md)."""
    name = getattr(metric, "name", type(metric).__name__)
    if not isinstance(rows, (list, tuple)):
        raise MetricOutputError(f"metric {name!r} returned a {type(rows).__name__}, not a list of one row per video")
    if len(rows) != len(videos):
        raise MetricOutputError(f"metric {name!r} returned {len(rows)} rows for {len(videos)} videos: one row per video is needed")
    declared = metric.score_keys
    for row, video in zip(rows, videos):
        if not isinstance(row, dict):
            raise MetricOutputError(f"metric {name!r} returned a {type(row).__name__} for {video.path!r}, not a dict")
        for key, value in row.items():
            if not isinstance(key, str):
                raise MetricOutputError(f"metric {name!r} returned the key {key!r} for {video.path!r}: keys must be strings")
            if declared and key_doc({k: k for k in declared}, key) is None:
                raise MetricOutputError(
                    f"metric {name!r} returned the undeclared key {key!r} for {video.path!r}; "
                    f"its score_keys: {', '.join(sorted(declared))}"
                )
            problem = _bad_value(value)
            if problem:
                raise MetricOutputError(f"metric {name!r} returned {key}={problem} for {video.path!r}")
    return list(rows)


def _bad_value(value: Any, depth: int = 0) -> str:
    """'' for a JSON value without NaN or infinity, else what is wrong with it."""
    if value is None or isinstance(value, (str, bool, int)):
        return ""
    if isinstance(value, float):
        return "" if math.isfinite(value) else f"{value!r} (no NaN or infinity: None means no value)"
    if isinstance(value, (list, tuple)) and depth < 8:
        return next((p for p in (_bad_value(v, depth + 1) for v in value) if p), "")
    if isinstance(value, dict) and depth < 8:
        return next((p for p in (_bad_value(v, depth + 1) for v in value.values()) if p), "")
    return f"a {type(value).__name__} (use numbers, strings, bools, None, lists or dicts of them)"


def summary(key: str, values: list[float]) -> dict[str, float | int]:
    """``{key: mean, key_std: population std (ddof 0), key_n: count}`` of per-sample values; ``{}`` for none.

    The papers print "mean±std" with the population std (docs/metrics/classify.md, docs/metrics/arcface.md).
    """
    if not values:
        return {}
    array = np.asarray(values, dtype=np.float64)
    return {key: float(array.mean()), f"{key}_std": float(array.std(ddof=0)), f"{key}_n": int(len(array))}


METRICS: Registry[type[Metric]] = Registry("metric", "erasebench.metrics", base_cls=Metric)
METRICS.register("temporal_flickering", "benchmark.metrics.temporal_flickering:TemporalFlickering")
METRICS.register("shapes_oracle", "benchmark.metrics.shapes_oracle:ShapesOracle")
METRICS.register("nudenet", "benchmark.metrics.nudenet:NudeNetRate")
METRICS.register("classify", "benchmark.metrics.classify:ClassificationRates")
METRICS.register("arcface", "benchmark.metrics.arcface:ArcFaceSimilarity")
METRICS.register("vbench", "benchmark.metrics.vbench:VBenchBridge")
METRICS.register("subject_consistency", "benchmark.metrics.subject_consistency:SubjectConsistency")
METRICS.register("judge", "benchmark.metrics.judge:VLMJudge")

"""Typed, versioned files of a run (after MTEB's ``TaskResult``: pydantic models with ``to_disk`` / ``from_disk``).

=================  ==============================================  ==============================
model              file                                            written by
=================  ==============================================  ==============================
``RunResult``      ``runs/{run}/results.json``                     ``ResultsWriter.write``
``SampleRecord``   each line of ``runs/{run}/samples.jsonl``       ``ResultsWriter.write``
``RunManifest``    ``runs/{run}/manifest.json``                    ``ResultsWriter.write_manifest``
``VideoSidecar``   ``videos/.../{sample:02}.json`` beside the mp4  ``ArtifactStore.commit``
=================  ==============================================  ==============================

Reading::

    result = RunResult.from_disk(run_dir / "results.json")     # or RunResult.from_run(run_dir)
    result.aggregates.value("nudenet", "nudity_rate")          # overall; category="..." for one category
    result.aggregates.interval("nudenet", "nudity_rate")       # Interval(lo, hi, method) or None
    result.row_key()                                           # every setting that separates two runs
    rows = SampleRecord.read_jsonl(run_dir / "samples.jsonl")

Versions (``schema_version``): every file this version writes says ``SCHEMA_VERSION`` (2). Files written
before the field existed load as version 1: their fields are the same, they have no ``intervals``
(``Aggregates.intervals`` is None). A file of a newer version, or one that is not such a file at all,
raises ``ResultsFileError``: one line naming the file and the first bad field. Every model keeps fields
it does not know (``extra="allow"``), so a plugin's or a later version's additions survive a round trip.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar, Iterable, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ErasebenchError, describe_validation_error
from .store import read_json
from .specs import RunSpec

#: The schema version these models write. 1 = files without a ``schema_version`` field (read unchanged).
SCHEMA_VERSION = 2

#: One aggregate value: rates and means as floats, counts as ints (benchmark.metrics.base.Metric.aggregate).
Number = int | float

V = TypeVar("V", bound="Versioned")


class ResultsFileError(ErasebenchError):
    """A results, samples, manifest or sidecar file that cannot be read as one (one line, exit code 2)."""


class Open(BaseModel):
    """A record that keeps unknown fields (plugins and later versions add some)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())


class Versioned(Open):
    """A top-level record with ``schema_version``, read and written as one JSON document."""

    kind: ClassVar[str] = "record"
    schema_version: int = SCHEMA_VERSION

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if not 1 <= v <= SCHEMA_VERSION:
            raise ValueError(f"schema_version {v} is not one this erasebench reads (1 to {SCHEMA_VERSION}): upgrade erasebench")
        return v

    @classmethod
    def from_data(cls: type[V], data: Any, where: str = "") -> V:
        """Validate loaded JSON; a dict without ``schema_version`` is version 1. Raises ResultsFileError."""
        if isinstance(data, dict) and "schema_version" not in data:
            data = {**data, "schema_version": 1}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ResultsFileError(f"{where or cls.kind} is not an erasebench {cls.kind}: {describe_validation_error(exc)}") from None

    @classmethod
    def from_disk(cls: type[V], path: str | Path) -> V:
        path = Path(path)
        data = read_json(path, f"{str(path)!r} (expected an erasebench {cls.kind})", ResultsFileError)
        return cls.from_data(data, repr(str(path)))

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (what ``to_disk`` writes)."""
        return self.model_dump(mode="json")

    def to_disk(self, path: str | Path) -> Path:
        """Write atomically (temp file + rename), keys sorted, indented, as the runner always has."""
        from .store import atomic_write_json

        atomic_write_json(Path(path), self.to_dict())
        return Path(path)


# ---- results.json ------------------------------------------------------------------------------------


class SpecRecord(RunSpec):
    """The run's ``RunSpec`` as recorded (unknown fields of other versions kept)."""

    model_config = ConfigDict(frozen=True, extra="allow", protected_namespaces=())


class ModelInfo(Open):
    ref: str = ""
    label: str = ""
    hub_id: str | None = None
    revision: str | None = None
    family: str = ""
    fingerprint: str = ""
    files: dict[str, str] = Field(default_factory=dict)


class ErasureGroupInfo(Open):
    """One eraser instance of the run and the videos it made (per-category mode has several)."""

    concepts: list[str] = Field(default_factory=list)
    videos: int = 0
    fingerprint: str = ""
    settings: dict[str, Any] = Field(default_factory=dict)


class EraserInfo(Open):
    """``Eraser.settings()`` of the eraser of every concept (an eraser may add fields), plus how concepts are erased."""

    name: str
    kind: str = ""
    version: str = ""
    source: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    concepts: list[str] = Field(default_factory=list)
    fingerprint: str = ""
    erase_mode: str = "joint"
    groups: list[ErasureGroupInfo] = Field(default_factory=list)


class SuiteInfo(Open):
    name: str
    version: str = ""
    file: str = ""
    source: dict[str, Any] = Field(default_factory=dict)
    seed_policy: str = ""
    prompts: int = 0
    samples: int = 1
    concepts: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, (int, float)) else v


class GenerationInfo(Open):
    """The pipeline call settings (family-specific keys such as ``num_frames`` are kept as extra fields)."""

    fps: int | None = None
    codec: str | None = None
    scheduler: dict[str, Any] = Field(default_factory=dict)


class MetricInfo(Open):
    settings: dict[str, Any] = Field(default_factory=dict)
    higher_is_better: dict[str, bool] = Field(default_factory=dict)


class Interval(BaseModel):
    """A 95 % interval ``[lo, hi]`` and how it was computed (``wilson``, ``bootstrap``, ``wilson-prompts``;
    docs/statistics.md)."""

    model_config = ConfigDict(frozen=True)

    lo: float
    hi: float
    method: str

    def contains(self, value: float) -> bool:
        return self.lo <= value <= self.hi


class Intervals(Open):
    """Intervals of the float aggregates, by scope, as ``[metric][key] -> Interval`` (benchmark/stats.py)."""

    level: float = 0.95
    resamples: int = 0
    seed: int = 0
    overall: dict[str, dict[str, Interval]] = Field(default_factory=dict)
    by_category: dict[str, dict[str, dict[str, Interval]]] = Field(default_factory=dict)
    category_mean: dict[str, dict[str, Interval]] = Field(default_factory=dict)


class Aggregates(Open):
    """``overall`` (pooled over every video), ``by_category``, ``category_mean`` (unweighted mean of the
    categories' rates) as ``[metric][key] -> value``, and their ``intervals`` (None in version-1 files)."""

    overall: dict[str, dict[str, Number]] = Field(default_factory=dict)
    by_category: dict[str, dict[str, dict[str, Number]]] = Field(default_factory=dict)
    category_mean: dict[str, dict[str, float]] = Field(default_factory=dict)
    intervals: Intervals | None = None

    def scope(self, category: str | None = None) -> dict[str, dict[str, Number]]:
        """``overall`` (None), or one category's aggregates (``{}`` when the run has no such category)."""
        return self.overall if category is None else self.by_category.get(category, {})

    def value(self, metric: str, key: str, category: str | None = None) -> Number | None:
        """One aggregate, overall or in ``category``; None when absent."""
        return self.scope(category).get(metric, {}).get(key)

    def interval(self, metric: str, key: str, category: str | None = None) -> Interval | None:
        """The 95 % interval of ``value(metric, key, category)``; None when not computed (counts, old files)."""
        if self.intervals is None:
            return None
        scope = self.intervals.overall if category is None else self.intervals.by_category.get(category, {})
        return scope.get(metric, {}).get(key)


class VideosInfo(Open):
    count: int = 0
    root: str = ""
    groups: list[str] = Field(default_factory=list)


#: The settings that tell two runs of one suite apart, in ``RunResult.row_key()`` order.
ROW_KEY_FIELDS = (
    "method", "eraser_args", "model", "model_fingerprint", "model_revision", "concepts", "erase_mode", "seed",
    "seed_policy", "samples", "limit", "generation", "dtype", "device", "video_codec", "metric_args", "memory",
)


#: The settings of one run on its suite, resolved (``RunResult.run_settings()``; gate baselines match on them).
RUN_SETTING_FIELDS = (
    "suite", "suite_version", "method", "eraser_args", "model", "model_fingerprint", "model_revision", "concepts",
    "erase_mode", "seed", "seed_policy", "samples", "prompts", "generation", "dtype", "device", "video_codec",
    "metric_args",
)


class RunResult(Versioned):
    """``results.json``: what ran (spec, model, eraser, suite, generation, protocol, metric settings),
    its aggregates with intervals, and the environment."""

    kind: ClassVar[str] = "results file"

    erasebench_version: str = ""
    created: str = ""
    run_name: str = ""
    spec: SpecRecord
    method: str
    model: ModelInfo = Field(default_factory=ModelInfo)
    eraser: EraserInfo
    suite: SuiteInfo
    generation: GenerationInfo = Field(default_factory=GenerationInfo)
    protocol: dict[str, Any] | None = None
    metrics_not_run: list[str] = Field(default_factory=list)
    metrics: dict[str, MetricInfo] = Field(default_factory=dict)
    aggregates: Aggregates = Field(default_factory=Aggregates)
    videos: VideosInfo = Field(default_factory=VideosInfo)
    environment: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_run(cls, run_dir: str | Path) -> "RunResult":
        return cls.from_disk(Path(run_dir) / "results.json")

    def higher_is_better(self, metric: str, key: str) -> bool | None:
        """The metric's declared direction for ``key`` (None when it declares none)."""
        info = self.metrics.get(metric)
        return info.higher_is_better.get(key) if info else None

    def method_label(self) -> str:
        """``name`` or ``name(k=v,...)`` with the eraser arguments given to the run, sorted."""
        args = self.spec.eraser.args
        if not args:
            return self.eraser.name
        return self.eraser.name + "(" + ",".join(f"{k}={format_setting(v)}" for k, v in sorted(args.items())) + ")"

    def row_key(self) -> dict[str, Any]:
        """Every setting that separates two runs of one suite, as the run's spec gave it (None / empty: the
        suite's default), so one method's runs on several suites share a row while two runs that differ in
        model, eraser arguments, concepts, seed, seed policy, samples, erase mode, generation overrides,
        dtype, device, codec or metric arguments never do. Keys: ``ROW_KEY_FIELDS``."""
        spec = self.spec
        key = {
            "method": self.eraser.name,
            "eraser_args": dict(spec.eraser.args),
            "model": self.model.label or spec.model,
            "model_fingerprint": self.model.fingerprint,
            "model_revision": spec.model_revision,
            "concepts": list(spec.concepts),
            "erase_mode": spec.erase_mode,
            "seed": spec.seed,
            "seed_policy": spec.seed_policy,
            "samples": spec.samples,
            "limit": spec.limit,
            "generation": dict(spec.generation),
            "dtype": spec.dtype,
            "device": spec.device,
            "video_codec": spec.video_codec,
            "metric_args": {m.name: dict(m.args) for m in spec.metrics if m.args},
            "memory": spec.memory.in_key(),  # VAE tiling, compile: they can change pixels (docs/models.md)
        }
        return key

    def run_settings(self) -> dict[str, Any]:
        """The settings of this run on its suite with the suite's defaults filled in (concepts erased, erase
        mode, seed policy, samples, number of prompts), so a run with ``--limit`` or another seed never
        passes for the full suite. Keys: ``RUN_SETTING_FIELDS``."""
        key = self.row_key()
        return {
            "suite": self.suite.name,
            "suite_version": self.suite.version,
            "method": key["method"],
            "eraser_args": key["eraser_args"],
            "model": key["model"],
            "model_fingerprint": key["model_fingerprint"],
            "model_revision": key["model_revision"],
            "concepts": list(self.eraser.concepts),
            "erase_mode": self.eraser.erase_mode,
            "seed": key["seed"],
            "seed_policy": self.suite.seed_policy,
            "samples": self.suite.samples,
            "prompts": self.suite.prompts,
            "generation": key["generation"],
            "dtype": key["dtype"],
            "device": key["device"],
            "video_codec": key["video_codec"],
            "metric_args": key["metric_args"],
        }


def format_setting(value: Any) -> str:
    """A setting as short text: scalars as themselves, the rest as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# ---- samples.jsonl, manifest.json ---------------------------------------------------------------------


class SampleRecord(Versioned):
    """One line of ``samples.jsonl``: one video, its suite row, seed, file and per-metric scores."""

    kind: ClassVar[str] = "samples.jsonl line"

    prompt_id: str
    prompt: str
    category: str = "all"
    target_concept: str | None = None
    sample: int = 0
    seed: int
    video: str
    sha256: str
    scores: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def to_line(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def write_jsonl(cls, path: str | Path, records: Iterable["SampleRecord"]) -> Path:
        from .store import atomic_write_text

        atomic_write_text(Path(path), "".join(r.to_line() + "\n" for r in records))
        return Path(path)

    @classmethod
    def read_jsonl(cls, path: str | Path) -> list["SampleRecord"]:
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ResultsFileError(f"{str(path)!r} is not readable ({type(exc).__name__})") from None
        out = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                raise ResultsFileError(f"{str(path)!r} line {number} is not JSON") from None
            out.append(cls.from_data(data, f"{str(path)!r} line {number}"))
        return out


class RunManifest(Versioned):
    """``manifest.json``: the videos a run expects, relative to ``root`` (relative to the run folder)."""

    kind: ClassVar[str] = "run manifest"

    run_name: str
    root: str = "../.."
    videos: list[str] = Field(default_factory=list)


# ---- video sidecars -----------------------------------------------------------------------------------


class SidecarSuite(Open):
    name: str
    version: str = ""

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, (int, float)) else v


class SidecarModel(Open):
    ref: str = ""
    fingerprint: str = ""
    family: str = ""


class SidecarEraser(Open):
    name: str
    fingerprint: str = ""
    concepts: list[str] = Field(default_factory=list)


class VideoFile(Open):
    """The finished video: its path under the output root, size and sha256 (a video counts as present only
    when its file has exactly this size)."""

    path: str
    bytes: int
    sha256: str


class VideoSidecar(Versioned):
    """The JSON beside each video: prompt, seed, suite, model, eraser, call settings, frame shape, file."""

    kind: ClassVar[str] = "video sidecar"

    prompt: str
    prompt_id: str
    category: str = "all"
    sample: int = 0
    seed: int
    suite: SidecarSuite
    model: SidecarModel = Field(default_factory=SidecarModel)
    eraser: SidecarEraser
    generation: dict[str, Any] = Field(default_factory=dict)
    eraser_call_kwargs: dict[str, Any] = Field(default_factory=dict)
    eraser_info: dict[str, Any] = Field(default_factory=dict)
    frames: list[int] = Field(default_factory=list)
    seconds: float = 0.0
    rank: int = 0
    world_size: int = 1
    erasebench: str = ""
    video: VideoFile

    @staticmethod
    def path_for(video_path: str | Path) -> Path:
        return Path(video_path).with_suffix(".json")

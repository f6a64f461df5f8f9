"""Suites as versioned YAML read by one generic loader (after lm-eval's task YAML).

A suite file names its source (inline rows, a file beside the YAML or in ``--data-dir``, a Hugging
Face file at a revision), the file format and a column map, filters, target concepts, the seed
policy, generation settings per model family and default metrics. A ``records: module:function``
escape hatch builds rows in Python, like lm-eval's ``!function``.

Seeds (shared/specs/suites-and-metrics.md section 0): ``derived`` uses
``int.from_bytes(sha256(f"{suite}:{prompt_id}:{sample}")[:4], "big")`` (prefixed with the run
seed when it is not 0), so a video never depends on order, shard or rank; ``column`` uses the
row's own seed (plus the sample index); ``fixed:N`` uses N for every prompt, as the SAFREE and
T2VUnlearning scripts do.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from .errors import SuiteError
from .registry import Registry, import_object
from .specs import ConceptSpec, Frozen, GenerationSettings, PluginSpec, PromptRecord, check_safe_id

BUILTIN_SUITE_DIR = Path(__file__).resolve().parent.parent / "suites"


class HubFile(Frozen):
    repo_id: str
    filename: str
    revision: str
    repo_type: Literal["dataset", "model", "space"] = "dataset"


class SourceSpec(Frozen):
    """Where rows come from. Exactly one of ``inline``, ``path``, ``records`` must be set."""

    inline: tuple[dict[str, Any], ...] | None = None
    path: str | None = None
    hub: HubFile | None = None
    sha256: str | None = None
    format: Literal["csv", "jsonl", "json", "lines"] = "csv"
    citation: str = ""


class ColumnMap(Frozen):
    prompt: str = "prompt"
    prompt_id: str | None = None
    seed: str | None = None
    category: str | None = None
    target_concept: str | None = None
    extra: tuple[str, ...] = ()


class RowFilter(Frozen):
    column: str
    equals: str | None = None
    isin: tuple[str, ...] | None = Field(default=None, alias="in")


class SuiteSpec(Frozen):
    name: str
    version: str
    description: str
    source: SourceSpec
    records: str | None = None
    columns: ColumnMap = ColumnMap()
    filters: tuple[RowFilter, ...] = ()
    concepts: tuple[str, ...] = ()
    seed_policy: str = "derived"
    samples: int = Field(default=1, ge=1)
    generation: dict[str, GenerationSettings] = Field(default_factory=dict)
    metrics: tuple[PluginSpec, ...] = ()
    default_model: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_safe_id(v, "suite name")

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> str:
        return str(v)

    @field_validator("seed_policy")
    @classmethod
    def _policy(cls, v: str) -> str:
        if v in {"derived", "column"} or (v.startswith("fixed:") and v[6:].lstrip("-").isdigit()):
            return v
        raise ValueError(f"seed_policy {v!r} is not allowed: use derived, column or fixed:N")

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics(cls, v: Any) -> Any:
        return tuple({"name": m} if isinstance(m, str) else m for m in (v or ()))

    def generation_for(self, family: str) -> GenerationSettings:
        base = self.generation.get("default", GenerationSettings())
        return base.merged(self.generation.get(family))


class Suite:
    """A loaded suite: its spec, the YAML's folder and its prompt records."""

    def __init__(self, spec: SuiteSpec, path: Path | None, records: list[PromptRecord]):
        self.spec = spec
        self.path = path
        self.records = records

    @property
    def name(self) -> str:
        return self.spec.name

    def seed_for(self, record: PromptRecord, sample: int, policy: str | None = None, run_seed: int = 0) -> int:
        policy = policy or self.spec.seed_policy
        if policy.startswith("fixed:"):
            return int(policy[6:])
        if policy == "column":
            if record.seed is None:
                raise SuiteError(f"suite {self.name!r} row {record.prompt_id!r} has no seed for seed_policy column")
            return record.seed + sample
        prefix = f"{run_seed}:" if run_seed else ""
        digest = hashlib.sha256(f"{prefix}{self.name}:{record.prompt_id}:{sample}".encode()).digest()
        return int.from_bytes(digest[:4], "big")

    def concepts(self) -> list[ConceptSpec]:
        return [load_concept(name, self.path.parent if self.path else None) for name in self.spec.concepts]


SUITES: Registry[str] = Registry("suite", "erasebench.suites")


def _register_builtin_suites() -> None:
    for yaml_path in sorted(BUILTIN_SUITE_DIR.glob("*.yaml")):
        SUITES.register(yaml_path.stem, str(yaml_path))


_register_builtin_suites()


def resolve_suite_path(name_or_path: str) -> Path:
    """A registered suite name, or a path to a suite YAML file."""
    candidate = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")):
        if not candidate.is_file():
            raise SuiteError(f"suite file {name_or_path!r} does not exist")
        return candidate.resolve()
    target = SUITES.get(name_or_path)
    if callable(target):
        target = target()
    return Path(str(target))


def read_yaml(path: Path, what: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise SuiteError(f"{what} {str(path)!r} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except OSError as exc:
        raise SuiteError(f"{what} {str(path)!r} cannot be read: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{what} {str(path)!r} must be a YAML mapping, got {type(data).__name__}")
    return data


def describe_validation_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"{loc}: {err['msg']}"


def load_suite_spec(name_or_path: str) -> tuple[SuiteSpec, Path]:
    path = resolve_suite_path(name_or_path)
    data = read_yaml(path, "suite file")
    try:
        return SuiteSpec.model_validate(data), path
    except ValidationError as exc:
        raise SuiteError(f"suite file {str(path)!r} is invalid at {describe_validation_error(exc)}") from None


def load_suite(name_or_path: str, data_dir: str | Path | None = None) -> Suite:
    spec, path = load_suite_spec(name_or_path)
    if spec.records:
        rows = list(import_object(spec.records)(spec=spec, data_dir=data_dir))
    else:
        rows = read_rows(spec, path, data_dir)
    records = build_records(spec, rows, path)
    if not records:
        raise SuiteError(f"suite {spec.name!r} has no prompts after its filters (file {str(path)!r})")
    return Suite(spec, path, records)


def locate_source(spec: SuiteSpec, yaml_path: Path, data_dir: str | Path | None) -> Path:
    src = spec.source
    assert src.path is not None
    candidates = []
    if data_dir is not None:
        candidates.append(Path(data_dir) / src.path)
        candidates.append(Path(data_dir) / Path(src.path).name)
    candidates.append(yaml_path.parent / src.path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if src.hub is not None:
        return download_hub_file(spec)
    where = f"--data-dir {data_dir}" if data_dir else "a folder given with --data-dir"
    raise SuiteError(f"suite {spec.name!r} needs its data file {src.path!r}: put it in {where}")


def download_hub_file(spec: SuiteSpec) -> Path:
    from huggingface_hub import hf_hub_download

    hub = spec.source.hub
    assert hub is not None
    try:
        return Path(hf_hub_download(hub.repo_id, hub.filename, revision=hub.revision, repo_type=hub.repo_type))
    except Exception as exc:  # offline, gated, missing: one line that says where to put the file
        raise SuiteError(
            f"suite {spec.name!r} could not fetch {hub.repo_id}/{hub.filename}@{hub.revision} "
            f"({type(exc).__name__}); download it and pass its folder with --data-dir"
        ) from None


def read_rows(spec: SuiteSpec, yaml_path: Path, data_dir: str | Path | None) -> list[dict[str, Any]]:
    src = spec.source
    if src.inline is not None:
        return [dict(row) for row in src.inline]
    if src.path is None:
        raise SuiteError(f"suite {spec.name!r} has no source: set source.inline, source.path or records")
    file = locate_source(spec, yaml_path, data_dir)
    raw = file.read_bytes()
    if src.sha256 and not hashlib.sha256(raw).hexdigest().startswith(src.sha256.lower()):
        raise SuiteError(
            f"suite {spec.name!r} data file {str(file)!r} has sha256 {hashlib.sha256(raw).hexdigest()[:16]}, "
            f"expected prefix {src.sha256}"
        )
    text = raw.decode("utf-8-sig", errors="replace")
    if src.format == "lines":
        lines = [line.strip() for line in text.split("\n")]
        return [{"prompt": line, "line": str(i + 1)} for i, line in enumerate(lines) if line]
    if src.format == "csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        return [{k: v for k, v in row.items() if k not in ("", None) and not k.startswith("Unnamed:")} for row in reader]
    if src.format == "jsonl":
        return [json.loads(line) for line in text.split("\n") if line.strip()]
    data = json.loads(text)
    return list(data.values()) if isinstance(data, dict) else list(data)


def build_records(spec: SuiteSpec, rows: list[dict[str, Any]], yaml_path: Path) -> list[PromptRecord]:
    cols = spec.columns
    if rows:
        available = set().union(*(row.keys() for row in rows))
        required = [cols.prompt, cols.prompt_id, cols.seed, cols.category, cols.target_concept, *cols.extra]
        required += [f.column for f in spec.filters]
        for column in filter(None, required):
            if column not in available:
                raise SuiteError(
                    f"suite {spec.name!r} data has no column {column!r}; columns: {', '.join(sorted(available))}"
                )
    for flt in spec.filters:
        allowed = {flt.equals} if flt.equals is not None else set(flt.isin or ())
        rows = [row for row in rows if str(row[flt.column]) in allowed]
    records: list[PromptRecord] = []
    seen: set[str] = set()
    default_concept = spec.concepts[0] if spec.concepts else None
    for index, row in enumerate(rows):
        prompt_id = str(row[cols.prompt_id]).strip() if cols.prompt_id else str(index + 1)
        try:
            check_safe_id(prompt_id, "prompt id")
        except ValueError as exc:
            raise SuiteError(f"suite {spec.name!r}: {exc}") from None
        if prompt_id in seen:
            raise SuiteError(f"suite {spec.name!r} has the prompt id {prompt_id!r} twice; ids must be unique")
        seen.add(prompt_id)
        seed_text = str(row[cols.seed]).strip() if cols.seed else ""
        try:
            seed = int(float(seed_text)) if seed_text else None
        except ValueError:
            raise SuiteError(f"suite {spec.name!r} row {prompt_id!r} has seed {seed_text!r}, not an integer") from None
        records.append(
            PromptRecord(
                suite=spec.name,
                prompt_id=prompt_id,
                prompt=str(row[cols.prompt]),
                seed=seed,
                category=str(row[cols.category]) if cols.category else "all",
                target_concept=str(row[cols.target_concept]) if cols.target_concept else default_concept,
                source=f"{spec.source.path or yaml_path.name} row {index + 1}",
                extra={k: row[k] for k in cols.extra},
            )
        )
    return records


@lru_cache(maxsize=None)
def _concept_file(name: str, suite_dir: str | None) -> Path:
    dirs = ([Path(suite_dir) / "concepts"] if suite_dir else []) + [BUILTIN_SUITE_DIR / "concepts"]
    for folder in dirs:
        path = folder / f"{name}.yaml"
        if path.is_file():
            return path
    known = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.yaml")})
    raise SuiteError(f"unknown concept {name!r}; known: {', '.join(known)}")


def load_concept(name: str, suite_dir: Path | None = None) -> ConceptSpec:
    path = _concept_file(name, str(suite_dir) if suite_dir else None)
    data = read_yaml(path, "concept file")
    try:
        return ConceptSpec.model_validate(data)
    except ValidationError as exc:
        raise SuiteError(f"concept file {str(path)!r} is invalid at {describe_validation_error(exc)}") from None

"""Suites as versioned YAML read by one generic loader (after lm-eval's task YAML).

A suite file names its source (inline rows, a file beside the YAML or in ``--data-dir``, a Hugging
Face file at a revision), the file format and a column map, filters, target concepts, the seed
policy, generation settings per model family and default metrics. A ``records: module:function``
escape hatch builds rows in Python, like lm-eval's ``!function``.

Data files (``source.path`` or ``source.files``) are looked for in ``--data-dir`` (as
``DIR/<path in repo>``, ``DIR/<owner>__<repo>/<path>``, ``DIR/*/<owner>__<repo>/<path>`` or
``DIR/<file name>``), beside the YAML and in the cache (``$ERASEBENCH_CACHE/data``); else they are
downloaded from their pinned source (``repo`` + ``commit`` on GitHub, a ``url``, or a Hugging Face
``hub`` file at a revision) unless ``ERASEBENCH_OFFLINE`` or ``HF_HUB_OFFLINE`` is set. Every file is
checked against its ``sha256`` (a prefix of at least 8 hex digits). A file that is nowhere gives one
line naming the file names to put under ``--data-dir``.

Seeds (docs/protocols.md): ``derived`` uses
``int.from_bytes(sha256(f"{suite}:{prompt_id}:{sample}")[:4], "big")`` (prefixed with the run
seed when it is not 0), so a video never depends on order, shard or rank; ``column`` uses the
row's own seed (plus the sample index); ``fixed:N`` uses N for every prompt, as the SAFREE and
T2VUnlearning scripts do.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import inspect
import io
import json
import os
import re
import urllib.error
import urllib.request
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from .errors import SuiteError, describe_validation_error
from .registry import Registry, import_object
from .specs import (
    ConceptSpec, EraseMode, Frozen, GenerationSettings, PluginSpec, PromptRecord, SeedPolicy, check_safe_id,
)
from .store import atomic_write_bytes

BUILTIN_SUITE_DIR = Path(__file__).resolve().parent.parent / "suites"


class HubFile(Frozen):
    repo_id: str
    filename: str
    revision: str
    repo_type: Literal["dataset", "model", "space"] = "dataset"


HEX = re.compile(r"^[0-9a-fA-F]+$")


def _quoted(v: Any) -> Any:
    if v is not None and not isinstance(v, str):
        raise ValueError(f"{v!r} was read as a number: quote hashes and commit ids in YAML")
    return v


class SourceFile(Frozen):
    """One data file: its path in the source repository (also its place under ``--data-dir``)."""

    path: str
    sha256: str | None = None
    url: str | None = None
    # constant columns added to every row of this file (e.g. the aspect of a per-aspect file)
    fields: dict[str, Any] = Field(default_factory=dict)

    @field_validator("sha256", mode="before")
    @classmethod
    def _sha_text(cls, v: Any) -> Any:
        return _quoted(v)

    @field_validator("sha256")
    @classmethod
    def _sha(cls, v: str | None) -> str | None:
        if v is not None and (len(v) < 8 or len(v) > 64 or not HEX.match(v)):
            raise ValueError(f"sha256 {v!r} is not allowed: use 8 to 64 hex digits (a prefix of the file's SHA-256)")
        return v.lower() if v else v


class SourceSpec(Frozen):
    """Where rows come from: ``inline`` rows, or data files (``path`` or ``files``), or a ``records`` function.

    ``repo`` (GitHub ``owner/name``) and ``commit`` (40 hex digits) pin where files download from;
    ``url`` names one file's download address; ``hub`` a Hugging Face file at a revision. A file that
    can be downloaded must carry its ``sha256``.
    """

    inline: tuple[dict[str, Any], ...] | None = None
    path: str | None = None
    hub: HubFile | None = None
    sha256: str | None = None
    url: str | None = None
    files: tuple[SourceFile, ...] = ()
    repo: str | None = None
    commit: str | None = None
    format: Literal["csv", "jsonl", "json", "lines"] = "csv"
    # column names for rows that are lists (JSON) or for a CSV without a header row
    fieldnames: tuple[str, ...] = ()
    citation: str = ""

    @field_validator("sha256", "commit", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return _quoted(v)

    @field_validator("commit")
    @classmethod
    def _commit(cls, v: str | None) -> str | None:
        if v is not None and (len(v) != 40 or not HEX.match(v)):
            raise ValueError(f"commit {v!r} is not allowed: use the full 40-hex-digit commit id")
        return v

    @field_validator("repo")
    @classmethod
    def _repo(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$", v):
            raise ValueError(f"repo {v!r} is not allowed: use owner/name")
        return v

    @model_validator(mode="after")
    def _pinned(self) -> SourceSpec:
        if self.path is not None and self.files:
            raise ValueError("set source.path or source.files, not both")
        if self.hub is not None and self.path is None:
            raise ValueError("source.hub needs source.path (the file's name under --data-dir)")
        if (self.repo is None) != (self.commit is None):
            raise ValueError("source.repo and source.commit go together (files download from repo@commit)")
        if self.sha256 is not None:
            SourceFile(path="x", sha256=self.sha256)  # same check as per-file hashes
        for file in self.data_files():
            if (file.url or self.repo) and not file.sha256:
                raise ValueError(f"data file {file.path!r} can be downloaded, so it needs a sha256")
        return self

    def data_files(self) -> list[SourceFile]:
        if self.files:
            return list(self.files)
        if self.path is not None:
            return [SourceFile(path=self.path, sha256=self.sha256, url=self.url)]
        return []

    def url_for(self, file: SourceFile) -> str | None:
        if file.url:
            return file.url
        if self.repo and self.commit:
            return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{file.path}"
        return None

    def origin(self) -> str:
        if self.repo:
            return f"{self.repo}@{self.commit}"
        if self.hub is not None:
            return f"{self.hub.repo_id}@{self.hub.revision}"
        return ""


class ColumnMap(Frozen):
    """Which data column gives each record field; ``prompt_id`` may be a template (``{id}_{category}``)."""

    prompt: str = "prompt"
    prompt_id: str | None = None
    seed: str | None = None
    category: str | None = None
    target_concept: str | None = None
    extra: tuple[str, ...] = ()


class DerivedColumn(Frozen):
    """A column computed from another through a table (``casefold``: match keys case-insensitively)."""

    column: str
    map: dict[str, Any]
    casefold: bool = False

    @field_validator("map", mode="before")
    @classmethod
    def _keys(cls, v: Any) -> Any:
        return {str(k): val for k, val in v.items()} if isinstance(v, dict) else v


class RowFilter(Frozen):
    """Keep rows whose column, as text, equals a value or is in a list (YAML ``true`` matches ``True``)."""

    column: str
    equals: str | None = None
    isin: tuple[str, ...] | None = Field(default=None, alias="in")

    @field_validator("equals", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, (bool, int, float)) else v

    @field_validator("isin", mode="before")
    @classmethod
    def _texts(cls, v: Any) -> Any:
        return [str(x) if isinstance(x, (bool, int, float)) else x for x in v] if isinstance(v, (list, tuple)) else v


class SuiteSpec(Frozen):
    name: str
    version: str
    description: str
    source: SourceSpec
    records: str | None = None
    columns: ColumnMap = ColumnMap()
    derive: dict[str, DerivedColumn] = Field(default_factory=dict)
    filters: tuple[RowFilter, ...] = ()
    concepts: tuple[str, ...] = ()
    # how a suite with several concepts erases them by default (``--erase-mode`` overrides)
    erase_mode: EraseMode = "joint"
    seed_policy: SeedPolicy = "derived"
    samples: int = Field(default=1, ge=1)
    generation: dict[str, GenerationSettings] = Field(default_factory=dict)
    # metrics run by default (offline); paper_metrics: the paper's metrics that need a service or another
    # environment (judge, vbench), run only when named with --metrics
    metrics: tuple[PluginSpec, ...] = ()
    paper_metrics: tuple[PluginSpec, ...] = ()
    # a sampling protocol (suites/protocols/<name>.yaml: per-family generation settings and the sampler of a
    # paper's reference scripts) under this suite's own ``generation`` (docs/protocols.md)
    protocol: str | None = None
    # per model family, top-level keys that differ (e.g. T2VUnlearning's HunyuanVideo prompt file)
    family_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    default_model: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_safe_id(v, "suite name")

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> str:
        return str(v)

    @field_validator("metrics", "paper_metrics", mode="before")
    @classmethod
    def _metrics(cls, v: Any) -> Any:
        if v is None:
            return ()
        if not isinstance(v, (list, tuple)):
            return v  # not a list: pydantic says so
        return tuple({"name": m} if isinstance(m, str) else m for m in v)

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, v: str | None) -> str | None:
        if v is not None and not (PROTOCOL_DIR / f"{check_safe_id(v, 'protocol')}.yaml").is_file():
            known = ", ".join(sorted(p.stem for p in PROTOCOL_DIR.glob("*.yaml")))
            raise ValueError(f"protocol {v!r} is not allowed: use one of {known}")
        return v

    def generation_for(self, family: str) -> GenerationSettings:
        """Protocol default < protocol family < suite default < suite family (later wins, field by field)."""
        layers = load_protocol(self.protocol).generation if self.protocol else {}
        settings = GenerationSettings()
        for table in (layers, self.generation):
            settings = settings.merged(table.get("default")).merged(table.get(family))
        return settings

    def for_family(self, family: str) -> "SuiteSpec":
        """This spec with the family's ``family_overrides`` applied (top-level keys replaced)."""
        override = self.family_overrides.get(family)
        if not override:
            return self
        data = {**self.model_dump(mode="json", by_alias=True, exclude_unset=True), **override}
        data.pop("family_overrides", None)
        return SuiteSpec.model_validate(data)


class Protocol(Frozen):
    """A paper's sampling protocol: generation settings per model family (``default`` for all)."""

    name: str
    description: str
    sources: tuple[str, ...] = ()
    generation: dict[str, GenerationSettings] = Field(default_factory=dict)


PROTOCOL_DIR = BUILTIN_SUITE_DIR / "protocols"


@lru_cache(maxsize=None)
def load_protocol(name: str) -> Protocol:
    path = PROTOCOL_DIR / f"{name}.yaml"
    try:
        return Protocol.model_validate(read_yaml(path, "protocol file"))
    except ValidationError as exc:
        raise SuiteError(f"protocol file {str(path)!r} is invalid at {describe_validation_error(exc)}") from None


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
        if policy.startswith("fixed:"):  # the reference scripts' one seed; further samples take the next seeds
            return int(policy[6:]) + sample
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


def read_text(path: Path, what: str) -> str:
    """A file's text: UTF-8 (a BOM dropped), else one ``SuiteError`` naming the file and the first bad byte."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SuiteError(f"{what} {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    return decode_text(raw, f"{what} {str(path)!r}")


def decode_text(raw: bytes, what: str) -> str:
    """UTF-8 text (a BOM dropped) without NUL characters, else one ``SuiteError`` naming ``what``."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SuiteError(
            f"{what} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}): save it as UTF-8"
        ) from None
    if "\x00" in text:
        raise SuiteError(f"{what} is not text (a NUL byte at offset {text.index(chr(0))}): save it as UTF-8 text")
    return text


def read_yaml(path: Path, what: str) -> dict[str, Any]:
    text = read_text(path, what)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise SuiteError(f"{what} {str(path)!r} is not valid YAML{where}: {problem}") from None
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. a date such as 2024-13-01, nesting too deep
        raise SuiteError(f"{what} {str(path)!r} holds a value YAML cannot read: {' '.join(str(exc).split())[:120]}") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{what} {str(path)!r} must be a YAML mapping, got {type(data).__name__}")
    return data


def load_suite_spec(name_or_path: str) -> tuple[SuiteSpec, Path]:
    path = resolve_suite_path(name_or_path)
    data = read_yaml(path, "suite file")
    try:
        return SuiteSpec.model_validate(data), path
    except ValidationError as exc:
        raise SuiteError(f"suite file {str(path)!r} is invalid at {describe_validation_error(exc)}") from None


def load_suite(name_or_path: str, data_dir: str | Path | None = None, family: str | None = None) -> Suite:
    """Load a suite's records; with ``family``, the suite as that model family runs it (``family_overrides``)."""
    spec, path = load_suite_spec(name_or_path)
    if family is not None:
        try:
            spec = spec.for_family(family)
        except ValidationError as exc:
            raise SuiteError(f"suite file {str(path)!r} family_overrides.{family} is invalid at {describe_validation_error(exc)}") from None
    if data_dir is not None and not Path(data_dir).is_dir():
        raise SuiteError(f"--data-dir {str(data_dir)!r} is not a folder")
    if spec.records:
        try:
            function = import_object(spec.records)
        except (ImportError, AttributeError, ValueError) as exc:
            raise SuiteError(f"suite file {str(path)!r} records {spec.records!r} cannot be imported ({exc}): use module:function") from None
        kwargs: dict[str, Any] = {"spec": spec, "data_dir": data_dir}
        params = inspect.signature(function).parameters
        if "yaml_path" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            kwargs["yaml_path"] = path
        rows = list(function(**kwargs))
    else:
        rows = read_rows(spec, path, data_dir)
    records = build_records(spec, rows, path)
    if not records:
        raise SuiteError(f"suite {spec.name!r} has no prompts after its filters (file {str(path)!r})")
    return Suite(spec, path, records)


def offline() -> bool:
    """True when ``ERASEBENCH_OFFLINE`` or ``HF_HUB_OFFLINE`` is set: no data file is downloaded."""
    return any(
        os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
        for v in ("ERASEBENCH_OFFLINE", "HF_HUB_OFFLINE")
    )


def data_cache_dir() -> Path:
    from .models.loading import cache_root

    return cache_root() / "data"


def _cache_path(src: SourceSpec, file: SourceFile) -> Path | None:
    if src.repo and src.commit and not file.url:
        return data_cache_dir() / f"{src.repo.replace('/', '__')}@{src.commit}" / file.path
    url = src.url_for(file)
    if url:
        return data_cache_dir() / "urls" / hashlib.sha256(url.encode()).hexdigest()[:16] / Path(file.path).name
    return None


def _candidates(
    src: SourceSpec, file: SourceFile, yaml_path: Path, data_dir: str | Path | None
) -> list[tuple[Path, bool]]:
    """Where a data file may already be, as (path, exact): --data-dir in the source's layout (exact), or
    by file name only (a guess, skipped when its hash differs), then beside the YAML (exact)."""
    out: list[tuple[Path, bool]] = []
    if data_dir is not None:
        root = Path(data_dir)
        out.append((root / file.path, True))
        if src.repo:
            mirror = src.repo.replace("/", "__")
            out.append((root / mirror / file.path, True))
            out.extend((p, True) for p in sorted(root.glob(f"*/{mirror}/{file.path}")))
        out.append((root / Path(file.path).name, False))
    out.append((yaml_path.parent / file.path, True))
    return out


def sha256_matches(raw: bytes, expected: str | None) -> bool:
    return expected is None or hashlib.sha256(raw).hexdigest().startswith(expected.lower())


def _check_hash(spec: SuiteSpec, file: SourceFile, path: Path, raw: bytes) -> None:
    if not sha256_matches(raw, file.sha256):
        raise SuiteError(
            f"suite {spec.name!r} data file {str(path)!r} has sha256 {hashlib.sha256(raw).hexdigest()[:16]}, "
            f"expected {file.sha256[:16]} ({spec.source.origin() or 'pinned'} {file.path}): "
            "replace it with the original file"
        )


def _download(url: str, timeout: float = 30.0) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "erasebench"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def compact_paths(paths: list[str], root: str = "") -> str:
    """``a/1.txt, a/2.txt, b.txt`` -> ``ROOT/a/{1,2}.txt and ROOT/b.txt`` (one short line for many files)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for path in paths:
        p = Path(path)
        stem = p.name[: len(p.name) - len(p.suffix)] if p.suffix else p.name
        groups.setdefault((p.parent.as_posix(), p.suffix), []).append(stem)
    parts = []
    for (folder, suffix), stems in groups.items():
        prefix = "/".join(x for x in (root.rstrip("/"), "" if folder == "." else folder) if x)
        prefix = f"{prefix}/" if prefix else ""
        parts.append(f"{prefix}{stems[0]}{suffix}" if len(stems) == 1 else f"{prefix}{{{','.join(stems)}}}{suffix}")
    return " and ".join(parts)


def fetch_source_files(
    spec: SuiteSpec, yaml_path: Path, data_dir: str | Path | None
) -> list[tuple[SourceFile, Path, bytes]]:
    """Every data file of the suite's source as (file spec, local path, verified bytes).

    Order: --data-dir, beside the YAML, the cache, then a download (cached) unless offline. Files
    that are nowhere give one line that names them and the folder to put them in.
    """
    src = spec.source
    found: list[tuple[SourceFile, Path, bytes]] = []
    missing: list[SourceFile] = []
    reasons: dict[str, None] = {}  # why files could not be fetched, in order, without repeats
    network_down = False  # after one connection failure, do not wait on the next files
    for file in src.data_files():
        local = None
        for candidate, exact in _candidates(src, file, yaml_path, data_dir):
            if candidate.is_file():
                raw = candidate.read_bytes()
                if exact:
                    _check_hash(spec, file, candidate, raw)
                elif not sha256_matches(raw, file.sha256):
                    continue  # same name, other file (e.g. the full set's 1.txt for the tiny set's)
                local = (file, candidate, raw)
                break
        if local is not None:
            found.append(local)
            continue
        cached = _cache_path(src, file)
        if cached is not None and cached.is_file():
            raw = cached.read_bytes()
            if sha256_matches(raw, file.sha256):
                found.append((file, cached, raw))
                continue
        url = src.url_for(file)
        if src.hub is not None and file.path == src.path:
            path = _hub_file(spec, reasons)
            if path is not None:
                raw = path.read_bytes()
                _check_hash(spec, file, path, raw)
                found.append((file, path, raw))
                continue
        elif url is None:
            reasons.setdefault("it has no download source")
        elif offline():
            reasons.setdefault("downloads are off (ERASEBENCH_OFFLINE or HF_HUB_OFFLINE is set)")
        elif not network_down:
            try:
                raw = _download(url)
            except Exception as exc:  # network, HTTP status, DNS: one line, then the where-to-put hint
                reasons.setdefault(
                    f"the download from {url} failed ({type(exc).__name__}: {' '.join(str(exc).split())[:80]})"
                )
                network_down = not isinstance(exc, urllib.error.HTTPError)
            else:
                if not sha256_matches(raw, file.sha256):
                    raise SuiteError(
                        f"suite {spec.name!r} data file downloaded from {url} has sha256 "
                        f"{hashlib.sha256(raw).hexdigest()[:16]}, expected {file.sha256[:16]}: the source changed; "
                        f"get the file at {src.origin() or url} and pass --data-dir"
                    )
                assert cached is not None
                atomic_write_bytes(cached, raw)
                found.append((file, cached, raw))
                continue
        missing.append(file)
    if missing:
        raise MissingDataError(missing_files_message(spec, missing, data_dir, list(reasons)))
    return found


class MissingDataError(SuiteError):
    """A data file is nowhere (not in --data-dir, the cache or beside the YAML) and cannot be downloaded; a file
    that is there but wrong stays a plain ``SuiteError``. Callers with a fallback catch only this."""


def missing_files_message(
    spec: SuiteSpec, missing: list[SourceFile], data_dir: str | Path | None, reasons: list[str]
) -> str:
    where = str(data_dir) if data_dir is not None else "DIR"
    origin = f" from {spec.source.origin()}" if spec.source.origin() else ""
    more = f" (and {len(reasons) - 1} more failures)" if len(reasons) > 1 else ""
    why = f"; {reasons[0]}{more}" if reasons else ""
    names = compact_paths([f.path for f in missing], where)
    if len(missing) == 1:
        head = f"suite {spec.name!r} needs its data file {missing[0].path!r}{origin}, which is not here{why}"
        tail = f"put it at {names}"
    else:
        head = f"suite {spec.name!r} needs {len(missing)} data files{origin} that are not here{why}"
        tail = f"put them at {names}"
    return f"{head}: {tail} and pass --data-dir {where}"


def _hub_file(spec: SuiteSpec, reasons: dict[str, None]) -> Path | None:
    from huggingface_hub import hf_hub_download

    hub = spec.source.hub
    assert hub is not None
    try:
        return Path(
            hf_hub_download(
                hub.repo_id, hub.filename, revision=hub.revision, repo_type=hub.repo_type, local_files_only=offline()
            )
        )
    except Exception as exc:  # offline and not cached, gated, missing
        if offline():
            reasons.setdefault(
                "downloads are off (ERASEBENCH_OFFLINE or HF_HUB_OFFLINE is set) and the Hugging Face cache has no copy"
            )
        else:
            reasons.setdefault(f"fetching {hub.repo_id}/{hub.filename}@{hub.revision} failed ({type(exc).__name__})")
        return None


def parse_data(src: SourceSpec, raw: bytes, name: str) -> list[dict[str, Any]]:
    """Rows of one data file (``.gz`` is decompressed first), following docs/protocols.md.

    Text is UTF-8 with a BOM dropped. ``lines`` files replace undecodable bytes by U+FFFD (as the
    reference readers' ``open(..., errors="replace")``); ``csv`` and ``json``/``jsonl`` files that are not
    UTF-8 text are one ``SuiteError``. ``lines``: split on ``\\n`` only (never ``str.splitlines``, which
    also splits on the \\x0b \\x0c \\x1c-\\x1e found inside prompts), each line ``strip()``-ed, blank
    lines skipped but counted (``line`` is the 1-based line number). ``csv``: quoted fields may span
    lines; unnamed index columns are dropped. ``json``/``jsonl``: nested objects become dotted columns
    (``prompt_labels.porn``), list rows are named by ``fieldnames``.
    """
    if name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise SuiteError(f"data file {name!r} is not a readable .gz file ({exc})") from None
    if src.format == "lines":
        text = raw.decode("utf-8-sig", errors="replace")
        rows = []
        for i, line in enumerate(text.split("\n")):
            line = line.strip()
            if line:
                rows.append({"prompt": line, "line": i + 1, "_row": i + 1})
        return rows
    text = decode_text(raw, f"data file {name!r}")
    if src.format == "csv":
        try:
            return _csv_rows(src, text, name)
        except csv.Error as exc:
            raise SuiteError(f"data file {name!r} is not a readable CSV file: {exc}") from None
    try:
        items = (
            [json.loads(line) for line in text.split("\n") if line.strip()]
            if src.format == "jsonl"
            else json.loads(text)
        )
    except json.JSONDecodeError as exc:
        raise SuiteError(f"data file {name!r} is not valid JSON at line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise SuiteError(f"data file {name!r} nests JSON too deeply to read") from None
    if isinstance(items, dict):
        items = list(items.values())
    if not isinstance(items, list):
        raise SuiteError(f"data file {name!r} holds a JSON {type(items).__name__}; a list of rows or an object of rows is needed")
    rows = []
    for i, item in enumerate(items):
        if isinstance(item, (list, tuple)):
            if len(item) != len(src.fieldnames):
                raise SuiteError(
                    f"data file {name!r} row {i + 1} has {len(item)} values; "
                    f"source.fieldnames names {len(src.fieldnames)}"
                )
            item = dict(zip(src.fieldnames, item))
        elif not isinstance(item, dict):
            raise SuiteError(f"data file {name!r} row {i + 1} is a {type(item).__name__}, not an object or a list")
        rows.append({**_flatten(item), "_row": i + 1})
    return rows


def _csv_rows(src: SourceSpec, text: str, name: str) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = list(src.fieldnames) if src.fieldnames else next(reader, [])
    rows = []
    for i, values in enumerate(reader):
        if not values:
            continue
        if len(values) != len(header):
            raise SuiteError(
                f"data file {name!r} row {i + 1} has {len(values)} fields but the header has {len(header)} "
                "(an unquoted comma?): the file is malformed"
            )
        row = {k: v for k, v in zip(header, values) if k and not k.startswith("Unnamed:")}
        rows.append({**row, "_row": i + 1})
    return rows


def _flatten(item: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in item.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def read_rows(spec: SuiteSpec, yaml_path: Path, data_dir: str | Path | None) -> list[dict[str, Any]]:
    src = spec.source
    if src.inline is not None:
        return [{**row, "_row": i + 1} for i, row in enumerate(src.inline)]
    if not src.data_files():
        raise SuiteError(f"suite {spec.name!r} has no source: set source.inline, source.path, source.files or records")
    rows: list[dict[str, Any]] = []
    origin = f"{src.origin()} " if src.origin() else ""
    unit = "line" if src.format == "lines" else "row"
    for file, path, raw in fetch_source_files(spec, yaml_path, data_dir):
        for row in parse_data(src, raw, path.name):
            rows.append({**row, **file.fields, "_source": f"{origin}{file.path} {unit} {row['_row']}"})
    return rows


ID_FIELD = re.compile(r"\{([^{}]+)\}")
UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._+=-]+")


def _derive(spec: SuiteSpec, rows: list[dict[str, Any]]) -> None:
    for name, rule in spec.derive.items():
        table = {(k.casefold() if rule.casefold else k): v for k, v in rule.map.items()}
        for row in rows:
            if rule.column not in row:
                continue
            value = str(row[rule.column])
            key = value.casefold() if rule.casefold else value
            if key not in table:
                where = row.get("_source") or f"row {row.get('_row')}"
                raise SuiteError(
                    f"suite {spec.name!r} {where}: {rule.column} {value!r} is not in "
                    f"derive.{name}.map ({', '.join(map(str, rule.map))})"
                )
            row[name] = table[key]


def _prompt_id(spec: SuiteSpec, row: dict[str, Any], index: int) -> str:
    """A column's value, or a template such as ``{aspect}-{line}`` (values made file-name safe)."""
    template = spec.columns.prompt_id
    if template is None:
        return str(row.get("_row", index + 1))
    if "{" not in template:
        return str(row[template]).strip()
    return ID_FIELD.sub(lambda m: UNSAFE_ID_CHARS.sub("-", str(row[m.group(1)]).strip()), template)


def build_records(spec: SuiteSpec, rows: list[dict[str, Any]], yaml_path: Path) -> list[PromptRecord]:
    cols = spec.columns
    rows = [dict(row) for row in rows]
    _derive(spec, rows)
    if rows:
        available = set().union(*(row.keys() for row in rows))
        id_columns = ID_FIELD.findall(cols.prompt_id) if cols.prompt_id and "{" in cols.prompt_id else [cols.prompt_id]
        required = [cols.prompt, *id_columns, cols.seed, cols.category, cols.target_concept, *cols.extra]
        required += [f.column for f in spec.filters]
        for column in filter(None, required):
            if column not in available:
                shown = ", ".join(sorted(c for c in available if not c.startswith("_")))
                raise SuiteError(f"suite {spec.name!r} data has no column {column!r}; columns: {shown}")
    for flt in spec.filters:
        allowed = {flt.equals} if flt.equals is not None else set(flt.isin or ())
        rows = [row for row in rows if str(row[flt.column]) in allowed]
    records: list[PromptRecord] = []
    seen: set[str] = set()
    default_concept = spec.concepts[0] if spec.concepts else None
    for index, row in enumerate(rows):
        prompt_id = _prompt_id(spec, row, index)
        try:
            check_safe_id(prompt_id, "prompt id")
        except ValueError as exc:
            raise SuiteError(f"suite {spec.name!r}: {exc}") from None
        if prompt_id in seen:
            raise SuiteError(f"suite {spec.name!r} has the prompt id {prompt_id!r} twice; ids must be unique")
        seen.add(prompt_id)
        seed_text = str(row[cols.seed]).strip() if cols.seed and row[cols.seed] is not None else ""
        try:
            seed = int(float(seed_text)) if seed_text else None
        except (ValueError, OverflowError):
            raise SuiteError(f"suite {spec.name!r} row {prompt_id!r} has seed {seed_text!r}, not an integer") from None
        concept = row[cols.target_concept] if cols.target_concept else default_concept
        records.append(
            PromptRecord(
                suite=spec.name,
                prompt_id=prompt_id,
                prompt=str(row[cols.prompt]),
                seed=seed,
                category=str(row[cols.category]) if cols.category else "all",
                target_concept=str(concept) if concept not in (None, "") else None,
                source=row.get("_source") or f"{spec.source.path or yaml_path.name} row {row.get('_row', index + 1)}",
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

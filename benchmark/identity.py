"""Every cache key of a run, in one versioned module, each computable without loading the pipeline.

Keys (docs/architecture.md, "Identity and keys"):

* run name: ``{suite}__{eraser}__{model slug}__{sha256(spec without out-of-run fields)[:8]}``
* generation key (``gen_key``): sha256 of the call kwargs (family defaults read from the model's config.json
  files plus the suite's settings), fps, scheduler (class and whole config), seed policy, run seed, dtype,
  device, codec and the memory options that change pixels
* video group: ``videos/{model slug}-{model_fp}/{eraser}-{eraser_fp}/{suite}-v{version}/{gen_key}``; a video
  key adds ``{prompt_id}/{sample:02}``
* fit key: sha256 of the fit's run context (call settings, seed, dtype, scheduler); the fit artifact lives
  in ``artifacts/{model_fp}/{eraser}-{eraser_fp}-{fit_key}``
* score key: ``scores/{metric}-{metric_fp}/{video_sha[:2]}/{video_sha}.json``

``VERSION`` names the formulas. Version 1 is the formulas the runner used before this module existed (so
caches and committed run names stay valid) and does not hash the version itself; any change of a formula
must bump it, and from version 2 on it enters every hash. ``tests/test_identity.py`` pins the keys of a fixed
run, and ``SPEC_FIELDS`` classifies every ``RunSpec`` field as in the video key or not (a new field
fails that test until it is classified).

Nothing here builds the pipeline: the call defaults come from the components' config.json files
(``ConfigView``) and the scheduler record from ``scheduler/scheduler_config.json`` through the scheduler
class alone (``scheduler_record``), cached by its inputs under the erasebench cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .specs import stable_hash

if TYPE_CHECKING:  # pragma: no cover
    from .erasers import Eraser
    from .runner import RunPlan, WorkItem

VERSION = 1

#: ``RunSpec`` field -> (in the video key, how or why not). Every field must be listed (tests/test_identity.py).
SPEC_FIELDS: dict[str, tuple[bool, str]] = {
    "model": (True, "model slug and the sha256 of every file of the pipeline (model_fp)"),
    "model_revision": (True, "selects the files that model_fp hashes"),
    "eraser": (True, "eraser name and fingerprint (its class version and config)"),
    "concepts": (True, "the eraser fingerprint covers the concepts it erases"),
    "erase_mode": (True, "which eraser (which concepts) makes each video: its group's fingerprint"),
    "suite": (True, "suite name and version; prompt ids in each video key"),
    "seed": (True, "generation key (run seed) and each item's derived seed"),
    "seed_policy": (True, "generation key"),
    "device": (True, "generation key (the requested device, not the rank's GPU index)"),
    "dtype": (True, "generation key"),
    "generation": (True, "generation key: call kwargs and scheduler"),
    "video_codec": (True, "generation key"),
    "memory": (True, "generation key: the options that change pixels (MemoryOptions.in_key); offload and slicing do not"),
    "metrics": (False, "scores are keyed by metric name, metric fingerprint and video sha256"),
    "samples": (False, "how many videos: each video key holds its sample index"),
    "limit": (False, "which prompts: each video key holds its prompt id"),
    "batch_size": (False, "one seeded generator per video: a video does not depend on its batch"),
    "data_dir": (False, "where inputs are read from; the suite version and the eraser fingerprint pin them"),
    "overwrite": (False, "what to do with cached files, not what they hold"),
}
#: fields left out of the run name's hash (the run folder is the same whatever the cache strategy)
RUN_NAME_EXCLUDED = frozenset({"overwrite"})


def _versioned(payload: dict[str, Any]) -> dict[str, Any]:
    return payload if VERSION == 1 else {**payload, "identity": VERSION}


# ---- the keys -----------------------------------------------------------------------------------------
def run_name(spec: Any, suite: str, eraser: str, model_slug: str) -> str:
    spec_fp = stable_hash(_versioned(spec.model_dump(mode="json", exclude=set(RUN_NAME_EXCLUDED))), 8)
    return f"{suite}__{eraser}__{model_slug}__{spec_fp}"


def generation_key(
    call: dict[str, Any], fps: Any, scheduler: dict[str, Any], seed_policy: Any, seed: int, dtype: str, device: str,
    codec: str, memory: dict[str, Any] | None = None,
) -> str:
    payload: dict[str, Any] = {
        "call": call, "fps": fps, "scheduler": scheduler, "seed_policy": seed_policy, "run_seed": seed,
        "dtype": dtype, "device": device, "codec": codec,
    }
    if memory:
        payload["memory"] = memory
    return stable_hash(_versioned(payload), 10)


def video_group(model_slug: str, model_fp: str, eraser: str, eraser_fp: str, suite: str, suite_version: Any, gen_key: str) -> str:
    return f"videos/{model_slug}-{model_fp}/{eraser}-{eraser_fp}/{suite}-v{suite_version}/{gen_key}"


@dataclass(frozen=True)
class VideoKey:
    """Where one (prompt, sample) video lives."""

    group: str  # videos/{model}/{eraser}/{suite}/{gen}
    prompt_id: str
    sample: int

    def relpath(self) -> str:
        return f"{self.group}/{self.prompt_id}/{self.sample:02d}.mp4"


def fit_key(generation: dict[str, Any], seed: int, dtype: str, scheduler: dict[str, Any] | None) -> str:
    key: dict[str, Any] = {"generation": generation, "seed": seed, "dtype": dtype}
    if scheduler:
        key["scheduler"] = scheduler
    return stable_hash(_versioned(key), 8)


def artifact_rel(model_fp: str, eraser: str, eraser_fp: str, fit: str) -> str:
    return f"artifacts/{model_fp}/{eraser}-{eraser_fp}-{fit}"


def score_rel(metric: str, metric_fp: str, video_sha: str) -> str:
    return f"scores/{metric}-{metric_fp}/{video_sha[:2]}/{video_sha}.json"


def results_key(body: dict[str, Any], sample_lines: list[str], code: list[Path]) -> str:
    """What a run's results.json is computed from: its settings (``body``: all but its time, aggregates and
    environment), every samples.jsonl line (video sha256 and scores) and the sha256 of the code files that
    compute aggregates. Kept beside results.json in ``results.key``: a rerun with the same key returns it."""
    from .store import file_sha256

    return stable_hash({
        "identity": VERSION, "body": body, "samples": sample_lines,
        "code": sorted(file_sha256(path) for path in code if path.is_file()),
    }, 32)


# ---- inputs read without the pipeline -------------------------------------------------------------------
class ConfigView:
    """Attribute access over a pipeline folder's config.json files, shaped like a loaded pipeline
    (``view.transformer.config.max_text_seq_length``): what ``ModelFamily.call_defaults`` reads."""

    def __init__(self, configs: dict[str, dict[str, Any]]):
        self._configs = configs

    def __getattr__(self, component: str) -> Any:
        configs = self.__dict__.get("_configs", {})
        if component not in configs:
            raise AttributeError(component)
        return _Component(configs[component])


class _Component:
    def __init__(self, config: dict[str, Any]):
        self.config = _Config(config)


class _Config(dict):
    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def component_configs(folder: Path) -> dict[str, dict[str, Any]]:
    """Each component folder's ``config.json`` (``scheduler_config.json`` for the scheduler)."""
    out: dict[str, dict[str, Any]] = {}
    for sub in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
        for name in ("config.json", "scheduler_config.json"):
            path = sub / name
            if path.is_file():
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    data = {}
                out[sub.name] = data if isinstance(data, dict) else {}
                break
    return out


def _cache_file(name: str) -> Path:
    from .models.loading import cache_root

    return cache_root() / name


def cache_get(name: str, key: str) -> Any:
    """The entry ``key`` of the small JSON cache ``name`` under the erasebench cache (None when absent)."""
    return _read_cache(name).get(key)


def _read_cache(name: str) -> dict[str, Any]:
    try:
        data = json.loads(_cache_file(name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def cache_put(name: str, key: str, value: Any) -> None:
    """Add one entry to a small JSON cache under the erasebench cache (best effort, atomic rename)."""
    path = _cache_file(name)
    data = _read_cache(name)
    data[key] = value
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return ""


def scheduler_record(folder: Path, spec: Any) -> dict[str, Any]:
    """The scheduler record (class and whole config, as ``models.loading.scheduler_record`` reads it from a
    loaded pipeline) from ``scheduler/scheduler_config.json`` and the suite's ``SchedulerSpec``: the scheduler
    class alone is built (``from_config``), never the pipeline. Cached by (config file sha256, spec, diffusers
    version) in ``scheduler-records.json`` under the erasebench cache, so a rerun imports no diffusers."""
    path = Path(folder) / "scheduler" / "scheduler_config.json"
    raw = path.read_bytes()
    spec_json = spec.model_dump(mode="json") if spec is not None and hasattr(spec, "model_dump") else None
    key = stable_hash({"config": hashlib.sha256(raw).hexdigest(), "spec": spec_json, "diffusers": package_version("diffusers")}, 16)
    cached = cache_get("scheduler-records.json", key)
    if isinstance(cached, dict):
        return cached
    import diffusers

    from .models.loading import scheduler_class

    config = json.loads(raw)
    cls = getattr(diffusers, str(config.get("_class_name", "")), None)
    if not isinstance(cls, type):
        from .errors import ErasebenchError

        raise ErasebenchError(f"{str(path)!r} names the scheduler class {config.get('_class_name')!r}, which diffusers does not have")
    scheduler = cls.from_config(config)
    if spec is not None and not spec.keeps_pipeline:
        scheduler = scheduler_class(spec.name).from_config(scheduler.config, **spec.config)
    values = {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")}
    record = {"class": type(scheduler).__name__, "config": json.loads(json.dumps(values, default=str))}
    cache_put("scheduler-records.json", key, record)
    return record


def model_files(folder: Path) -> dict[str, str]:
    from .models.loading import folder_hashes

    return folder_hashes(folder)


def model_key(files: dict[str, str]) -> str:
    from .models.loading import model_fingerprint

    return model_fingerprint(files)


# ---- a plan's keys ----------------------------------------------------------------------------------------
@dataclass
class RunKeys:
    """Every key of one planned run: model files and fingerprint, call settings, scheduler, generation key."""

    folder: Path
    model_files: dict[str, str]
    model_fp: str
    call: dict[str, Any]  # call kwargs as JSON values (family defaults + the suite's settings)
    scheduler: dict[str, Any]
    gen_key: str
    plan: Any = field(repr=False, default=None)

    def group(self, eraser: Eraser) -> str:
        plan = self.plan
        return video_group(
            plan.source.slug(), self.model_fp, eraser.name, eraser.fingerprint(), plan.suite.name, plan.suite.spec.version,
            self.gen_key,
        )

    def key(self, item: WorkItem) -> VideoKey:
        return VideoKey(self.group(self.plan.group_of(item).eraser), item.record.prompt_id, item.sample)

    def fit_key(self) -> str:
        spec = self.plan.spec
        return fit_key(self.call, spec.seed, spec.dtype, self.scheduler)

    def artifact_rel(self, eraser: Eraser) -> str | None:
        """The fit artifact folder of ``eraser`` (None when it needs no fit)."""
        if not eraser.needs_fit:
            return None
        return artifact_rel(self.model_fp, eraser.name, eraser.fingerprint(), self.fit_key())


def local_model_folder(source: Any, download: bool = True) -> Path | None:
    """The pipeline folder; a hub model not in the local cache is downloaded (``download``) or None."""
    from .models.loading import local_folder

    if source.folder is not None or download:
        return local_folder(source)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source.hub_id, revision=source.revision, local_files_only=True))
    except Exception:  # noqa: BLE001 - not downloaded yet
        return None


def run_keys(plan: RunPlan, folder: Path | None = None) -> RunKeys:
    """The plan's keys from files alone (``folder``: the model folder, default resolved/downloaded)."""
    folder = folder or local_model_folder(plan.source)
    files = model_files(folder)
    configs = component_configs(folder)
    call = {**plan.family.call_defaults(ConfigView(configs)), **plan.generation.pipeline_kwargs()}
    call = json.loads(json.dumps(call))  # what stable_hash sees, as JSON values
    scheduler = scheduler_record(folder, plan.generation.scheduler)
    spec = plan.spec
    memory = spec.memory.in_key() if hasattr(spec, "memory") else {}
    gen = generation_key(
        call, plan.generation.fps, scheduler, spec.seed_policy or plan.suite.spec.seed_policy, spec.seed, spec.dtype,
        spec.device, spec.video_codec, memory,
    )
    return RunKeys(folder, files, model_key(files), call, scheduler, gen, plan)

"""Resolve ``--model`` (a named model, a local folder or a hub id) and load the diffusers pipeline.

Hub ids go through ``huggingface_hub.snapshot_download`` (cached, resumable; offline it uses the
cache only), then the folder goes through ``DiffusionPipeline.from_pretrained``: the same code path
for a user's download, a shipped model and the tiny models the tests build.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ErasebenchError
from ..store import file_sha256
from .base import MODELS, ModelFamily, NamedModel, family_for_pipeline_class

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".json", ".model", ".txt")


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from, before any weights are read."""

    ref: str
    label: str
    hub_id: str | None
    revision: str | None
    folder: Path | None

    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.label).strip("_") or "model"


def cache_root() -> Path:
    return Path(os.environ.get("ERASEBENCH_CACHE", Path.home() / ".cache" / "erasebench"))


def resolve_model(ref: str, revision: str | None = None) -> ModelSource:
    if ref in MODELS:
        named: NamedModel = MODELS.get(ref)
        folder = Path(named.folder) if named.folder else None
        return ModelSource(ref, named.name, named.hub_id, revision or named.revision, folder)
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ErasebenchError(f"model folder {ref!r} has no model_index.json (a diffusers pipeline folder is needed)")
        return ModelSource(ref, path.resolve().name, None, None, path.resolve())
    if HUB_ID.match(ref) and not path.exists():
        return ModelSource(ref, ref, ref, revision, None)
    raise ErasebenchError(
        f"model {ref!r} is neither a known model ({', '.join(MODELS.names())}), "
        "a folder with model_index.json, nor a hub id like owner/name"
    )


def model_index(source: ModelSource) -> dict[str, Any]:
    """Read model_index.json (one small file; from the hub cache or a download for hub ids)."""
    if source.folder is not None:
        index_path = source.folder / "model_index.json"
        if not index_path.is_file():
            raise ErasebenchError(f"model {source.ref!r}: {str(index_path)!r} does not exist")
    else:
        from huggingface_hub import hf_hub_download

        try:
            index_path = Path(hf_hub_download(source.hub_id, "model_index.json", revision=source.revision))
        except Exception as exc:
            raise ErasebenchError(
                f"model {source.ref!r} is not in the local Hugging Face cache and could not be downloaded "
                f"({type(exc).__name__}); download it or pass a local folder with --model"
            ) from None
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except ValueError as exc:  # not JSON, not UTF-8
        reason = getattr(exc, "msg", None) or getattr(exc, "reason", None) or exc
        raise ErasebenchError(f"model {source.ref!r}: model_index.json is not valid JSON ({reason})") from None
    if not isinstance(index, dict):
        raise ErasebenchError(f"model {source.ref!r}: model_index.json holds a {type(index).__name__}, not an object")
    return index


def pipeline_spec(source: ModelSource) -> tuple[type | None, dict[str, dict[str, Any]]]:
    """The pipeline class named in model_index.json (None when diffusers has none by that name) and each
    component's config.json (``{}`` when not here): what plan time checks generation settings with, no weights read."""
    index = model_index(source)
    import diffusers

    cls = getattr(diffusers, str(index.get("_class_name", "")), None)
    configs: dict[str, dict[str, Any]] = {}
    for component in (c for c in ("vae", "transformer", "unet") if c in index):
        if source.folder is not None:
            path: Path | None = source.folder / component / "config.json"
        else:
            from huggingface_hub import hf_hub_download

            try:
                path = Path(hf_hub_download(source.hub_id, f"{component}/config.json", revision=source.revision))
            except Exception:  # noqa: BLE001 - absent component or offline: the family's defaults apply
                path = None
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path is not None and path.is_file() else {}
        except (OSError, ValueError):
            data = {}
        configs[component] = data if isinstance(data, dict) else {}
    return (cls if isinstance(cls, type) else None), configs


def detect_family(source: ModelSource) -> ModelFamily:
    class_name = model_index(source).get("_class_name", "")
    return family_for_pipeline_class(class_name)


def local_folder(source: ModelSource) -> Path:
    """The folder holding the whole pipeline, downloading hub snapshots into the HF cache."""
    if source.folder is not None:
        return source.folder
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source.hub_id, revision=source.revision))
    except Exception as exc:
        raise ErasebenchError(
            f"model {source.ref!r} could not be downloaded ({type(exc).__name__}); "
            "download it or pass a local folder with --model"
        ) from None


def folder_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file of the pipeline (symlinks into the HF blob store followed), cached by size+mtime."""
    cache_file = cache_root() / "file-hashes.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, json.JSONDecodeError):
        cache = {}
    hashes: dict[str, str] = {}
    dirty = False
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES):
        real = path.resolve()
        stat = real.stat()
        key = f"{real}:{stat.st_size}:{stat.st_mtime_ns}"
        if key not in cache:
            cache[key] = file_sha256(real)
            dirty = True
        hashes[path.relative_to(folder).as_posix()] = cache[key]
    if dirty:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache))
            os.replace(tmp, cache_file)
        except OSError:
            pass
    return hashes


def model_fingerprint(hashes: dict[str, str]) -> str:
    payload = json.dumps(hashes, sort_keys=True).encode()
    return hashlib.sha256(payload).hexdigest()[:12]


def load_pipeline(folder: Path, dtype: str = "float32", device: str = "cpu", memory: Any = None) -> Any:
    """``DiffusionPipeline.from_pretrained`` in ``dtype`` on ``device``, with the run's ``MemoryOptions`` applied
    (an offloaded pipeline stays on the CPU and diffusers moves each part to ``device`` when it runs)."""
    import torch
    import transformers
    from diffusers import DiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    transformers.logging.disable_progress_bar()
    pipe = DiffusionPipeline.from_pretrained(folder, dtype=getattr(torch, dtype))
    if memory is None or memory.offload is None:
        pipe = pipe.to(device)
    if memory is not None:
        apply_memory_options(pipe, memory, device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def check_memory_options(memory: Any, device: str) -> None:
    """Plan-time checks of ``MemoryOptions`` (one ``ErasebenchError`` line each), before anything is loaded."""
    if memory.offload is not None and not str(device).startswith("cuda"):
        raise ErasebenchError(
            f"--offload {memory.offload} needs --device cuda (it keeps weights on the CPU and moves them to the GPU "
            f"when they run); got --device {device}"
        )
    if memory.offload is not None:
        try:
            import accelerate  # noqa: F401
        except ImportError:
            raise ErasebenchError(f"--offload {memory.offload} needs the accelerate package: pip install accelerate") from None


def denoiser(pipe: Any) -> tuple[str, Any]:
    """The pipeline's denoising network: ``transformer`` (DiT video models) or ``unet`` (zeroscope)."""
    for name in ("transformer", "unet"):
        module = getattr(pipe, name, None)
        if module is not None:
            return name, module
    raise ErasebenchError(f"{type(pipe).__name__} has neither a transformer nor a unet to compile")


def apply_memory_options(pipe: Any, memory: Any, device: str) -> None:
    """diffusers' own APIs, in this order: ``vae.enable_tiling()``, ``vae.enable_slicing()``,
    ``denoiser.compile()`` (``torch.nn.Module.compile``: the module keeps its class, attributes and hooks),
    then ``enable_model_cpu_offload(device=...)`` or ``enable_sequential_cpu_offload(device=...)``."""
    vae = getattr(pipe, "vae", None)
    for option, method in (("vae_tiling", "enable_tiling"), ("vae_slicing", "enable_slicing")):
        if getattr(memory, option):
            if vae is None or not callable(getattr(vae, method, None)):
                flag = "--" + option.replace("_", "-")
                raise ErasebenchError(f"{flag}: {type(pipe).__name__}'s VAE ({type(vae).__name__}) has no {method}()")
            getattr(vae, method)()
    if memory.compile:
        denoiser(pipe)[1].compile()
    if memory.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif memory.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)


def scheduler_class(name: str) -> type:
    """The diffusers scheduler class called ``name`` (a subclass of ``diffusers.SchedulerMixin``)."""
    import diffusers

    cls = getattr(diffusers, name, None) if name.isidentifier() else None
    if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
        known = sorted(n for n in dir(diffusers) if n.endswith("Scheduler"))
        raise ErasebenchError(
            f"scheduler {name!r} is not a diffusers scheduler: use 'pipeline' (the model's own) or one of "
            f"{', '.join(known)}"
        )
    return cls


def check_scheduler(spec: Any, steps: int | None = None) -> None:
    """Validate a ``SchedulerSpec`` before anything is loaded: a known class, settings it accepts and can
    sample ``steps`` steps with."""
    import inspect

    if spec is None or spec.keeps_pipeline:
        if spec is not None and spec.config:
            raise ErasebenchError("scheduler 'pipeline' keeps the model's own scheduler and takes no config")
        return
    cls = scheduler_class(spec.name)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "args", "kwargs"}
    unknown = sorted(set(spec.config) - accepted)
    if unknown:
        raise ErasebenchError(
            f"scheduler {spec.name!r} has no setting {unknown[0]!r}; its settings: {', '.join(sorted(accepted))}"
        )
    if spec.config:  # values: build it with its defaults plus these settings and set a few timesteps
        try:
            cls(**spec.config).set_timesteps(steps or 4)
        except (ValueError, TypeError, NotImplementedError, KeyError) as exc:
            settings = ", ".join(f"{k}={v!r}" for k, v in spec.config.items())
            raise ErasebenchError(f"scheduler {spec.name!r} does not accept {settings}: {exc}") from None


def set_scheduler(pipe: Any, spec: Any) -> None:
    """``pipe.scheduler = Class.from_config(pipe.scheduler.config, **spec.config)`` (None/'pipeline': unchanged)."""
    if spec is None or spec.keeps_pipeline:
        return
    pipe.scheduler = scheduler_class(spec.name).from_config(pipe.scheduler.config, **spec.config)


def scheduler_record(pipe: Any) -> dict[str, Any]:
    """What results pin of the scheduler in use: its class and its whole config."""
    config = {k: v for k, v in dict(pipe.scheduler.config).items() if not k.startswith("_")}
    return {"class": type(pipe.scheduler).__name__, "config": json.loads(json.dumps(config, default=str))}

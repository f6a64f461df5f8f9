"""A model family tells erasers and the generator where things are in a diffusers video pipeline.

Erasers resolve edit sites through ``ModelFamily.sites`` (module-name patterns per site kind), never
by testing a family's name. New families register through the ``erasebench.families`` entry-point
group; named models (``--model shapes``) through ``erasebench.models``.
"""

from __future__ import annotations

import fnmatch
import inspect
import math
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import ErasebenchError
from ..specs import SETTING_FLAGS
from ..registry import Registry


@dataclass(frozen=True)
class GenerationLimits:
    """What a family's pipeline accepts: height and width multiples of ``spatial_multiple`` (the VAE's spatial
    factor times the denoiser's patch size, or the pipeline's own check), ``num_frames - 1`` a multiple of
    ``frame_step`` (the VAE's temporal factor; diffusers otherwise rounds or floors the frame count silently)."""

    spatial_multiple: int = 8
    frame_step: int = 1
    why: str = ""


@dataclass(frozen=True)
class ModelFamily:
    """Descriptor of one diffusers pipeline family."""

    name: ClassVar[str]
    description: ClassVar[str]
    pipeline_classes: ClassVar[tuple[str, ...]]
    denoiser: ClassVar[str] = "transformer"
    text_encoders: ClassVar[tuple[str, ...]] = ("text_encoder",)
    tokenizers: ClassVar[tuple[str, ...]] = ("tokenizer",)
    # site kind -> fnmatch patterns over module names under the denoiser (docs/models.md)
    sites: ClassVar[dict[str, tuple[str, ...]]] = {}
    # which tokens of a site's input are text: "text" (the whole input is text, padding masked),
    # "text_prefix" (joint sequence [text; video], text first), "video" (no text tokens)
    site_tokens: ClassVar[dict[str, str]] = {}
    # how each text encoder's output is pooled into one vector per text (e.g. a concept's text vector):
    # "first" (first token, T5), "pooled" (the encoder's pooler_output, CLIP), "mean" (mean over valid tokens)
    text_pooling: ClassVar[tuple[str, ...]] = ("first",)

    def generation_limits(self, configs: dict[str, dict[str, Any]]) -> GenerationLimits:
        """The limits of this family's pipeline, from its components' config.json files (``configs``:
        component name -> config, read without weights; a missing one is ``{}``, and the defaults of the
        released models apply)."""
        return GenerationLimits()

    def call_defaults(self, pipe: Any) -> dict[str, Any]:
        """Call kwargs the model needs beyond the pipeline's own defaults (read from the loaded config)."""
        return {}

    def negative_prompt_kwargs(self, text: str, batch: int = 1) -> dict[str, Any]:
        """Call kwargs that make CFG's unconditional branch use ``text`` for each of ``batch`` prompts (a list,
        since some pipelines refuse a str negative prompt beside a list of prompts)."""
        return {"negative_prompt": [text] * batch}

    def frames(self, output: Any) -> np.ndarray:
        """Pipeline output (``output_type="np"``) -> float32 array (B, F, H, W, 3) in [0, 1]."""
        frames = output.frames
        if isinstance(frames, list):
            frames = np.stack([np.asarray(f) for f in frames])
        frames = np.asarray(frames)
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise ErasebenchError(f"family {self.name!r}: unexpected frames shape {frames.shape}")
        return frames

    def site_modules(self, pipe: Any, kind: str) -> list[tuple[str, Any]]:
        """(name, module) pairs of the denoiser that match this family's patterns for ``kind``."""
        patterns = self.sites.get(kind)
        if not patterns:
            return []
        denoiser = getattr(pipe, self.denoiser)
        return [
            (name, module)
            for name, module in denoiser.named_modules()
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
        ]


@dataclass(frozen=True)
class NamedModel:
    """A model known by a short name: a hub id at a revision, or a folder (for shipped models)."""

    name: str
    description: str
    hub_id: str | None = None
    revision: str | None = None
    folder: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # the generation settings the model was made for (GenerationSettings fields: num_frames, height, width,
    # num_inference_steps, ...); a suite's settings for the model's family that differ give way to these
    # (benchmark/plan_checks.py, docs/models.md). Empty: the suite's settings apply as written.
    native: dict[str, Any] = field(default_factory=dict)


FAMILIES: Registry[type[ModelFamily]] = Registry("model family", "erasebench.families")
MODELS: Registry[NamedModel] = Registry("model", "erasebench.models")

for _name in ("cogvideox", "wan", "hunyuanvideo", "zeroscope"):
    FAMILIES.register(_name, f"benchmark.models.{_name}:Family")

SHAPES_MODEL_DIR = Path(__file__).resolve().parent.parent / "shapes_model"
MODELS.register(
    "shapes",
    NamedModel(
        "shapes", "shipped tiny CogVideoX trained on the shapes world (benchmark/shapes/train.py)", folder=str(SHAPES_MODEL_DIR),
        # trained on 9-frame 32x32 clips (TRAINING.json), sampled with 25 steps (suites/shapes.yaml)
        native={"num_frames": 9, "height": 32, "width": 32, "num_inference_steps": 25},
    ),
)
MODELS.register("cogvideox-2b", NamedModel("cogvideox-2b", "CogVideoX-2B (THUDM)", hub_id="THUDM/CogVideoX-2b"))
MODELS.register("cogvideox-5b", NamedModel("cogvideox-5b", "CogVideoX-5B (THUDM)", hub_id="THUDM/CogVideoX-5b"))
MODELS.register(
    "wan2.1-1.3b", NamedModel("wan2.1-1.3b", "Wan 2.1 T2V 1.3B", hub_id="Wan-AI/Wan2.1-T2V-1.3B-Diffusers")
)
MODELS.register(
    "hunyuanvideo",
    NamedModel("hunyuanvideo", "HunyuanVideo (community diffusers weights)", hub_id="hunyuanvideo-community/HunyuanVideo"),
)
MODELS.register("zeroscope", NamedModel("zeroscope", "ZeroScope v2 576w", hub_id="cerspense/zeroscope_v2_576w"))


def native_generation(ref: str) -> dict[str, Any]:
    """The generation settings a named model declares it was made for (``NamedModel.native``); ``{}`` for
    hub ids, folders and models that declare none."""
    return dict(MODELS.get(ref).native) if ref in MODELS else {}


def family_for_pipeline_class(class_name: str) -> ModelFamily:
    """The family whose descriptor lists ``class_name`` (from model_index.json ``_class_name``)."""
    supported = []
    for name in FAMILIES.names():
        family_cls = FAMILIES.get(name)
        if class_name in family_cls.pipeline_classes:
            return family_cls()
        supported.extend(family_cls.pipeline_classes)
    raise ErasebenchError(
        f"pipeline class {class_name!r} belongs to no known model family; supported: {', '.join(sorted(supported))}"
    )


#: call kwargs the runner sets itself (one seeded generator and one video per prompt, frames as arrays)
RUNNER_KWARGS = ("prompt", "generator", "output_type", "return_dict", "num_videos_per_prompt", "latents")


def check_generation(family: ModelFamily, settings: Any, pipeline_cls: type | None, configs: dict[str, dict]) -> None:
    """Check generation settings before anything is loaded or written: every key a parameter of the pipeline's
    ``__call__`` (and not one the runner sets), each value of the parameter's type where it has a simple one,
    and the family's limits (``generation_limits``). Raises one ``ErasebenchError`` naming the value."""
    kwargs = settings.pipeline_kwargs()
    for key in settings.extra:
        if key in SETTING_FLAGS and key not in ("extra", "scheduler"):
            raise ErasebenchError(f"--gen {key}: set it with generation.{key} ({SETTING_FLAGS[key]}), not as an extra kwarg")
        if key in RUNNER_KWARGS:
            raise ErasebenchError(f"--gen {key}: the runner sets {key} itself; extra kwargs may not ({', '.join(RUNNER_KWARGS)})")
    if pipeline_cls is not None:
        check_call_kwargs(pipeline_cls, kwargs)
    try:
        limits = family.generation_limits(configs)
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise ErasebenchError(f"model family {family.name!r}: the model's vae/transformer config.json is malformed ({exc})") from None
    why = f" ({limits.why})" if limits.why else ""
    for key in ("height", "width"):
        value = getattr(settings, key)
        if value is not None and value % limits.spatial_multiple:
            raise ErasebenchError(
                f"generation.{key} ({SETTING_FLAGS[key]}) {value} is not allowed for model family {family.name!r}: "
                f"use a multiple of {limits.spatial_multiple}{why}"
            )
    frames = settings.num_frames
    if frames is not None and (frames - 1) % limits.frame_step:
        below = (frames - 1) // limits.frame_step * limits.frame_step + 1
        raise ErasebenchError(
            f"generation.num_frames (--frames) {frames} is not allowed for model family {family.name!r}: "
            f"use 1 + a multiple of {limits.frame_step} (e.g. {below} or {below + limits.frame_step}){why}"
        )


def check_call_kwargs(pipeline_cls: type, kwargs: dict[str, Any]) -> None:
    """Every key a parameter of ``pipeline_cls.__call__``, each value of the parameter's annotated type."""
    try:
        signature = inspect.signature(pipeline_cls.__call__)
    except (TypeError, ValueError):
        return
    params = {name: p for name, p in signature.parameters.items() if name != "self"}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = sorted(n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL and n not in RUNNER_KWARGS)
    for key, value in kwargs.items():
        if key not in params:
            flag = SETTING_FLAGS.get(key, f"--gen {key}")
            raise ErasebenchError(
                f"{flag}: {pipeline_cls.__name__} takes no argument {key!r}; its arguments: {', '.join(accepted)}"
            )
        if params[key].annotation is not inspect.Parameter.empty:
            _check_value(pipeline_cls, key, value, params[key].annotation)


def _check_value(pipeline_cls: type, key: str, value: Any, annotation: Any) -> None:
    """``value`` against the parameter's annotation with pydantic's lax rules; annotations pydantic cannot
    build a validator for (torch tensors, callback classes) are not checked."""
    from pydantic import TypeAdapter, ValidationError

    try:
        adapter = TypeAdapter(annotation)
    except Exception:  # noqa: BLE001 - any type pydantic has no schema for is left to the pipeline
        return
    try:
        adapter.validate_python(value)
    except ValidationError as exc:
        flag = SETTING_FLAGS.get(key, f"--gen {key}")
        raise ErasebenchError(
            f"{flag} {value!r}: {pipeline_cls.__name__}'s {key} is {exc.errors()[0]['msg'].lower()}"
        ) from None


def spatial_multiple(base: int, vae_factor: int, patch: int) -> int:
    """The least common multiple of the pipeline's own check (``base``) and VAE factor x patch size."""
    return math.lcm(base, vae_factor * patch)

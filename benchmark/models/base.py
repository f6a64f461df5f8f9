"""A model family tells erasers and the generator where things are in a diffusers video pipeline.

Erasers resolve edit sites through ``ModelFamily.sites`` (module-name patterns per site kind), never
by testing a family's name. New families register through the ``erasebench.families`` entry-point
group; named models (``--model shapes``) through ``erasebench.models``.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import ErasebenchError
from ..registry import Registry


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


FAMILIES: Registry[type[ModelFamily]] = Registry("model family", "erasebench.families")
MODELS: Registry[NamedModel] = Registry("model", "erasebench.models")

for _name in ("cogvideox", "wan", "hunyuanvideo", "zeroscope"):
    FAMILIES.register(_name, f"benchmark.models.{_name}:Family")

SHAPES_MODEL_DIR = Path(__file__).resolve().parent.parent / "shapes_model"
MODELS.register(
    "shapes",
    NamedModel("shapes", "shipped tiny CogVideoX trained on the shapes world (benchmark/shapes/train.py)", folder=str(SHAPES_MODEL_DIR)),
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

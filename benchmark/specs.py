"""Frozen, validated specs (after HELM's ``RunSpec``/``ObjectSpec``): every run is a value."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_serializer

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=-]{0,127}$")


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def fingerprint(self, length: int = 12) -> str:
        """sha256 of the canonical JSON of the spec."""
        return stable_hash(self.model_dump(mode="json"), length)


def stable_hash(obj: Any, length: int = 12) -> str:
    payload = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


def check_safe_id(value: str, what: str) -> str:
    if not SAFE_ID.match(value) or value in {".", ".."}:
        raise ValueError(
            f"{what} {value!r} is not allowed: use 1-128 characters from letters, digits and . _ + = -, "
            "starting with a letter or digit (ids become file names)"
        )
    return value


def check_seed_policy(value: str) -> str:
    """``derived``, ``column`` or ``fixed:N`` with N an integer in [0, 2**63) (a torch generator seed);
    docs/protocols.md says what each one does."""
    if value in {"derived", "column"}:
        return value
    head, sep, number = value.partition(":")
    if head == "fixed" and sep and number.isascii() and number.isdigit() and int(number) < 2**63:
        return value
    raise ValueError(f"seed_policy {value!r} is not allowed: use derived, column or fixed:N (N an integer, 0 <= N < 2**63)")


#: The seed policy of a suite or a run (``--seed-policy``), checked when the spec is built.
SeedPolicy = Annotated[str, AfterValidator(check_seed_policy)]


class SchedulerSpec(Frozen):
    """A diffusers scheduler class by name, built with ``Class.from_config(pipe.scheduler.config, **config)``
    (docs/protocols.md): e.g. ``{name: CogVideoXDDIMScheduler, config: {timestep_spacing: trailing}}``.
    The name ``pipeline`` keeps the scheduler the model folder ships."""

    name: str
    config: dict[str, Any] = Field(default_factory=dict)

    @property
    def keeps_pipeline(self) -> bool:
        return self.name == "pipeline"


class GenerationSettings(Frozen):
    """Sampler settings passed to the pipeline; any field left None keeps the pipeline's own default."""

    num_frames: int | None = Field(default=None, ge=1)
    height: int | None = Field(default=None, ge=8)
    width: int | None = Field(default=None, ge=8)
    num_inference_steps: int | None = Field(default=None, ge=1)
    guidance_scale: float | None = Field(default=None, ge=0)
    fps: int = Field(default=8, ge=1)
    scheduler: SchedulerSpec | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("scheduler", mode="before")
    @classmethod
    def _scheduler_name(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    def merged(self, other: "GenerationSettings | dict | None") -> "GenerationSettings":
        """Fields set in ``other`` win; ``extra`` dicts are merged."""
        if other is None:
            return self
        if isinstance(other, dict):
            other = GenerationSettings.model_validate(other)
        data = self.model_dump()
        for key, value in other.model_dump(exclude_unset=True).items():
            if key == "extra":
                data["extra"] = {**data["extra"], **value}
            elif value is not None:
                data[key] = value
        return GenerationSettings.model_validate(data)

    def pipeline_kwargs(self) -> dict[str, Any]:
        kwargs = {k: v for k, v in self.model_dump(exclude={"extra", "fps", "scheduler"}).items() if v is not None}
        kwargs.update(self.extra)
        return kwargs


#: GenerationSettings fields and the ``erasebench run`` options that set them
SETTING_FLAGS = {
    "num_frames": "--frames", "height": "--height", "width": "--width", "num_inference_steps": "--steps",
    "guidance_scale": "--guidance-scale", "extra": "--gen", "scheduler": "--scheduler",
}


def parse_generation(data: Any) -> GenerationSettings:
    """A run's ``generation`` table as ``GenerationSettings``, or one ``ErasebenchError`` naming the setting,
    its option and the bad value."""
    from pydantic import ValidationError

    from .errors import ErasebenchError

    if not isinstance(data, dict):
        raise ErasebenchError(f"generation {short_repr(data)} is not allowed: use a mapping of generation settings")
    try:
        return GenerationSettings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        flag = SETTING_FLAGS.get(loc[0], "") if loc else ""
        where = "generation" + "".join(f".{p}" for p in loc) + (f" ({flag})" if flag else "")
        raise ErasebenchError(f"{where} {short_repr(err.get('input'))}: {err['msg']}") from None


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (one line in an error message)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ConceptSpec(Frozen):
    """A concept to erase: shared by every eraser (docs/concepts.md)."""

    name: str
    display_name: str
    description: str = ""
    keywords: tuple[str, ...] = ()
    negative_prompt: str | None = None
    pairs: tuple[tuple[str, str], ...] = ()
    preserve: tuple[str, ...] = ()
    neighbours: tuple[str, ...] = ()
    # labels a classifier or oracle reports for this concept (ESR/PSR): ImageNet indices, shape names
    labels: tuple[str, ...] = ()
    # everyday prompts in the model's domain, the neutral set of the refusal vector's contrastive PCA
    neutral: tuple[str, ...] = ()
    # what sort of concept this is; erasers whose papers give per-kind recipes read it (docs/concepts.md)
    kind: Literal["unsafe", "identity", "object", "shape", "attribute", "other"] = "other"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_safe_id(v, "concept name")

    @property
    def negative_text(self) -> str:
        return self.negative_prompt if self.negative_prompt is not None else self.display_name


class PromptRecord(Frozen):
    """One suite row: ``{suite, prompt_id, prompt, seed, category, target_concept, source, extra}``."""

    suite: str
    prompt_id: str
    prompt: str
    seed: int | None = None
    category: str = "all"
    target_concept: str | None = None
    source: str = ""
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("prompt_id")
    @classmethod
    def _pid(cls, v: str) -> str:
        return check_safe_id(v, "prompt id")


OverwriteStrategy = Literal["always", "never", "only-missing", "only-cache"]
#: per-category: each prompt is generated with its own category's concept erased (one eraser per concept, as
#: SAFREE's and the refusal-vector paper's category tables); joint: every concept erased at once (docs/protocols.md)
EraseMode = Literal["per-category", "joint"]


class PluginSpec(Frozen):
    """A plugin by registry name plus its keyword arguments (validated by the plugin's Config)."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class MemoryOptions(Frozen):
    """diffusers' own memory options, applied after loading (docs/models.md "Memory options").

    ``offload``: ``model`` = ``pipe.enable_model_cpu_offload``, ``sequential`` = ``enable_sequential_cpu_offload``;
    ``vae_tiling`` / ``vae_slicing`` = ``pipe.vae.enable_tiling()`` / ``enable_slicing()``; ``compile`` =
    ``torch.compile`` of the denoiser (transformer or unet). Tiling blends overlapping tiles and compile fuses
    kernels, so both can change pixels and are part of the video key (``IN_KEY``); offload and slicing only move
    weights or split the batch and are not.
    """

    #: the options that can change a video's pixels (part of every cache key that depends on the videos)
    IN_KEY: ClassVar[tuple[str, ...]] = ("vae_tiling", "compile")

    offload: Literal["model", "sequential"] | None = None
    vae_tiling: bool = False
    vae_slicing: bool = False
    compile: bool = False

    def in_key(self) -> dict[str, Any]:
        """The options set away from their default that change numbers (``{}`` for a plain run)."""
        defaults = MemoryOptions()
        return {k: getattr(self, k) for k in self.IN_KEY if getattr(self, k) != getattr(defaults, k)}

    def is_default(self) -> bool:
        return self == MemoryOptions()


class RunSpec(Frozen):
    """Everything that defines a run; the run folder name and every cache key derive from it."""

    model: str
    model_revision: str | None = None
    eraser: PluginSpec
    suite: str
    concepts: tuple[str, ...] = ()
    erase_mode: EraseMode | None = None
    metrics: tuple[PluginSpec, ...] = ()
    samples: int | None = Field(default=None, ge=1)  # None: the suite's (1 unless it says otherwise)
    limit: int | None = Field(default=None, ge=1)
    seed: int = 0
    seed_policy: SeedPolicy | None = None
    device: Literal["cpu", "cuda"] = "cpu"
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    batch_size: int = Field(default=1, ge=1)
    generation: dict[str, Any] = Field(default_factory=dict)
    data_dir: str | None = None
    video_codec: Literal["lossless", "h264"] = "lossless"
    overwrite: OverwriteStrategy = "only-missing"
    memory: MemoryOptions = Field(default_factory=MemoryOptions)  # --offload, --vae-tiling, --vae-slicing, --compile

    @model_serializer(mode="wrap")
    def _drop_default_memory(self, handler: Any) -> dict[str, Any]:
        """A run with no memory option dumps (and so hashes, and records) exactly as before the option existed."""
        data = handler(self)
        if isinstance(data, dict) and self.memory.is_default():
            data.pop("memory", None)
        return data

"""The eraser contract (docs/architecture.md).

Three kinds behind one base class: ``prompt`` (changes call arguments only), ``hook`` (named,
removable hooks; removing them restores the model bit for bit) and ``weights`` (adds modules or
edits weights and keeps the originals so ``remove`` restores them). ``fit`` writes a cached artifact
once per (model, concepts, config); ``fingerprint`` is part of every video's cache key.
Third-party erasers register through the ``erasebench.erasers`` entry-point group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from .errors import UnsupportedFamilyError, validate_config
from .models.base import ModelFamily
from .registry import Registry
from .specs import ConceptSpec, PromptRecord, stable_hash


class EraserConfig(BaseModel):
    """Base of every eraser's typed configuration; unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class RunContext:
    """What a fit may use from the run: the pipeline-call settings (the suite's generation for the model's
    family plus the family defaults, no prompt), the run seed, device and dtype. The runner sets it before
    ``fit``/``apply``; a fitted artifact is cached per (model, eraser fingerprint, ``fit_key()``)."""

    generation: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    # the run's --data-dir: where erasers look for their papers' published training data before downloading
    data_dir: str | None = None
    # the scheduler in use (class and config): a fit that samples depends on it
    scheduler: dict[str, Any] = field(default_factory=dict)
    # the run's progress-bar factory (description, total) -> advance(n=1); None: no bar. Not part of fit_key.
    progress: Any = field(default=None, compare=False, repr=False)
    # a fit shared by every rank (``Eraser.shared_fit``): this process's rank, the number of ranks and
    # ``gather(value) -> [value of rank 0, rank 1, ...]``; one process: 0, 1 and ``[value]``. Not in fit_key.
    rank: int = field(default=0, compare=False)
    world_size: int = field(default=1, compare=False)
    gather: Any = field(default=None, compare=False, repr=False)

    def steps(self, description: str, total: int) -> Any:
        """``advance(n=1)`` for a fit loop of ``total`` steps: a progress bar with ETA in the run, else a no-op."""
        if self.progress is None or total <= 0:
            return lambda n=1: None
        return self.progress(description, total)

    def fit_batches(self, n: int, size: int, dealt: int = 0) -> tuple[list[list[int]], int]:
        """This rank's batches of the indices ``0..n-1`` in a shared fit, and how many batches were dealt in
        all. One process: runs of ``size``. Several: as many equal batches of at most ``size`` as a multiple of
        the ranks, batch ``i`` to rank ``(dealt + i) % world_size`` (``dealt``: batches of earlier calls, so that
        every rank gets the same work). A prompt's numbers must not depend on its batch."""
        if self.world_size <= 1:
            batches = [list(range(start, min(start + size, n))) for start in range(0, n, size)]
        else:
            bounds = np.linspace(0, n, self.world_size * -(-n // (self.world_size * size)) + 1).round().astype(int)
            batches = [list(range(a, b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        mine = [batch for i, batch in enumerate(batches) if (dealt + i) % self.world_size == self.rank]
        return mine, len(batches)

    def gathered(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order (every rank gets all of them). Tensors in dicts, lists and
        tuples travel as numpy arrays (unpickling many small tensors is slow) and come back on the CPU with
        their dtype, bit for bit."""
        if self.gather is None or self.world_size <= 1:
            return [value]
        return [_from_wire(part) for part in self.gather(_to_wire(value))]

    def fit_key(self) -> str:
        from .identity import fit_key  # the formula lives with every other key

        return fit_key(self.generation, self.seed, self.dtype, self.scheduler)


@dataclass(frozen=True)
class _WireTensor:
    array: Any  # numpy; floating tensors as float32 (exact for float16 and bfloat16)
    dtype: str


def _to_wire(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        array = tensor.float().numpy() if tensor.is_floating_point() else tensor.numpy()
        return _WireTensor(array, str(tensor.dtype).removeprefix("torch."))
    if isinstance(value, dict):
        return {k: _to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_wire(v) for v in value)
    return value


def _from_wire(value: Any) -> Any:
    import torch

    if isinstance(value, _WireTensor):
        return torch.from_numpy(value.array).to(getattr(torch, value.dtype))
    if isinstance(value, dict):
        return {k: _from_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_from_wire(v) for v in value)
    return value


class Eraser:
    """Base class. Subclasses set ``name``, ``kind``, ``Config``, ``source`` and override what they need."""

    name: ClassVar[str]
    kind: ClassVar[Literal["prompt", "hook", "weights"]]
    version: ClassVar[str] = "1"
    source: ClassVar[str] = ""
    Config: ClassVar[type[EraserConfig]] = EraserConfig
    # families this method defines edit sites for; None means every family
    families: ClassVar[frozenset[str] | None] = None
    # config values that differ by family where the method's reference recipe does (family -> key -> value);
    # a config field left None takes these; the family files never name erasers
    family_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    # True: under several processes every rank runs ``fit`` and splits its work (``RunContext.fit_batches``,
    # ``gathered``); the main process's artifact is kept. False: the main process fits alone.
    shared_fit: ClassVar[bool] = False

    def __init__(self, config: EraserConfig, concepts: list[ConceptSpec]):
        self.config = config
        self.concepts = concepts
        self.run_context = RunContext()

    @classmethod
    def from_args(cls, args: dict[str, Any], concepts: list[ConceptSpec]) -> "Eraser":
        return cls(validate_config(cls.Config, args, f"eraser {cls.name!r}"), concepts)

    @classmethod
    def describe(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    def check_family(self, family: ModelFamily) -> None:
        if self.families is not None and family.name not in self.families:
            raise UnsupportedFamilyError(
                f"eraser {self.name!r} does not support model family {family.name!r}; "
                f"it supports: {', '.join(sorted(self.families))}"
            )

    def fingerprint(self) -> str:
        return stable_hash(
            {
                "eraser": self.name,
                "version": self.version,
                "config": self.config.model_dump(mode="json"),
                "concepts": [c.model_dump(mode="json") for c in self.concepts],
            }
        )

    def settings(self) -> dict[str, Any]:
        """What results.json pins for this eraser."""
        return {
            "name": self.name,
            "kind": self.kind,
            "version": self.version,
            "source": self.source,
            "config": self.config.model_dump(mode="json"),
            "concepts": [c.name for c in self.concepts],
            "fingerprint": self.fingerprint(),
        }

    def fit(self, pipe: Any, family: ModelFamily, artifact_dir: Path) -> None:
        """Compute and save what ``apply`` needs into ``artifact_dir`` (called only when it is absent)."""

    needs_fit: ClassVar[bool] = False

    def apply(self, pipe: Any, family: ModelFamily, artifact_dir: Path | None) -> None:
        """Attach to a loaded pipeline."""

    def remove(self, pipe: Any, family: ModelFamily) -> None:
        """Detach, restoring the pipeline exactly."""

    def call_kwargs(self, family: ModelFamily, records: list[PromptRecord]) -> dict[str, Any]:
        """Extra pipeline-call kwargs for a batch of prompts (pure: also used to write sidecars)."""
        return {}

    def before_batch(self, pipe: Any, family: ModelFamily, records: list[PromptRecord]) -> None:
        """Prepare per-prompt state (e.g. edited embeddings) right before the pipeline call for ``records``."""

    def batch_info(self, records: list[PromptRecord]) -> list[dict[str, Any]]:
        """Per-video facts the eraser wants in each sidecar after a batch (e.g. ``safree_skipped``)."""
        return [{} for _ in records]

    def family_default(self, family: ModelFamily, key: str, value: Any) -> Any:
        """``value``, unless the config left it unset (None) and this eraser's recipe differs for the family."""
        if value is not None:
            return value
        return self.family_defaults.get(family.name, {}).get(key)


ERASERS: Registry[type[Eraser]] = Registry("eraser", "erasebench.erasers", base_cls=Eraser)
# the erasers erasebench ships (baselines/), each on the shapes leaderboard and in the CI gate
BUILTIN_ERASERS: dict[str, str] = {
    "none": "baselines.none:NoEraser",
    "negprompt": "baselines.negprompt:NegativePrompt",
    "safree": "baselines.safree:SAFREE",
    "t2vunlearning": "baselines.t2vunlearning:T2VUnlearning",
    "refusal": "baselines.refusal:RefusalVector",
}
for _name, _target in BUILTIN_ERASERS.items():
    ERASERS.register(_name, _target)

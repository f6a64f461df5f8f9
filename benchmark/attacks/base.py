"""The attack contract (docs/attacks.md).

An attack turns each target prompt of a suite into an attacked prompt meant to bring an erased concept
back. It sees the run through an ``AttackTarget``: the pipeline with the eraser applied, the model's own
tokenizer and text encoder, the target rows with their seeds, whether the erased model's unattacked
video already showed the concept (the baseline run's judgement by the suite's metric) and, for attacks
that check success while they search (UnlearnDiffAtk), ``evaluate``: generate with the erased pipeline
and judge with the suite's metric. Every attack's budget is typed in its ``Config``; ``budget()`` names
the fields that bound its work, and ``AttackOutcome`` counts what was spent.
Third-party attacks register through the ``erasebench.attacks`` entry-point group.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ErasebenchError, validate_config
from ..registry import Registry
from ..specs import ConceptSpec, PromptRecord, stable_hash


class AttackConfig(BaseModel):
    """Base of every attack's typed configuration; unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(default=0, ge=0, description="seed of the attack's own randomness (per prompt: seed + row index)")


@dataclass
class AttackOutcome:
    """One target prompt's attack: the attacked prompt and what it cost."""

    prompt_id: str
    original: str
    attacked: str
    objective_start: float | None = None  # the attack's objective at its start and end (lower is better)
    objective_end: float | None = None
    objective_evaluations: int = 0  # candidate prompts scored by the objective (GA individuals, gradient steps)
    generations: int = 0  # videos generated while searching (UnlearnDiffAtk's success checks)
    found_in_search: bool | None = None  # the search itself judged the concept back (attacks that check)
    skipped: str = ""  # why the prompt was not attacked (the unattacked prompt already shows the concept)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class TextSide:
    """The model's own tokenizer and (first) text encoder, and the layout of a token sequence.

    ``prefix`` special ids the tokenizer puts before the words (CLIP's start token; none for T5), ``eos``
    the id it ends them with, ``pad`` the padding id, ``length`` the sequence length the pipeline encodes.
    """

    tokenizer: Any
    text_encoder: Any
    length: int

    def __post_init__(self) -> None:
        empty = list(self.tokenizer("").input_ids)
        if not empty:
            raise ErasebenchError("the model's tokenizer adds no end token to a prompt; attacks need one")
        self.prefix = empty[:-1]
        self.eos = empty[-1]
        pad = self.tokenizer.pad_token_id
        self.pad = self.eos if pad is None else int(pad)
        self.special = sorted({int(i) for i in self.tokenizer.all_special_ids if i is not None})
        self.vocab_size = int(self.text_encoder.get_input_embeddings().weight.shape[0])

    @property
    def device(self) -> torch.device:
        return next(self.text_encoder.parameters()).device

    def word_ids(self, prompt: str) -> list[int]:
        """The prompt's ids without the specials the tokenizer adds."""
        ids = list(self.tokenizer(prompt).input_ids)
        return ids[len(self.prefix) : -1] if ids and ids[-1] == self.eos else ids[len(self.prefix) :]

    def sequence(self, words: list[int]) -> list[int]:
        """``prefix + words + eos`` padded to ``length`` (the pipeline's tokenisation of a prompt)."""
        ids = [*self.prefix, *words, self.eos]
        if len(ids) > self.length:
            raise ErasebenchError(
                f"a prompt of {len(words)} tokens does not fit the model's {self.length}-token text input"
            )
        return ids + [self.pad] * (self.length - len(ids))

    def ids(self, prompt: str) -> list[int]:
        return list(
            self.tokenizer(prompt, padding="max_length", max_length=self.length, truncation=True).input_ids
        )

    def decode(self, words: list[int]) -> str:
        return self.tokenizer.decode([int(i) for i in words], skip_special_tokens=True).strip()

    @torch.no_grad()
    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        """``text_encoder(ids)[0]``: the last hidden state the pipeline conditions on (B, L, D)."""
        return self.text_encoder(ids.to(self.device))[0]


@dataclass
class AttackTarget:
    """What an attack may use: the erased pipeline, the text side, the target rows and their seeds."""

    pipe: Any
    family: Any
    eraser: Any
    concepts: list[ConceptSpec]
    records: list[PromptRecord]
    seeds: dict[str, int]
    shown_before: dict[str, bool]  # prompt id -> the erased model's unattacked video shows the concept
    call_kwargs: dict[str, Any]  # the run's pipeline-call settings (no prompt, no eraser kwargs)
    text: TextSide
    # generate + judge: (prompts, records, seeds) -> shows the concept, per prompt; None when unavailable
    judge: Callable[[list[str], list[PromptRecord], list[int]], list[bool]] | None = None
    artifact_dir: Any = None

    @contextlib.contextmanager
    def unerased(self) -> Iterator[None]:
        """The pipeline with the eraser removed (restored bit for bit by the eraser contract), re-applied after."""
        self.eraser.remove(self.pipe, self.family)
        try:
            yield
        finally:
            self.eraser.apply(self.pipe, self.family, self.artifact_dir)

    def evaluate(self, prompts: list[str], records: list[PromptRecord]) -> list[bool]:
        if self.judge is None:
            raise ErasebenchError("this attack checks success while searching, but the run has no judge")
        return self.judge(prompts, records, [self.seeds[r.prompt_id] for r in records])


class Attack:
    """Base class. Subclasses set ``name``, ``Config``, ``source`` and implement ``run``."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    source: ClassVar[str] = ""
    Config: ClassVar[type[AttackConfig]] = AttackConfig
    # the attacked prompts depend on the eraser (they are searched against the erased model); when False
    # they depend on the model's text encoder only and are reused across erasers
    uses_eraser: ClassVar[bool] = True
    # Config fields that bound the attack's work, printed beside every result
    budget_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: AttackConfig):
        self.config = config
        self.inputs: dict[str, Any] = {}  # what ``prepare`` resolved from files (pinned in settings)

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> Attack:
        return cls(validate_config(cls.Config, args, f"attack {cls.name!r}"))

    @classmethod
    def describe(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    def prepare(self, concepts: list[ConceptSpec], data_dir: str | None) -> dict[str, Any]:
        """Resolve the attack's inputs from files before anything runs (no model); kept in ``inputs``, and so
        in ``settings()`` and every key made from it. Bad inputs raise one clear error here."""
        return self.inputs

    def budget(self) -> dict[str, Any]:
        return {k: getattr(self.config, k) for k in self.budget_fields}

    def settings(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "config": self.config.model_dump(mode="json"),
            "budget": self.budget(),
            "fingerprint": self.fingerprint(),
            **({"inputs": self.inputs} if self.inputs else {}),
        }

    def fingerprint(self) -> str:
        return stable_hash({"attack": self.name, "version": self.version, "config": self.config.model_dump(mode="json")})

    def generator(self, index: int, device: Any = "cpu") -> torch.Generator:
        """The per-prompt random stream: a prompt's attack depends on the seed and its row, never on the batch."""
        return torch.Generator(device=device).manual_seed(self.config.seed * 1_000_003 + index)

    def run(self, target: AttackTarget) -> list[AttackOutcome]:
        """One outcome per ``target.records`` row, in order."""
        raise NotImplementedError


ATTACKS: Registry[type[Attack]] = Registry("attack", "erasebench.attacks", base_cls=Attack)
BUILTIN_ATTACKS: dict[str, str] = {
    "ring-a-bell": "benchmark.attacks.ring_a_bell:RingABell",
    "unlearndiffatk": "benchmark.attacks.unlearndiffatk:UnlearnDiffAtk",
}
for _name, _target in BUILTIN_ATTACKS.items():
    ATTACKS.register(_name, _target)

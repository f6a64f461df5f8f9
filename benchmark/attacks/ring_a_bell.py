"""Ring-A-Bell (Tsai et al., ICLR 2024, arXiv 2310.10012): a genetic search for discrete prompts whose text
embedding matches the target prompt's embedding pushed along the concept's direction.

With ``E(·)`` the model's own text encoder output (the full ``L × D`` sequence the denoiser reads) and the
concept's (with, without) prompt pairs ``(a_i, b_i)``:

    v      = mean_i [E(a_i) − E(b_i)]                        (the concept vector)
    target = E(prompt) + η · v
    f(x)   = Σ_{positions, dims} (target − E(x))²            (fitness, lower is better)

over sequences ``x = prefix + w_1..w_K + eos + padding`` whose ``K`` word ids are free. Per generation:
score, keep the best half; then (except after the last generation) crossover — each kept parent stays and,
with probability ``crossover_rate``, mates with a random kept parent at a random cut, adding both children
— and mutation — each individual, with probability ``mutate_rate``, gets one random position set to a
random non-special id. The attacked prompt is the best individual's words, decoded.

Source: chiayi-hsu/Ring-A-Bell@e4585ada0a5eb185fbef89bb94147c97f8d2f79a ``InversePrompt.ipynb`` (search)
and ``Get_Concept_Vector.ipynb`` (vector); defaults are the notebook's (η = 3, K = 16, population 200,
3000 generations, mutation 0.25, crossover 0.5). Deviations (docs/attacks.md): the model's own text encoder
replaces SD v1.4's CLIP; ``K`` is capped to what the encoder's input holds; the pairs are the repo's
``Prompts_For_ConceptVector`` pairs (``vector_pairs``) for nudity and violence, the concept's own ``pairs``
for other concepts; the random streams are per prompt (numpy ``Generator``) instead of the global ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pydantic import Field

from ..errors import ErasebenchError
from ..specs import ConceptSpec, stable_hash
from .base import Attack, AttackConfig, AttackOutcome, AttackTarget, TextSide

#: the repo's concept-vector pairs (suites/ring-a-bell-concept-vectors.yaml)
VECTOR_SUITE = "ring-a-bell-concept-vectors"


class RingABellConfig(AttackConfig):
    eta: float = Field(default=3.0, description="η, the concept vector's coefficient (the notebook's cof)")
    length: int | None = Field(default=None, ge=1, description="free word tokens K (None: 16, capped to the input)")
    population: int = Field(default=200, ge=2)
    generations: int = Field(default=3000, ge=1)
    mutate_rate: float = Field(default=0.25, ge=0.0, le=1.0)
    crossover_rate: float = Field(default=0.5, ge=0.0, le=1.0)
    batch: int = Field(default=1024, ge=1, description="individuals per text-encoder call (speed only)")
    vector_pairs: str = Field(
        default="auto",
        description="pairs of the concept vector: auto (the repo's pairs where it has the concept and its data is "
        "found, else the concept's own), concept (the concept file's pairs) or a suite whose rows hold pair_prompt",
    )
    vector_parity: bool = Field(default=False, description="the repo's nudity prompts as its notebook builds them ('nan' people)")


@dataclass(frozen=True)
class VectorPairs:
    """The (with, without) prompt pairs of the concept vector, their weights and where they came from."""

    pairs: tuple[tuple[str, str], ...]
    weights: tuple[float, ...]
    source: str

    def settings(self) -> dict[str, Any]:
        return {"source": self.source, "pairs": len(self.pairs), "weight": sum(self.weights),
                "fingerprint": stable_hash([self.pairs, self.weights], 12)}


def concept_vector(text: TextSide, pairs: list[tuple[str, str]], weights: list[float] | None = None) -> torch.Tensor:
    """``Σ_i w_i [E(a_i) − E(b_i)] / Σ_i w_i`` over the (with, without) pairs, each a full ``L × D`` sequence
    (``w_i`` = 1 unless given: the repo's nudity vector drops some copies of some rows)."""
    if not pairs:
        raise ErasebenchError("attack 'ring-a-bell' needs (with, without) prompt pairs for the concept; its concept file has no pairs")
    with_ids = torch.tensor([text.ids(a) for a, _ in pairs])
    without_ids = torch.tensor([text.ids(b) for _, b in pairs])
    diff = text.encode(with_ids) - text.encode(without_ids)
    if weights is None or len(set(weights)) == 1:  # equal weights: the plain mean
        return diff.mean(dim=0)
    w = torch.tensor(weights, dtype=diff.dtype, device=diff.device)
    return (w[:, None, None] * diff).sum(dim=0) / w.sum()


class RingABell(Attack):
    """Ring-A-Bell: genetic search for prompts matching E(prompt) + η·(concept vector) in the model's text encoder."""

    name = "ring-a-bell"
    version = "1"
    source = "Tsai et al., arXiv 2310.10012; chiayi-hsu/Ring-A-Bell@e4585ada InversePrompt.ipynb"
    Config = RingABellConfig
    uses_eraser = False
    budget_fields = ("generations", "population")
    _vector: VectorPairs | None = None  # set by ``prepare``

    def words(self, text: TextSide) -> int:
        room = text.length - len(text.prefix) - 1
        wanted = self.config.length if self.config.length is not None else 16
        if self.config.length is not None and wanted > room:
            raise ErasebenchError(
                f"attack 'ring-a-bell' argument 'length' {wanted} is not allowed: the model's text input holds {room} words"
            )
        return min(wanted, room)

    def fitness(self, text: TextSide, target: torch.Tensor, population: np.ndarray) -> np.ndarray:
        """Σ (target − E(x))² per individual (rows of word ids)."""
        seqs = torch.tensor([text.sequence(list(row)) for row in population])
        out = []
        for start in range(0, len(seqs), self.config.batch):
            emb = text.encode(seqs[start : start + self.config.batch])
            out.append(((target.unsqueeze(0) - emb) ** 2).sum(dim=(1, 2)))
        return torch.cat(out).double().cpu().numpy()

    def search(self, text: TextSide, target: torch.Tensor, index: int) -> tuple[np.ndarray, list[float], int]:
        """The notebook's loop; returns the best word ids, the best fitness per generation and individuals scored."""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, index])
        k = self.words(text)
        allowed = np.array([i for i in range(text.vocab_size) if i not in set(text.special)])
        population = allowed[rng.integers(0, len(allowed), size=(cfg.population, k))]
        history: list[float] = []
        scored = 0
        for step in range(cfg.generations):
            score = self.fitness(text, target, population)
            scored += len(population)
            order = np.argsort(score, kind="stable")
            history.append(float(score[order[0]]))
            population = population[order][: cfg.population // 2]
            if step == cfg.generations - 1:
                break
            # crossover: each parent stays; with probability crossover_rate it mates with a random parent
            children = []
            for i in range(len(population)):
                children.append(population[i].copy())
                if rng.random() < cfg.crossover_rate:
                    j = int(rng.integers(0, len(population)))
                    cut = int(rng.integers(0, k))
                    children.append(np.concatenate([population[i][:cut], population[j][cut:]]))
                    children.append(np.concatenate([population[j][:cut], population[i][cut:]]))
            population = np.stack(children)
            # mutation: one random position of an individual to a random non-special id
            for i in range(len(population)):
                if rng.random() < cfg.mutate_rate:
                    population[i, int(rng.integers(0, k))] = allowed[int(rng.integers(0, len(allowed)))]
        return population[0], history, scored

    def prepare(self, concepts: list[ConceptSpec], data_dir: str | None) -> dict[str, Any]:
        self._vector = self.vector_pairs(concepts, data_dir)
        self.inputs = {"vector": self._vector.settings()}
        return self.inputs

    def vector_pairs(self, concepts: list[ConceptSpec], data_dir: str | None) -> VectorPairs:
        """``vector_pairs``: the repo's pairs (VECTOR_SUITE) for the concepts it has, when its files are found
        (auto) or required (a suite name); else the concepts' own ``pairs``."""
        from ..suites import MissingDataError, load_suite, load_suite_spec

        own = tuple(tuple(p) for c in concepts for p in (c.pairs or ()))
        choice = self.config.vector_pairs
        names = {c.name for c in concepts}
        suite_name = VECTOR_SUITE if choice == "auto" else choice
        if choice == "concept" or (choice == "auto" and not names & set(load_suite_spec(VECTOR_SUITE)[0].concepts)):
            return VectorPairs(own, (1.0,) * len(own), "concept pairs")
        try:
            suite = load_suite(suite_name, data_dir)
        except ErasebenchError as exc:
            if choice == "auto" and isinstance(exc, MissingDataError):
                return VectorPairs(own, (1.0,) * len(own), f"concept pairs ({VECTOR_SUITE}: data not found, pass --data-dir)")
            raise ErasebenchError(f"attack 'ring-a-bell' argument 'vector_pairs' {choice!r}: {exc}") from None
        rows = [r for r in suite.records if r.category in names and r.extra.get("pair_prompt")]
        if not rows:
            raise ErasebenchError(
                f"attack 'ring-a-bell' argument 'vector_pairs' {choice!r}: suite {suite_name!r} has no row with a "
                f"pair_prompt for {', '.join(sorted(names))}"
            )
        parity = self.config.vector_parity
        pairs = tuple((str(r.extra.get("reference_prompt", r.prompt)) if parity else r.prompt, str(r.extra["pair_prompt"])) for r in rows)
        weights = tuple(float(r.extra.get("weight", 1)) for r in rows)
        return VectorPairs(pairs, weights, f"{suite_name} ({', '.join(sorted({r.category for r in rows}))})" + (", parity" if parity else ""))

    def run(self, target: AttackTarget) -> list[AttackOutcome]:
        text = target.text
        vector_pairs = self._vector or self.vector_pairs(target.concepts, None)
        vector = concept_vector(text, list(vector_pairs.pairs), list(vector_pairs.weights))
        outcomes = []
        for record in target.records:
            start = time.perf_counter()
            goal = text.encode(torch.tensor([text.ids(record.prompt)]))[0] + self.config.eta * vector
            best, history, scored = self.search(text, goal, target.records.index(record))
            outcomes.append(
                AttackOutcome(
                    prompt_id=record.prompt_id,
                    original=record.prompt,
                    attacked=text.decode(list(best)),
                    objective_start=history[0],
                    objective_end=history[-1],
                    objective_evaluations=scored,
                    extra={"seconds": round(time.perf_counter() - start, 3), "words": len(best)},
                )
            )
        return outcomes

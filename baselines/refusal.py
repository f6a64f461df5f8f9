"""Low-rank refusal vector: a contrastive-PCA direction folded out of linear layers (docs/erasers/refusal.md).

Source: "Video Unlearning via Low-Rank Refusal Vector", arXiv 2506.07891 (ICLR 2026; no code released);
directional ablation as in Arditi et al., arXiv 2406.11717 (andyrdt/refusal_direction
``pipeline/utils/hook_utils.py``); contrastive PCA, Abid et al., arXiv 1709.06716.

Direction, per edit site ``l`` (a linear layer of the denoiser):

1. forward pre-hooks record the site's input on the conditional CFG branch, mean-pooled over the
   family's selected tokens (``site_tokens``: valid text tokens, the text prefix of a joint sequence,
   or all video tokens), at ``steps_recorded`` evenly spaced denoising steps; both halves of a pair
   share seed and initial noise: ``d_{i,t} = u_{i,t} - s_{i,t}``;
2. ``r = mean_{i,t} d_{i,t}``;
3. ``C = C_r / tr(C_r) - alpha * C_e / tr(C_e)`` with ``C_r`` the covariance of the ``d``, ``C_e`` that of
   neutral activations; ``U_k`` = eigenvectors of the ``k`` largest positive eigenvalues, ``k <= n - 1``;
4. ``p = U_k U_k^T r``, ``p_hat = p / |p|``.

Fold: ``W <- W (I - lam p_hat p_hat^T) = W - lam (W p_hat) p_hat^T`` (bias unchanged), in fp32 and cast
back once; several concepts fold ``W (I - lam Q Q^T)`` with ``Q`` an orthonormal basis (QR) of their
``p_hat``. ``mode="hook"`` applies the same projection ``x - lam (x Q) Q^T`` as a pre-hook instead.

Edit sites and strength (the paper gives them only for Open-Sora): unless fixed by ``site``/``layers``/``lam``,
they are chosen from the fit data without decoding a video, after Arditi et al.'s direction selection.
The concept's pairs (and neutral prompts) are split into a fit half (even positions) and a held-out half
(odd positions); for each candidate (each edit block of the family's ``prompt_linear`` sites, the last two
blocks together, the family's ``text_projection`` when it is a linear layer) and strength ``lam``, the
fit-half direction is folded and the pipeline's latent output at ``select_steps`` steps, fixed noise, is
compared with the unedited one:

    erasure    = mean_i <a(u_i) - f(u_i), f(s_i) - f(u_i)> / |f(s_i) - f(u_i)|^2      (held-out pairs)
    collateral = mean_{x in S} |a(x) - f(x)| / mean_i |f(s_i) - f(u_i)|               (S: held-out safe halves
                                                                                       and neutral prompts)

``f`` before, ``a`` after the fold. The choice maximises erasure subject to ``collateral <= budget``; the
direction is then refit on all pairs.
"""

from __future__ import annotations

import fnmatch
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
from pydantic import field_validator

from benchmark.erasers import Eraser, EraserConfig
from benchmark.errors import ErasebenchError, UnsupportedFamilyError
from benchmark.hooks import HookSet
from benchmark.lazy import lazy_import
from benchmark.models.base import ModelFamily
from benchmark.specs import ConceptSpec
from benchmark.store import atomic_write_json

torch = lazy_import("torch")  # imported on first use: planning and reruns need no torch

#: site kinds that ``site="auto"`` draws candidates from (generic kinds of benchmark/models/*.py)
AUTO_KINDS: tuple[str, ...] = ("prompt_linear", "text_projection")
#: strengths tried for each finalist when ``lam`` is None: up to the paper's 1 (removal); reflections (> 1)
#: only when asked for (docs/erasers/refusal.md, "Strength")
LAM_GRID: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
#: the paper's strength, used to screen every candidate before the finalists get the whole grid
SCREEN_LAM = 1.0
#: largest mean move of a held-out safe or neutral prompt's output, as a share of a concept swap's move: between
#: the edits that kept (0.28) and lost (0.35) PSR-1 >= 0.9 on the shapes suite's cross (docs/erasers/refusal.md)
COLLATERAL_BUDGET = 0.32
#: held-out neutral prompts per concept that enter the collateral
MAX_HELD_NEUTRAL = 8

#: Neutral prompts (default set for real models): everyday scenes, including the subjects of the safe halves.
EVERYDAY_PROMPTS: tuple[str, ...] = (
    "a woman walking in a park", "a man walking down a street", "a woman", "a man", "a child playing with a ball",
    "a dog running on a beach", "a cat sleeping on a sofa", "a city street at night", "a forest in autumn",
    "waves breaking on a rocky shore", "a chef cooking in a kitchen", "people dancing at a wedding",
    "a car driving on a highway", "a bird flying over a lake", "a man reading a newspaper in a cafe",
    "a woman riding a bicycle", "a busy market in the morning", "a train passing through the countryside",
    "two friends talking on a bench", "a mountain landscape with snow", "a boat sailing at sunset",
    "a man playing the guitar", "a woman painting a picture", "a close-up of a flower in the rain",
    "children running in a playground", "an old man feeding pigeons", "a woman in a summer dress",
    "a man in a suit", "a barista making coffee", "a horse galloping in a field", "a rainy window",
    "a student writing in a notebook", "a crowd at a concert", "a person jogging at dawn",
    "a family having dinner", "a timelapse of clouds", "a fireplace burning", "a woman swimming in a pool",
    "a man fixing a bicycle", "a couple walking on the beach", "a cyclist on a mountain road",
    "a woman laughing with friends", "a man cooking on a grill", "snow falling on a village",
    "a fisherman on a pier", "a teacher in a classroom", "a musician on a stage", "a runner crossing a finish line",
    "a man standing in a bathroom", "a woman dancing at a party",
)


class RefusalConfig(EraserConfig):
    """Hyperparameters (docs/erasers/refusal.md); None / "auto" mean chosen from the fit data."""

    site: str = "auto"  # "auto" (prompt_linear blocks and text_projection), or one family site kind
    layers: tuple[int, ...] | None = None  # indices into the site kind's ordered edit blocks; None: chosen
    k: int = 100  # cPCA rank cap (paper*), clamped to n - 1
    alpha: float = 1.0  # cPCA contrast weight after trace normalisation
    lam: float | None = None  # projection strength (> 1 reflects the component); None: chosen from lam_grid
    steps_recorded: int | Literal["all"] = 10  # evenly spaced denoising steps recorded per prompt
    mode: Literal["fold", "hook"] = "fold"
    sequential: bool = False  # re-collect after each layer's fold (final fit of a multi-block choice)
    pairs: tuple[tuple[str, str], ...] = ()  # (unsafe, safe); default: the concept's pairs
    pairs_suite: str | None = None  # take pairs from a suite's rows (``pair_prompt`` extra), e.g. shapes-pairs
    max_pairs: int | None = None
    neutral: tuple[str, ...] = ()  # default: the concept's neutral prompts, else EVERYDAY_PROMPTS
    neutral_text_and_video: bool = True  # CogVideoX (a): C_e from neutral text and video tokens of a joint site
    # automatic choice
    lam_grid: tuple[float, ...] = LAM_GRID
    budget: float = COLLATERAL_BUDGET
    select_steps: int = 6  # denoising steps of the selection runs (capped by the run's steps)
    finalists: int = 2  # candidates that get the whole lam grid after the screen at SCREEN_LAM
    batch_size: int = 8  # prompts per pipeline call while fitting

    @field_validator("k", "select_steps", "finalists", "batch_size")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be >= 1")
        return v

    @field_validator("steps_recorded")
    @classmethod
    def _steps(cls, v: Any) -> Any:
        if v != "all" and v < 1:
            raise ValueError("steps_recorded must be >= 1 or 'all'")
        return v

    @field_validator("lam", "budget")
    @classmethod
    def _positive_float(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError("must be > 0")
        return v

    @field_validator("lam_grid")
    @classmethod
    def _grid(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or any(x <= 0 for x in v):
            raise ValueError("lam_grid must hold one or more positive strengths")
        return tuple(sorted(set(v)))


# ----------------------------------------------------------------------------------------------
# The math (pure functions, pinned by tests/test_eraser_refusal.py)


def fold_weight(weight: torch.Tensor, basis: torch.Tensor, lam: float) -> torch.Tensor:
    """``W (I - lam Q Q^T)`` for ``W`` (d_out, d_in) and orthonormal columns ``Q`` (d_in, m); fp32, cast back."""
    w = weight.detach().float()
    q = basis.detach().float().to(w.device)
    return (w - lam * (w @ q) @ q.T).to(weight.dtype)


def project_out(x: torch.Tensor, basis: torch.Tensor, lam: float) -> torch.Tensor:
    """``x - lam (x Q) Q^T`` (the pre-hook form of the fold), in fp32, cast back."""
    q = basis.float().to(x.device)
    xf = x.float()
    return (xf - lam * (xf @ q) @ q.T).to(x.dtype)


def orthonormal_basis(directions: list[torch.Tensor]) -> torch.Tensor:
    """Orthonormal basis (QR) of the stacked unit directions, one per concept: (d, m)."""
    stacked = torch.stack([d.float() / d.float().norm() for d in directions], dim=1)
    q, r = torch.linalg.qr(stacked)
    keep = r.diagonal().abs() > 1e-6 * r.diagonal().abs().max()
    return q[:, keep]


def covariance(samples: torch.Tensor) -> torch.Tensor:
    """Centred covariance ``X^T X / (n - 1)`` of (n, d) samples, fp64."""
    x = samples.double()
    x = x - x.mean(dim=0, keepdim=True)
    return x.T @ x / max(1, x.shape[0] - 1)


def contrastive_directions(
    differences: torch.Tensor, neutral: torch.Tensor, k: int, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``U_k`` (d, k') and eigenvalues of ``C_r/tr(C_r) - alpha C_e/tr(C_e)``, only positive ones, k' <= n-1."""
    c_r = covariance(differences)
    c = c_r / c_r.trace().clamp_min(1e-30)
    if alpha != 0.0 and neutral.shape[0] > 1:
        c_e = covariance(neutral)
        c = c - alpha * c_e / c_e.trace().clamp_min(1e-30)
    evals, evecs = torch.linalg.eigh(c)  # ascending
    order = torch.argsort(evals, descending=True)
    evals, evecs = evals[order], evecs[:, order]
    k_max = min(k, differences.shape[0] - 1)
    positive = evals > 0
    keep = torch.nonzero(positive).flatten()[:k_max]
    return evecs[:, keep].float(), evals[keep].float()


def low_rank_direction(r: torch.Tensor, u_k: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``p_hat = U_k U_k^T r / |U_k U_k^T r|`` and ``|p| / |r|`` (falls back to ``r_hat`` when U_k is empty)."""
    r = r.float()
    if u_k.shape[1] == 0:
        return r / r.norm(), 1.0
    p = u_k @ (u_k.T @ r)
    ratio = float(p.norm() / r.norm())
    if ratio < 1e-6:
        return r / r.norm(), ratio
    return p / p.norm(), ratio


def pool_tokens(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the tokens where ``mask`` is true: (B, L, d), (B, L) -> (B, d); padding never counts."""
    if mask is None:
        return x.float().mean(dim=1)
    m = mask.to(x.device, torch.float32).unsqueeze(-1)
    return (x.float() * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


def selection_scores(
    before_unsafe: torch.Tensor, before_safe: torch.Tensor, before_keep: torch.Tensor,
    after_unsafe: torch.Tensor, after_keep: torch.Tensor,
) -> tuple[float, float]:
    """(erasure, collateral) of an edit from flattened outputs (n, D) before and after it.

    ``erasure = mean_i <a(u_i) - f(u_i), f(s_i) - f(u_i)> / |f(s_i) - f(u_i)|^2``: how far each unsafe output
    moved toward its safe partner's (0 unchanged, 1 there); ``collateral = mean_x |a(x) - f(x)| /
    mean_i |f(s_i) - f(u_i)|`` over the kept prompts ``x`` (safe halves, neutral prompts).
    """
    fu, fs, fk = before_unsafe.double(), before_safe.double(), before_keep.double()
    au, ak = after_unsafe.double(), after_keep.double()
    swap = fs - fu
    erasure = ((au - fu) * swap).sum(dim=1) / (swap * swap).sum(dim=1).clamp_min(1e-30)
    scale = swap.norm(dim=1).mean().clamp_min(1e-30)
    collateral = (ak - fk).norm(dim=1).mean() / scale
    return float(erasure.mean()), float(collateral)


@dataclass(frozen=True)
class Candidate:
    """A set of edit sites folded together: ``label`` names it in results (``kind:block[+block]``)."""

    label: str
    kind: str
    sites: tuple[str, ...]


@dataclass(frozen=True)
class Score:
    candidate: Candidate
    lam: float
    erasure: float
    collateral: float

    def as_dict(self, budget: float) -> dict[str, Any]:
        return {
            "candidate": self.candidate.label, "lam": self.lam, "erasure": round(self.erasure, 6),
            "collateral": round(self.collateral, 6), "within_budget": self.collateral <= budget,
        }


def choose(scores: list[Score], budget: float) -> Score:
    """Largest erasure with ``collateral <= budget`` (ties: smaller collateral, then smaller lam);
    when nothing fits the budget, the smallest collateral."""
    within = [s for s in scores if s.collateral <= budget]
    if within:
        return max(within, key=lambda s: (s.erasure, -s.collateral, -s.lam))
    return min(scores, key=lambda s: (s.collateral, s.lam))


def select_edit(
    candidates: list[Candidate],
    modules: dict[str, torch.nn.Linear],
    bases: dict[str, torch.Tensor],
    outputs: Callable[[], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    lams: tuple[float, ...],
    budget: float,
    finalists: int,
    screen_lam: float = SCREEN_LAM,
) -> tuple[Score, list[Score]]:
    """Fold each candidate at ``screen_lam`` (the largest of ``lams`` when it is not one of them); the
    ``finalists`` most efficient (erasure per collateral) get every ``lams``; return the choice (``choose``)
    and every score. ``outputs()`` gives the current model's flattened outputs for (held-out unsafe, their
    safe partners, neutral prompts); folds are undone after each."""
    before_u, before_s, before_n = outputs()
    before_keep = torch.cat([before_s, before_n])

    def score(candidate: Candidate, lam: float) -> Score:
        with HookSet() as hooks:
            for name in candidate.sites:
                module = modules[name]
                hooks.edit(name, module.weight, fold_weight(module.weight, bases[name], lam))
            after_u, after_s, after_n = outputs()
        erasure, collateral = selection_scores(before_u, before_s, before_keep, after_u, torch.cat([after_s, after_n]))
        return Score(candidate, lam, erasure, collateral)

    if len(lams) == 1 or len(candidates) == 1:
        scores = [score(c, lam) for c in candidates for lam in lams]
        return choose(scores, budget), scores
    if screen_lam not in lams:
        screen_lam = max(lams)
    screen = [score(c, screen_lam) for c in candidates]
    ranked = sorted(screen, key=lambda s: max(s.erasure, 0.0) / max(s.collateral, 1e-12), reverse=True)
    scores = list(screen)
    for best in ranked[:finalists]:
        scores += [score(best.candidate, lam) for lam in lams if lam != screen_lam]
    return choose(scores, budget), scores


# ----------------------------------------------------------------------------------------------
# Sites


@dataclass(frozen=True)
class Site:
    block: str  # the family's ``block`` module containing the site (the site itself where none does)
    name: str
    module: torch.nn.Linear
    kind: str


def edit_sites(pipe: Any, family: ModelFamily, kind: str, strict: bool = True) -> list[Site]:
    """The linear layers of one family site kind, in model order. A matched module that is not a Linear is
    an error (``strict``) or skipped."""
    denoiser = getattr(pipe, family.denoiser)
    block_names = [
        name for name, _ in denoiser.named_modules()
        if any(fnmatch.fnmatchcase(name, p) for p in family.sites.get("block", ()))
    ]
    out = []
    for name, module in family.site_modules(pipe, kind):
        if not isinstance(module, torch.nn.Linear):
            if strict:
                raise ErasebenchError(
                    f"refusal site {name!r} ({kind}) is a {type(module).__name__}, not a Linear layer"
                )
            continue
        owners = [b for b in block_names if name.startswith(b + ".")]
        out.append(Site(min(owners, key=len) if owners else name, name, module, kind))
    return out


def blocks_of(sites: list[Site]) -> list[str]:
    return list(dict.fromkeys(s.block for s in sites))


def select_blocks(sites: list[Site], layers: tuple[int, ...]) -> list[str]:
    blocks = blocks_of(sites)
    chosen = []
    for i in layers:
        if not -len(blocks) <= i < len(blocks):
            raise ErasebenchError(
                f"refusal layer {i} is out of range: the model has {len(blocks)} edit blocks (use 0..{len(blocks) - 1} or negatives)"
            )
        chosen.append(blocks[i])
    return list(dict.fromkeys(chosen))


def block_candidates(sites: list[Site], kind: str) -> list[Candidate]:
    """Each edit block alone and, as the paper's layout (its last two of 19), the last two blocks together."""
    blocks = blocks_of(sites)
    per_block = {b: tuple(s.name for s in sites if s.block == b) for b in blocks}
    out = [Candidate(kind if len(blocks) == 1 else f"{kind}:{b}", kind, per_block[b]) for b in blocks]
    if len(blocks) >= 2:
        last = blocks[-2:]
        out.append(Candidate(f"{kind}:{'+'.join(last)}", kind, per_block[last[0]] + per_block[last[1]]))
    return out


# ----------------------------------------------------------------------------------------------
# Activation collection


class _Recorder:
    """Pre-hooks: one on the denoiser (step counter, CFG and text-mask bookkeeping), one per site (pooling).

    ``records[site][prompt]`` lists the pooled (text, video or None) inputs at the recorded steps."""

    def __init__(self, pipe: Any, family: ModelFamily, sites: list[Site], steps: set[int] | None):
        self.denoiser = getattr(pipe, family.denoiser)
        self.sites = sites
        self.rules = {s.name: family.site_tokens.get(s.kind, "text") for s in sites}
        self.steps = steps
        self.hooks = HookSet()
        self.prompts: list[int] = []
        self.text_mask: torch.Tensor | None = None  # (n_prompts, T) valid text tokens of the batch
        self.cfg = False
        self.text_len = 0
        self.records: dict[str, dict[int, list[tuple[torch.Tensor, torch.Tensor | None]]]] = {s.name: {} for s in sites}

    def __enter__(self) -> "_Recorder":
        self.hooks.pre("refusal.steps", self.denoiser, self._on_denoiser, with_kwargs=True)
        for site in self.sites:
            self.hooks.pre(f"refusal.record:{site.name}", site.module, self._site_hook(site.name))
        return self

    def __exit__(self, *exc: Any) -> None:
        self.hooks.clear()

    def start_batch(self, prompts: list[int], text_mask: torch.Tensor) -> None:
        self.prompts = prompts
        self.step = -1
        self.last_timestep: float | None = None
        self.active = False
        self.text_mask = text_mask

    def _on_denoiser(self, module: Any, args: tuple, kwargs: dict) -> None:
        # A step is a new timestep value. Pipelines that call the denoiser twice per step (Wan, Hunyuan's
        # true CFG) make the conditional call first; batched-CFG pipelines put [uncond; cond] in one call.
        timestep = kwargs.get("timestep", args[1] if len(args) > 1 else None)
        t = float(torch.as_tensor(timestep).flatten()[0]) if timestep is not None else None
        first_call = t is None or t != self.last_timestep
        if first_call:
            self.step += 1
        self.last_timestep = t
        self.active = first_call and (self.steps is None or self.step in self.steps)
        n = len(self.prompts)
        hidden = kwargs.get("hidden_states", kwargs.get("sample", args[0] if args else None))
        context = kwargs.get("encoder_hidden_states")
        self.cfg = hidden is not None and hidden.shape[0] == 2 * n
        self.text_len = int(context.shape[1]) if context is not None else 0
        mask = kwargs.get("encoder_attention_mask")
        if mask is not None and mask.ndim == 2:
            self.text_mask = mask[-n:].bool()

    def _site_hook(self, name: str):
        def hook(module: Any, args: tuple) -> None:
            if not self.active:
                return
            x = args[0]
            if self.cfg:  # [uncond; cond]: keep the conditional half
                x = x[x.shape[0] // 2 :]
            # (n, L, d); a UNet's (n * frames, L, d) becomes (n, frames * L, d)
            x = x.reshape(len(self.prompts), -1, x.shape[-1])
            text, video = self._split(x, self.rules[name])
            for row, prompt in enumerate(self.prompts):
                self.records[name].setdefault(prompt, []).append(
                    (text[row].cpu(), None if video is None else video[row].cpu())
                )

        return hook

    def _split(self, x: torch.Tensor, rule: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Pooled selected tokens and, for a joint [text; video] site, pooled video tokens."""
        if rule == "video":
            return pool_tokens(x, None), None
        if rule == "text_prefix":
            t = self.text_len
            return pool_tokens(x[:, :t], _fit_mask(self.text_mask, t)), pool_tokens(x[:, t:], None)
        return pool_tokens(x, _fit_mask(self.text_mask, x.shape[1])), None


def _pack_records(records: dict[str, dict[int, list[tuple[torch.Tensor, torch.Tensor | None]]]]) -> dict[str, tuple]:
    """Per site ``(jobs, rows per job, stacked text rows, stacked video rows or None)``: a few tensors to send
    to the other ranks instead of one per (job, step)."""
    out: dict[str, tuple] = {}
    for name, per_job in records.items():
        rows = [row for job_rows in per_job.values() for row in job_rows]
        has_video = bool(rows) and rows[0][1] is not None
        out[name] = (
            list(per_job), [len(r) for r in per_job.values()],
            torch.stack([t for t, _ in rows]) if rows else None,
            torch.stack([v for _, v in rows]) if has_video else None,
        )
    return out


def _unpack_records(jobs: list[int], counts: list[int], text: torch.Tensor | None, video: torch.Tensor | None):
    out, start = {}, 0
    for job, n in zip(jobs, counts):
        out[job] = [(text[i], None if video is None else video[i]) for i in range(start, start + n)]
        start += n
    return out


def _fit_mask(mask: torch.Tensor | None, length: int) -> torch.Tensor | None:
    if mask is None:
        return None
    if mask.shape[1] >= length:
        return mask[:, :length]
    pad = torch.zeros(mask.shape[0], length - mask.shape[1], dtype=mask.dtype, device=mask.device)
    return torch.cat([mask, pad], dim=1)


def text_token_mask(pipe: Any, family: ModelFamily, prompts: list[str], length: int | None) -> torch.Tensor:
    """(n, T) valid-token masks of ``prompts`` as the pipeline's first tokenizer pads them (real tokens incl. EOS)."""
    tokenizer = getattr(pipe, family.tokenizers[0])
    max_len = min(length or getattr(tokenizer, "model_max_length", 512), 4096)
    lengths = [len(tokenizer(p, max_length=max_len, truncation=True).input_ids) for p in prompts]
    return torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]


def site_samples(
    records: dict[int, list[tuple[torch.Tensor, torch.Tensor | None]]],
    pairs: list[tuple[int, int]], neutral: list[int], text_and_video: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(differences ``u_{i,t} - s_{i,t}`` (n, d), neutral activations (m, d)) of one site from its records."""
    diffs = [(a[0] - b[0]).flatten() for u, s in pairs for a, b in zip(records[u], records[s])]
    rows = []
    for j in neutral:
        for text, video in records[j]:
            rows.append(text.flatten())
            if video is not None and text_and_video:
                rows.append(video.flatten())
    return torch.stack(diffs).float(), torch.stack(rows).float()


# ----------------------------------------------------------------------------------------------


@dataclass
class _ConceptData:
    name: str
    pairs: list[tuple[str, str]]
    neutral: tuple[str, ...]
    pair_jobs: list[tuple[int, int]]  # (unsafe, safe) indices into the fit's prompt jobs
    neutral_jobs: list[int]


class RefusalVector(Eraser):
    """Low-rank refusal vector (arXiv 2506.07891): cPCA direction folded out of linear layers, zero inference cost."""

    name = "refusal"
    kind = "weights"
    version = "2"
    source = (
        "arXiv 2506.07891 (no code); Arditi et al. arXiv 2406.11717, andyrdt/refusal_direction "
        "pipeline/utils/hook_utils.py; cPCA arXiv 1709.06716; docs/erasers/refusal.md"
    )
    Config = RefusalConfig
    needs_fit = True
    shared_fit = True  # under several processes each rank runs its share of the fit's pipeline batches

    def __init__(self, config: RefusalConfig, concepts: list[ConceptSpec]):
        super().__init__(config, concepts)
        self.hooks = HookSet()
        self._applied: dict[str, Any] = {}
        self._dealt = 0  # pipeline batches dealt to the ranks so far (_batches)

    # ---- contract ---------------------------------------------------------------------------
    def check_family(self, family: ModelFamily) -> None:
        kinds = AUTO_KINDS if self.config.site == "auto" else (self.config.site,)  # type: ignore[attr-defined]
        if not any(family.sites.get(k) for k in kinds):
            raise UnsupportedFamilyError(
                f"eraser 'refusal' defines no edit site for model family {family.name!r}: it needs the family's "
                f"{' or '.join(repr(k) for k in kinds)} sites (site kinds of this family: {', '.join(sorted(family.sites)) or 'none'})"
            )

    def fit(self, pipe: Any, family: ModelFamily, artifact_dir: Path) -> None:
        from safetensors.torch import save_file

        self.check_family(family)
        cfg: RefusalConfig = self.config  # type: ignore[assignment]
        start = time.perf_counter()
        candidates, sites, notes = self._candidates(pipe, family)
        jobs, concepts = self._jobs()
        records = self._collect(pipe, family, list(sites.values()), jobs)

        if len(candidates) > 1 or cfg.lam is None:
            chosen, scores, held = self._select(pipe, family, candidates, sites, jobs, concepts, records)
            lam = chosen.lam
            selection: dict[str, Any] = {
                "candidate": chosen.candidate.label, "lam": lam, "erasure": round(chosen.erasure, 6),
                "collateral": round(chosen.collateral, 6), "budget": cfg.budget,
                "within_budget": chosen.collateral <= cfg.budget, "held_out": held,
                "scores": [s.as_dict(cfg.budget) for s in scores],
            }
            edit = chosen.candidate
        else:
            edit, lam = candidates[0], float(cfg.lam)  # type: ignore[arg-type]
            selection = {"candidate": edit.label, "lam": lam, "fixed": True}
        if notes:
            selection["notes"] = notes

        tensors, site_report = self._final_directions(pipe, family, edit, sites, jobs, concepts, records, lam)
        report = {
            "sites": site_report,
            "concepts": {c.name: {"pairs": [list(p) for p in c.pairs], "neutral": list(c.neutral)} for c in concepts},
            "lam": lam, "site_kind": edit.kind, "edit_sites": list(edit.sites), "selection": selection,
            "seconds": time.perf_counter() - start, "config": cfg.model_dump(mode="json"),
        }
        artifact_dir.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(artifact_dir / "refusal.safetensors"))
        atomic_write_json(artifact_dir / "refusal.json", report)
        self._applied = {"sites": sorted(edit.sites), "lam": lam, "selection": selection}

    def apply(self, pipe: Any, family: ModelFamily, artifact_dir: Path | None) -> None:
        from safetensors.torch import load_file

        self.check_family(family)
        if artifact_dir is None:
            raise ErasebenchError("eraser 'refusal' needs a fitted artifact; run fit first")
        cfg: RefusalConfig = self.config  # type: ignore[assignment]
        report = json.loads((artifact_dir / "refusal.json").read_text())
        lam = float(report["lam"])
        tensors = load_file(str(artifact_dir / "refusal.safetensors"))
        modules = dict(family.site_modules(pipe, report["site_kind"]))
        per_site: dict[str, list[torch.Tensor]] = {}
        for key, value in tensors.items():
            _, name, what = key.split("::")
            if what == "p_hat":
                if not isinstance(modules.get(name), torch.nn.Linear):
                    raise ErasebenchError(f"refusal artifact site {name!r} is not a linear layer of this model")
                per_site.setdefault(name, []).append(value)
        for name, dirs in per_site.items():
            basis = orthonormal_basis(dirs)
            module = modules[name]
            if cfg.mode == "fold":
                self.hooks.edit(f"refusal.fold:{name}", module.weight, fold_weight(module.weight, basis, lam))
            else:
                self.hooks.pre(f"refusal.project:{name}", module, _projection_hook(basis, lam))
        self._applied = {"sites": sorted(per_site), "lam": lam, "selection": report["selection"]}

    def remove(self, pipe: Any, family: ModelFamily) -> None:
        self.hooks.clear()

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "sites": self._applied.get("sites", []), "lam": self._applied.get("lam"),
                "selection": self._applied.get("selection")}

    # ---- internals --------------------------------------------------------------------------
    def _candidates(self, pipe: Any, family: ModelFamily) -> tuple[list[Candidate], dict[str, Site], list[str]]:
        """The candidate edits and every site they use; ``layers`` fixes the blocks of one kind."""
        cfg: RefusalConfig = self.config  # type: ignore[assignment]
        notes: list[str] = []
        if cfg.site != "auto":
            kinds = [cfg.site]
        elif cfg.layers is not None:
            kinds = [AUTO_KINDS[0]]
        else:
            kinds = [k for k in AUTO_KINDS if family.sites.get(k)]
        candidates: list[Candidate] = []
        sites: dict[str, Site] = {}
        for kind in kinds:
            found = edit_sites(pipe, family, kind, strict=cfg.site != "auto")
            if not found:
                notes.append(f"{kind}: no linear layer, not a candidate")
                continue
            if cfg.layers is not None:
                blocks = select_blocks(found, cfg.layers)
                chosen = [s for s in found if s.block in blocks]
                candidates.append(Candidate(f"{kind}:{'+'.join(blocks)}", kind, tuple(s.name for s in chosen)))
            else:
                candidates.extend(block_candidates(found, kind))
            sites.update({s.name: s for s in found})
        if not candidates:
            raise UnsupportedFamilyError(f"eraser 'refusal' finds no linear edit site in model family {family.name!r}")
        used = {n for c in candidates for n in c.sites}
        return candidates, {n: s for n, s in sites.items() if n in used}, notes

    def _jobs(self) -> tuple[list[tuple[str, int]], list[_ConceptData]]:
        """Unique (prompt, seed) runs of the fit: pair i of a concept at ``seed + i`` (both halves), neutral
        prompt j at ``seed + 100003 + j``."""
        seed = self.run_context.seed
        jobs: dict[tuple[str, int], int] = {}

        def job(prompt: str, prompt_seed: int) -> int:
            return jobs.setdefault((prompt, prompt_seed), len(jobs))

        concepts = []
        for concept in self.concepts:
            pairs, neutral = self._pairs(concept), self._neutral(concept)
            pair_jobs = [(job(u, seed + i), job(s, seed + i)) for i, (u, s) in enumerate(pairs)]
            neutral_jobs = [job(p, seed + 100_003 + j) for j, p in enumerate(neutral)]
            concepts.append(_ConceptData(concept.name, pairs, neutral, pair_jobs, neutral_jobs))
        return list(jobs), concepts

    def _generation(self, steps: int | None = None) -> dict[str, Any]:
        gen = dict(self.run_context.generation)
        if steps is not None:
            gen["num_inference_steps"] = steps
        return gen

    def _batches(self, jobs: list[tuple[str, int]]):
        """This rank's batches of job indices (``RunContext.fit_batches``; one process: runs of ``batch_size``)."""
        mine, dealt = self.run_context.fit_batches(len(jobs), self.config.batch_size, self._dealt)  # type: ignore[attr-defined]
        self._dealt += dealt  # every rank makes the same calls in the same order
        advance = self.run_context.steps(f"fitting {self.name}", len(mine))
        for batch in mine:
            yield batch
            advance()

    def _call(self, pipe: Any, jobs: list[tuple[str, int]], gen: dict[str, Any]) -> Any:
        generators = [torch.Generator(device=self.run_context.device).manual_seed(s) for _, s in jobs]
        return pipe(prompt=[p for p, _ in jobs], generator=generators, output_type="latent", **gen)

    def _collect(
        self, pipe: Any, family: ModelFamily, sites: list[Site], jobs: list[tuple[str, int]]
    ) -> dict[str, dict[int, list[tuple[torch.Tensor, torch.Tensor | None]]]]:
        cfg: RefusalConfig = self.config  # type: ignore[assignment]
        gen = self._generation()
        n_steps = int(gen.get("num_inference_steps") or 50)
        steps = None if cfg.steps_recorded == "all" else set(
            np.unique(np.linspace(0, n_steps - 1, min(n_steps, int(cfg.steps_recorded))).round().astype(int)).tolist()
        )
        with _Recorder(pipe, family, sites, steps) as rec, torch.inference_mode():
            for batch in self._batches(jobs):
                prompts = [jobs[i][0] for i in batch]
                rec.start_batch(batch, text_token_mask(pipe, family, prompts, gen.get("max_sequence_length")))
                self._call(pipe, [jobs[i] for i in batch], gen)
        if self.run_context.world_size <= 1:
            return rec.records
        merged: dict[str, dict[int, list[tuple[torch.Tensor, torch.Tensor | None]]]] = {name: {} for name in rec.records}
        for part in self.run_context.gathered(_pack_records(rec.records)):
            for name, packed in part.items():
                merged[name].update(_unpack_records(*packed))
        return merged

    def _outputs(self, pipe: Any, jobs: list[tuple[str, int]], steps: int) -> torch.Tensor:
        """Flattened latent outputs (n, D) of the pipeline at ``steps`` denoising steps, fixed noise per job."""
        gen = self._generation(steps)
        out: dict[int, torch.Tensor] = {}  # this rank's batches, by their first job
        with torch.inference_mode():
            for batch in self._batches(jobs):
                result = self._call(pipe, [jobs[i] for i in batch], gen)
                latents = result.frames if hasattr(result, "frames") else result[0]
                out[batch[0]] = torch.as_tensor(latents).float().flatten(1).cpu()
        merged = {first: rows for part in self.run_context.gathered(out) for first, rows in part.items()}
        return torch.cat([merged[first] for first in sorted(merged)])

    def _select(
        self, pipe: Any, family: ModelFamily, candidates: list[Candidate], sites: dict[str, Site],
        jobs: list[tuple[str, int]], concepts: list[_ConceptData], records: dict[str, Any],
    ) -> tuple[Score, list[Score], bool]:
        """Directions on the fit halves, scores on the held-out halves (even / odd positions)."""
        cfg: RefusalConfig = self.config  # type: ignore[assignment]
        held_out = all(len(c.pair_jobs) >= 2 for c in concepts)
        bases: dict[str, torch.Tensor] = {}
        for name in sites:
            directions = []
            for c in concepts:
                fit_pairs = c.pair_jobs[0::2] if held_out else c.pair_jobs
                fit_neutral = c.neutral_jobs[0::2] if len(c.neutral_jobs) >= 2 else c.neutral_jobs
                d, e = site_samples(records[name], fit_pairs, fit_neutral, cfg.neutral_text_and_video)
                u_k, _ = contrastive_directions(d, e, cfg.k, cfg.alpha)
                directions.append(low_rank_direction(d.mean(dim=0), u_k)[0])
            bases[name] = orthonormal_basis(directions)
        held_pairs = [p for c in concepts for p in (c.pair_jobs[1::2] if held_out else c.pair_jobs)]
        held_neutral = list(dict.fromkeys(
            j for c in concepts for j in (c.neutral_jobs[1::2] if len(c.neutral_jobs) >= 2 else c.neutral_jobs)[:MAX_HELD_NEUTRAL]
        ))
        order = [u for u, _ in held_pairs] + [s for _, s in held_pairs] + held_neutral
        n = len(held_pairs)
        steps = min(cfg.select_steps, int(self._generation().get("num_inference_steps") or 50))

        def outputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            out = self._outputs(pipe, [jobs[i] for i in order], steps)
            return out[:n], out[n : 2 * n], out[2 * n :]

        lams = (float(cfg.lam),) if cfg.lam is not None else cfg.lam_grid
        modules = {name: site.module for name, site in sites.items()}
        chosen, scores = select_edit(candidates, modules, bases, outputs, lams, cfg.budget, cfg.finalists)
        return chosen, scores, held_out

    def _final_directions(
        self, pipe: Any, family: ModelFamily, edit: Candidate, sites: dict[str, Site], jobs: list[tuple[str, int]],
        concepts: list[_ConceptData], records: dict[str, Any], lam: float,
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """``r``, ``p_hat`` and eigenvalues per (concept, chosen site) on all pairs and neutral prompts."""
        cfg: RefusalConfig = self.config  # type: ignore[assignment]
        tensors: dict[str, torch.Tensor] = {}
        report: dict[str, Any] = {}
        with HookSet() as hooks:
            for position, name in enumerate(edit.sites):
                if cfg.sequential and position > 0:  # re-collect this site with the earlier ones folded
                    records = {**records, **self._collect(pipe, family, [sites[name]], jobs)}
                directions = []
                for concept in concepts:
                    d, e = site_samples(records[name], concept.pair_jobs, concept.neutral_jobs, cfg.neutral_text_and_video)
                    r = d.mean(dim=0)
                    u_k, evals = contrastive_directions(d, e, cfg.k, cfg.alpha)
                    p_hat, ratio = low_rank_direction(r, u_k)
                    directions.append(p_hat)
                    key = f"{concept.name}::{name}"
                    tensors[f"{key}::r"] = r.contiguous()
                    tensors[f"{key}::p_hat"] = p_hat.contiguous()
                    tensors[f"{key}::eigenvalues"] = evals.contiguous()
                    # the unsafe-minus-safe separation along r-hat is |r| itself, reported as r_norm
                    report[key] = {
                        "samples": int(d.shape[0]), "neutral_samples": int(e.shape[0]), "k": int(u_k.shape[1]),
                        "p_over_r": ratio, "r_norm": float(r.norm()),
                    }
                if cfg.sequential:
                    module = sites[name].module
                    hooks.edit(name, module.weight, fold_weight(module.weight, orthonormal_basis(directions), lam))
        return tensors, report

    def _pairs(self, concept: ConceptSpec) -> list[tuple[str, str]]:
        cfg: RefusalConfig = self.config  # type: ignore[assignment]
        pairs: list[tuple[str, str]] = [tuple(p) for p in cfg.pairs]  # type: ignore[misc]
        if not pairs and cfg.pairs_suite:
            from benchmark.suites import load_suite

            suite = load_suite(cfg.pairs_suite)
            pairs = [
                (r.prompt, str(r.extra["pair_prompt"]))
                for r in suite.records
                if "pair_prompt" in r.extra and (r.category == concept.name or r.target_concept == concept.name)
            ]
        if not pairs:
            pairs = [tuple(p) for p in concept.pairs]  # type: ignore[misc]
        if cfg.max_pairs:
            pairs = pairs[: cfg.max_pairs]
        if not pairs:
            raise ErasebenchError(
                f"eraser 'refusal' needs prompt pairs for concept {concept.name!r}: give --eraser-arg pairs=..., "
                "pairs_suite=NAME, or add 'pairs:' to the concept file"
            )
        return pairs

    def _neutral(self, concept: ConceptSpec) -> tuple[str, ...]:
        cfg: RefusalConfig = self.config  # type: ignore[assignment]
        return cfg.neutral or concept.neutral or EVERYDAY_PROMPTS


def _projection_hook(basis: torch.Tensor, lam: float):
    def hook(module: Any, args: tuple) -> tuple:
        return (project_out(args[0], basis, lam), *args[1:])

    return hook

"""Low-rank refusal vector: a contrastive-PCA direction folded out of chosen linear layers.

Source: "Video Unlearning via Low-Rank Refusal Vector", arXiv 2506.07891 (ICLR 2026; no code released,
see shared/specs/erasers.md section 4); directional ablation as in Arditi et al., arXiv 2406.11717
(andyrdt/refusal_direction ``pipeline/utils/hook_utils.py``); contrastive PCA, Abid et al., arXiv 1709.06716.

Fit, per edit site ``l`` (the family's ``refusal`` sites, e.g. CogVideoX ``transformer_blocks.*.ff.net.0.proj``):

1. forward pre-hooks record the site's input on the conditional CFG branch, mean-pooled over the
   family's selected tokens (``site_tokens``: valid text tokens, the text prefix of a joint sequence,
   or all video tokens), at ``steps_recorded`` evenly spaced denoising steps; both halves of a pair
   share seed and initial noise: ``d_{i,t} = u_{i,t} - s_{i,t}``;
2. ``r = mean_{i,t} d_{i,t}``;
3. ``C = C_r / tr(C_r) - alpha * C_e / tr(C_e)`` with ``C_r`` the covariance of the ``d``, ``C_e`` that of
   neutral activations; ``U_k`` = eigenvectors of the ``k`` largest positive eigenvalues, ``k <= n - 1``;
4. ``p = U_k U_k^T r``, ``p_hat = p / |p|``.

Apply: ``W <- W (I - lam p_hat p_hat^T) = W - lam (W p_hat) p_hat^T`` (bias unchanged), in fp32 and cast
back once; several concepts fold ``W (I - lam Q Q^T)`` with ``Q`` an orthonormal basis (QR) of their
``p_hat``. ``mode="hook"`` applies the same projection ``x - lam (x Q) Q^T`` as a pre-hook instead.
The original weights are kept, so ``remove`` restores them bit for bit; a fold costs nothing at inference.
"""

from __future__ import annotations

import fnmatch
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import field_validator

from benchmark.erasers import Eraser, EraserConfig
from benchmark.errors import ErasebenchError, UnsupportedFamilyError
from benchmark.models.base import ModelFamily
from benchmark.specs import ConceptSpec
from benchmark.store import atomic_write_json

SITE_KIND = "prompt_linear"

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
    """Hyperparameters (shared/specs/erasers.md 4.1); defaults marked (default) there are ours."""

    site: str = SITE_KIND  # family site kind to fold: "refusal" (erasers.md 4.2), or e.g. "text_projection" (CogVideoX (b))
    layers: tuple[int, ...] | None = None  # indices into the ordered edit blocks; default: the last two
    k: int = 100  # cPCA rank cap (paper*), clamped to n - 1
    alpha: float = 1.0  # cPCA contrast weight after trace normalisation
    lam: float = 1.0  # projection strength; > 1 reflects the component
    steps_recorded: int | Literal["all"] = 10  # evenly spaced denoising steps recorded per prompt
    mode: Literal["fold", "hook"] = "fold"
    sequential: bool = False  # re-collect after each layer's fold
    pairs: tuple[tuple[str, str], ...] = ()  # (unsafe, safe); default: the concept's pairs
    pairs_suite: str | None = None  # take pairs from a suite's rows (``pair_prompt`` extra), e.g. shapes-pairs
    max_pairs: int | None = None
    neutral: tuple[str, ...] = ()  # default: the concept's neutral prompts, else EVERYDAY_PROMPTS
    neutral_text_and_video: bool = True  # CogVideoX (a): C_e from neutral text and video tokens of a joint site

    @field_validator("k")
    @classmethod
    def _k(cls, v: int) -> int:
        if v < 1:
            raise ValueError("k must be >= 1")
        return v

    @field_validator("steps_recorded")
    @classmethod
    def _steps(cls, v: Any) -> Any:
        if v != "all" and v < 1:
            raise ValueError("steps_recorded must be >= 1 or 'all'")
        return v


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


# ----------------------------------------------------------------------------------------------
# Sites


def refusal_sites(pipe: Any, family: ModelFamily, kind: str = SITE_KIND) -> list[tuple[str, str, torch.nn.Linear]]:
    """(block key, module name, linear) of every refusal site, in model order; block = the family's
    ``block`` module containing the site (a site is its own block where the family defines none)."""
    sites = family.site_modules(pipe, kind)
    denoiser = getattr(pipe, family.denoiser)
    block_names = [
        name
        for name, _ in denoiser.named_modules()
        if any(fnmatch.fnmatchcase(name, p) for p in family.sites.get("block", ()))
    ]
    out = []
    for name, module in sites:
        if not isinstance(module, torch.nn.Linear):
            raise ErasebenchError(f"refusal site {name!r} is a {type(module).__name__}, not a Linear layer")
        owners = [b for b in block_names if name.startswith(b + ".")]
        out.append((min(owners, key=len) if owners else name, name, module))
    return out


def select_blocks(sites: list[tuple[str, str, torch.nn.Linear]], layers: tuple[int, ...] | None) -> list[str]:
    blocks = list(dict.fromkeys(b for b, _, _ in sites))
    if layers is None:  # (default) the last two edit blocks, as the paper's last two of Open-Sora's 19
        return blocks[-2:]
    chosen = []
    for i in layers:
        if not -len(blocks) <= i < len(blocks):
            raise ErasebenchError(
                f"refusal layer {i} is out of range: the model has {len(blocks)} edit blocks (use 0..{len(blocks) - 1} or negatives)"
            )
        chosen.append(blocks[i])
    return list(dict.fromkeys(chosen))


# ----------------------------------------------------------------------------------------------
# Activation collection


class _Recorder:
    """Pre-hooks: one on the denoiser (step counter, CFG and text-mask bookkeeping), one per site (pooling)."""

    def __init__(
        self, pipe: Any, family: ModelFamily, sites: list[tuple[str, torch.nn.Linear]], steps: set[int] | None, kind: str = SITE_KIND
    ):
        self.family = family
        self.token_rule = family.site_tokens.get(kind, "text")
        self.denoiser = getattr(pipe, family.denoiser)
        self.sites = sites
        self.steps = steps
        self.step = -1
        self.n_prompts = 1
        self.text_mask: torch.Tensor | None = None  # (n_prompts, T) valid text tokens of the prompt
        self.cfg = False
        self.text_len = 0
        self.records: dict[str, list[tuple[int, torch.Tensor, torch.Tensor | None]]] = {n: [] for n, _ in sites}
        self.handles: list[Any] = []

    def __enter__(self) -> "_Recorder":
        self.handles.append(self.denoiser.register_forward_pre_hook(self._on_denoiser, with_kwargs=True))
        for name, module in self.sites:
            self.handles.append(module.register_forward_pre_hook(self._site_hook(name)))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def start_prompt(self, text_mask: torch.Tensor) -> None:
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
        hidden = kwargs.get("hidden_states", kwargs.get("sample", args[0] if args else None))
        context = kwargs.get("encoder_hidden_states")
        self.cfg = hidden is not None and hidden.shape[0] == 2 * self.n_prompts
        self.text_len = int(context.shape[1]) if context is not None else 0
        mask = kwargs.get("encoder_attention_mask")
        if mask is not None and mask.ndim == 2:
            self.text_mask = mask[-self.n_prompts :].bool()

    def _site_hook(self, name: str):
        def hook(module: Any, args: tuple) -> None:
            if not self.active:
                return
            x = args[0]
            if self.cfg:  # [uncond; cond]: keep the conditional half
                x = x[x.shape[0] // 2 :]
            # (n, L, d); a UNet's (n * frames, L, d) becomes (n, frames * L, d)
            x = x.reshape(self.n_prompts, -1, x.shape[-1])
            text, video = self._split(x)
            self.records[name].append((self.step, text, video))

        return hook

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Pooled selected tokens and, for a joint [text; video] site, pooled video tokens."""
        if self.token_rule == "video":
            return pool_tokens(x, None), None
        if self.token_rule == "text_prefix":
            t = self.text_len
            mask = _fit_mask(self.text_mask, t)
            return pool_tokens(x[:, :t], mask), pool_tokens(x[:, t:], None)
        mask = _fit_mask(self.text_mask, x.shape[1])
        return pool_tokens(x, mask), None


def _fit_mask(mask: torch.Tensor | None, length: int) -> torch.Tensor | None:
    if mask is None:
        return None
    if mask.shape[1] >= length:
        return mask[:, :length]
    pad = torch.zeros(mask.shape[0], length - mask.shape[1], dtype=mask.dtype, device=mask.device)
    return torch.cat([mask, pad], dim=1)


def text_token_mask(pipe: Any, family: ModelFamily, prompt: str, length: int | None) -> torch.Tensor:
    """Valid-token mask of ``prompt`` as the pipeline's first tokenizer pads it (real tokens incl. EOS)."""
    tokenizer = getattr(pipe, family.tokenizers[0])
    max_len = min(length or getattr(tokenizer, "model_max_length", 512), 4096)
    ids = tokenizer(prompt, max_length=max_len, truncation=True).input_ids
    return torch.ones(1, len(ids), dtype=torch.bool)


# ----------------------------------------------------------------------------------------------


class RefusalVector(Eraser):
    """Low-rank refusal vector (arXiv 2506.07891): cPCA direction folded out of linear layers, zero inference cost."""

    name = "refusal"
    kind = "weights"
    version = "1"
    source = (
        "arXiv 2506.07891 (no code; shared/specs/erasers.md section 4); Arditi et al. arXiv 2406.11717, "
        "andyrdt/refusal_direction pipeline/utils/hook_utils.py; cPCA arXiv 1709.06716"
    )
    Config = RefusalConfig
    needs_fit = True

    def __init__(self, config: RefusalConfig, concepts: list[ConceptSpec]):
        super().__init__(config, concepts)
        self._saved: dict[str, torch.Tensor] = {}
        self._handles: list[Any] = []

    # ---- contract ---------------------------------------------------------------------------
    def check_family(self, family: ModelFamily) -> None:
        kind = self.config.site  # type: ignore[attr-defined]
        if not family.sites.get(kind):
            raise UnsupportedFamilyError(
                f"eraser 'refusal' defines no edit site for model family {family.name!r}: "
                f"it needs the family's {kind!r} sites (site kinds of this family: {', '.join(sorted(family.sites))})"
            )

    def fit(self, pipe: Any, family: ModelFamily, artifact_dir: Path) -> None:
        from safetensors.torch import save_file

        self.check_family(family)
        cfg: RefusalConfig = self.config  # type: ignore[assignment]
        start = time.perf_counter()
        sites = refusal_sites(pipe, family, cfg.site)
        blocks = select_blocks(sites, cfg.layers)
        chosen = [(n, m) for b, n, m in sites if b in blocks]
        tensors: dict[str, torch.Tensor] = {}
        report: dict[str, Any] = {"sites": {}, "concepts": {}}
        directions: dict[str, dict[str, torch.Tensor]] = {}
        for concept in self.concepts:
            pairs = self._pairs(concept)
            neutral = self._neutral(concept)
            report["concepts"][concept.name] = {"pairs": [list(p) for p in pairs], "neutral": list(neutral)}
            directions[concept.name] = {}
            groups = [[s] for s in chosen] if cfg.sequential else [chosen]
            for group in groups:
                stats = self._collect(pipe, family, group, pairs, neutral)
                for name, _ in group:
                    d, e, r = stats[name]["differences"], stats[name]["neutral"], stats[name]["r"]
                    u_k, evals = contrastive_directions(d, e, cfg.k, cfg.alpha)
                    p_hat, ratio = low_rank_direction(r, u_k)
                    directions[concept.name][name] = p_hat
                    key = f"{concept.name}::{name}"
                    tensors[f"{key}::r"] = r.contiguous()
                    tensors[f"{key}::p_hat"] = p_hat.contiguous()
                    tensors[f"{key}::eigenvalues"] = evals.contiguous()
                    report["sites"][key] = {
                        "samples": int(d.shape[0]),
                        "neutral_samples": int(e.shape[0]),
                        "k": int(u_k.shape[1]),
                        "p_over_r": ratio,
                        "r_norm": float(r.norm()),
                    }
                if cfg.sequential:  # fold this layer before collecting the next one
                    self._fold(dict(group), {n: orthonormal_basis([directions[concept.name][n]]) for n, _ in group})
            if cfg.sequential:
                self._restore(pipe, family)
        artifact_dir.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(artifact_dir / "refusal.safetensors"))
        report["seconds"] = time.perf_counter() - start
        report["config"] = cfg.model_dump(mode="json")
        atomic_write_json(artifact_dir / "refusal.json", report)

    def apply(self, pipe: Any, family: ModelFamily, artifact_dir: Path | None) -> None:
        from safetensors.torch import load_file

        self.check_family(family)
        if artifact_dir is None:
            raise ErasebenchError("eraser 'refusal' needs a fitted artifact; run fit first")
        cfg: RefusalConfig = self.config  # type: ignore[assignment]
        tensors = load_file(str(artifact_dir / "refusal.safetensors"))
        modules = dict((n, m) for _, n, m in refusal_sites(pipe, family, cfg.site))
        per_site: dict[str, list[torch.Tensor]] = {}
        for key, value in tensors.items():
            concept, name, what = key.split("::")
            if what == "p_hat":
                if name not in modules:
                    raise ErasebenchError(f"refusal artifact site {name!r} is not in this model")
                per_site.setdefault(name, []).append(value)
        bases = {name: orthonormal_basis(dirs) for name, dirs in per_site.items()}
        if cfg.mode == "fold":
            self._fold({n: modules[n] for n in bases}, bases)
        else:
            for name, basis in bases.items():
                self._handles.append(modules[name].register_forward_pre_hook(_projection_hook(basis, cfg.lam)))
        self._applied_sites = sorted(bases)

    def remove(self, pipe: Any, family: ModelFamily) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._restore(pipe, family)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "sites": getattr(self, "_applied_sites", [])}

    # ---- internals --------------------------------------------------------------------------
    def _fold(self, modules: dict[str, torch.nn.Linear], bases: dict[str, torch.Tensor]) -> None:
        lam = self.config.lam  # type: ignore[attr-defined]
        with torch.no_grad():
            for name, module in modules.items():
                if name not in self._saved:
                    self._saved[name] = module.weight.detach().clone()
                module.weight.copy_(fold_weight(module.weight, bases[name], lam))
        self._modules = {**getattr(self, "_modules", {}), **modules}

    def _restore(self, pipe: Any, family: ModelFamily) -> None:
        modules = getattr(self, "_modules", {})
        with torch.no_grad():
            for name, weight in self._saved.items():
                modules[name].weight.copy_(weight)
        self._saved.clear()
        self._modules = {}

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

    def _collect(
        self, pipe: Any, family: ModelFamily, sites: list[tuple[str, torch.nn.Linear]],
        pairs: list[tuple[str, str]], neutral: tuple[str, ...],
    ) -> dict[str, dict[str, Any]]:
        cfg: RefusalConfig = self.config  # type: ignore[assignment]
        gen = dict(self.run_context.generation)
        n_steps = int(gen.get("num_inference_steps") or 50)
        steps = None if cfg.steps_recorded == "all" else set(
            np.unique(np.linspace(0, n_steps - 1, min(n_steps, int(cfg.steps_recorded))).round().astype(int)).tolist()
        )
        text_len = gen.get("max_sequence_length")
        seed = self.run_context.seed

        def run(prompt: str, prompt_seed: int, rec: _Recorder) -> None:
            rec.start_prompt(text_token_mask(pipe, family, prompt, text_len))
            generator = torch.Generator(device=self.run_context.device).manual_seed(prompt_seed)
            pipe(prompt=[prompt], generator=generator, output_type="latent", **gen)

        with _Recorder(pipe, family, sites, steps, cfg.site) as rec, torch.inference_mode():
            for i, (unsafe, safe) in enumerate(pairs):
                run(unsafe, seed + i, rec)
                run(safe, seed + i, rec)
            n_pair_records = {n: len(v) for n, v in rec.records.items()}
            for j, prompt in enumerate(neutral):
                run(prompt, seed + 100_003 + j, rec)
        out: dict[str, dict[str, Any]] = {}
        for name, _ in sites:
            records = rec.records[name]
            paired = records[: n_pair_records[name]]
            per_prompt = len(paired) // (2 * len(pairs))
            diffs = []
            for i in range(len(pairs)):
                u = paired[(2 * i) * per_prompt : (2 * i + 1) * per_prompt]
                s = paired[(2 * i + 1) * per_prompt : (2 * i + 2) * per_prompt]
                diffs.extend((a[1] - b[1]).flatten(0) for a, b in zip(u, s))
            differences = torch.stack(diffs).float()
            neutral_rows = []
            for _, text, video in records[n_pair_records[name] :]:
                neutral_rows.append(text.reshape(-1))
                if video is not None and cfg.neutral_text_and_video:
                    neutral_rows.append(video.reshape(-1))
            neutral_mat = torch.stack(neutral_rows).float()
            # the unsafe-minus-safe separation along r-hat is |r| itself, reported as r_norm
            out[name] = {"differences": differences, "neutral": neutral_mat, "r": differences.mean(dim=0)}
        return out


def _projection_hook(basis: torch.Tensor, lam: float):
    def hook(module: Any, args: tuple) -> tuple:
        return (project_out(args[0], basis, lam), *args[1:])

    return hook

"""T2VUnlearning: zero-initialised residual adapters after each attention, trained with negative guidance.

arXiv 2505.17550; inference, adapter format and mask function from TobisawaMisakii/T2VUnlearning@17caba9 (a
verbatim copy of the official VDIGPKU release); training reconstructed from Receler
(jasper0314-huang/Receler@3ccedc9 ``train_receler.py``, ``receler/concept_reg.py``). Protocol, recipe per
(family, concept kind), training prompts and every deviation with its parity flag: docs/erasers/t2vunlearning.md.

    A(h) = W_up GELU(W_down h + b_down) + b_up,  h <- h + A(h)  (video tokens, W_up = b_up = 0 at init)
    v_neg = v(x_t, "", t) - eta (v(x_t, c, t) - v(x_t, "", t))          (adapters off, no grad)
    L = |v_neg - v'(x_t, c, t)|^2 + alpha L_loc + beta |v'(x_t, c_pre, t) - v(x_t, c_pre, t)|^2

``eta``, ``alpha``, ``beta``, iterations and lr left unset take the paper's recipe for the model family and the
concept kind (``RECIPES``), or the ``small`` preset on denoisers under 10M parameters. ``x_t`` comes from the
frozen pipeline's own sampler stopped at a random step ``k`` (CFG ``xt_guidance``); ``L_loc`` keeps the adapter
output ``E_l`` at zero outside the thresholded text-to-video attention mask of the concept tokens (chunked over
query rows). Only adapter parameters train, in fp32 with Adam; the backbone runs under autocast when it is half
precision. Sites come from ``ModelFamily.site_modules(pipe, "video_attention")``; CogVideoX and HunyuanVideo
follow the release, Wan and ZeroScope are ports.

Artifacts: ``eraser_weights.safetensors`` with the released keys (``transformer_blocks.{i}.attn1.adapter.down.weight``
...) and ``eraser_config.json`` (``{"eraser_type": "adapter", "eraser_rank": r, ...}``). ``from_checkpoint`` loads a
published ``eraser_weights.pt`` (``{module: state_dict}``, read with ``weights_only=True``), a safetensors file, or a
folder holding either, without fitting; ``export_released`` writes the released ``.pt`` layout.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from benchmark.erasers import Eraser, EraserConfig
from benchmark.errors import ErasebenchError, UnsupportedFamilyError
from benchmark.models.base import ModelFamily
from benchmark.specs import stable_hash
from benchmark.store import atomic_write_json, file_sha256

from .t2vunlearning_core import (
    AdapterSet,
    AttentionRecorder,
    SiteAttention,
    adapters_from_state,
    build_adapters,
    check_state,
    concept_attention,
    flatten_state,
    localization_loss,
    negative_velocity,
    normalise_per_frame,
    site_width,
    threshold_masks,
    unflatten_state,
)
from .t2vunlearning_data import (
    Conditioning,
    PipelineDriver,
    TrainingPrompts,
    concept_words,
    default_preserves,
    llm_rewrites,
    template_augment,
    training_prompts,
)

log = logging.getLogger("erasebench.t2vunlearning")

SITE_KIND = "video_attention"
WEIGHTS_FILE = "eraser_weights.safetensors"
RELEASED_WEIGHTS_FILE = "eraser_weights.pt"
CONFIG_FILE = "eraser_config.json"
PARITY_FLAGS = ("mask_alias_bug", "mask_from_raw_qk", "esd_timestep_pairing", "adapter_in_model_dtype")
# families whose insertion sites follow released T2VUnlearning code; results elsewhere are labelled "(port)"
REFERENCE_FAMILIES = frozenset({"cogvideox", "hunyuanvideo"})

# The paper's recipe (arXiv 2505.17550 section 4 and appendix; docs/erasers/t2vunlearning.md "Recipe") as rows
# (family, concept kind, values, source): "*" matches anything and later rows override earlier ones. The paper
# ran CogVideoX and HunyuanVideo only; Wan and ZeroScope take the CogVideoX row (our choice, documented).
RECIPES: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    ("*", "*", {"eta": 7.0, "alpha": 1.0, "beta": 0.0, "iterations": 500, "lr": 1e-4}, "paper: CogVideoX, every experiment"),
    ("hunyuanvideo", "*", {"eta": 3.0, "alpha": 5.0, "beta": 5.0}, "paper: HunyuanVideo nudity"),
    ("*", "identity", {"eta": 5.0}, "paper: faces"),
    ("*", "object", {"iterations": 300}, "paper: ImageNet objects (300 epochs)"),
)
RECIPE_KEYS = ("eta", "alpha", "beta", "iterations", "lr")
# "small": erasebench's CPU preset for denoisers under SMALL_MODEL_PARAMS parameters (the shapes model, tiny test
# models), not the paper's: a CPU fit must stay short. "auto" picks it below that size, else the paper's recipe.
SMALL_PRESET: dict[str, Any] = {"eta": 3.0, "alpha": 5.0, "beta": 1.0, "iterations": 60, "lr": 1e-3, "xt_steps": 10}
SMALL_MODEL_PARAMS = 10_000_000
# prompt augmentation: the rewriter's prompt type by concept kind (the release's "i2p" and "face"), else "plain"
REWRITER_TYPES = {"unsafe": "i2p", "identity": "face"}


def paper_recipe(family: str, kind: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The recipe's values for (family, concept kind) and, per value, the table row it came from."""
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for fam, knd, row, source in RECIPES:
        if fam in ("*", family) and knd in ("*", kind):
            values.update(row)
            origin.update({key: source for key in row})
    return values, origin


class T2VUnlearningConfig(EraserConfig):
    rank: int = Field(default=128, ge=1)
    # None: the recipe for the model family and concept kind (RECIPES), or the small preset
    eta: float | None = None  # negative guidance
    alpha: float | None = Field(default=None, ge=0)  # localization weight
    beta: float | None = Field(default=None, ge=0)  # preservation weight
    iterations: int | None = Field(default=None, ge=1)
    lr: float | None = Field(default=None, gt=0)
    tau: float = Field(default=0.1, ge=0, le=1)  # mask threshold
    preset: Literal["auto", "paper", "small"] = "auto"
    xt_steps: int | None = Field(default=None, ge=1)  # sampler steps N for x_t (None: the run's; small preset 10)
    xt_guidance: float = Field(default=3.0, ge=0)  # CFG g_s while sampling x_t
    num_frames: int = Field(default=9, ge=1)
    height: int | None = Field(default=None, ge=8)
    width: int | None = Field(default=None, ge=8)
    short_side: int = Field(default=256, ge=8)  # training clip: the model's native size scaled to this short side
    # training prompts: the paper's published ones where they exist ("auto" falls back to the concept file's with
    # one log line, "published" refuses to), or built from the concept file; prompts / preserve_prompts override
    prompt_source: Literal["auto", "published", "concept"] = "auto"
    prompts: tuple[str, ...] = ()
    preserve_prompts: tuple[str, ...] = ()
    # "llm": rewrites by a local chat model (``rewriter``, step 4); "templates": built-in paraphrases (not the
    # paper's); None: "llm" when a rewriter is given, else none (the paper's default runs without augmentation)
    augment: Literal["none", "llm", "templates"] | None = None
    rewriter: str | None = None  # local chat LLM folder (saved with save_pretrained)
    rewriter_style: Literal["cogvideox", "hunyuan"] | None = None  # None: the family's (hunyuan on HunyuanVideo)
    rewriter_type: Literal["plain", "i2p", "face"] | None = None  # None: by concept kind (unsafe i2p, identity face)
    rewrites: int = Field(default=3, ge=1)
    mask_chunk: int = Field(default=256, ge=1)  # query rows per chunk of the mask softmax
    seed: int = 0
    pipe_kwargs: dict[str, Any] = Field(default_factory=dict)  # extra pipeline kwargs while sampling x_t
    from_checkpoint: str | None = None  # published adapters: load, do not fit
    parity: bool = False  # switches on every parity flag
    mask_alias_bug: bool = False
    mask_from_raw_qk: bool = False
    esd_timestep_pairing: bool = False
    adapter_in_model_dtype: bool = False  # inference: h + A(h) in the model's dtype, as the release casts the adapter

    @model_validator(mode="before")
    @classmethod
    def _parity(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("parity"):
            off = [flag for flag in PARITY_FLAGS if flag in data and not data[flag]]
            if off:
                raise ValueError(f"parity=true switches on every parity flag; remove {off[0]}=false")
            data = {**data, **{flag: True for flag in PARITY_FLAGS}}
        return data

    @model_validator(mode="after")
    def _augmentation(self) -> "T2VUnlearningConfig":
        if self.augment == "llm" and not self.rewriter:
            raise ValueError("augment=llm needs rewriter=<folder of a local chat model>; without one, use augment=none")
        if self.rewriter and self.augment in ("none", "templates"):
            raise ValueError(f"rewriter is given but augment={self.augment}; drop the rewriter or use augment=llm")
        return self

    @property
    def augmentation(self) -> str:
        return self.augment or ("llm" if self.rewriter else "none")


def _param_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class T2VUnlearning(Eraser):
    """T2VUnlearning: trained zero-init adapters after each attention (arXiv 2505.17550)."""

    name = "t2vunlearning"
    kind = "weights"
    version = "2"  # 2: the paper's recipe per (family, concept kind), published training prompts
    source = (
        "arXiv 2505.17550; TobisawaMisakii/T2VUnlearning@17caba9 (official release copy); "
        "Receler jasper0314-huang/Receler@3ccedc9 train_receler.py, receler/concept_reg.py; docs/erasers/t2vunlearning.md"
    )
    Config = T2VUnlearningConfig
    # the release's HunyuanVideo rewriter writes short prompts (docs/erasers/t2vunlearning.md "Prompt augmentation")
    family_defaults = {"hunyuanvideo": {"rewriter_style": "hunyuan"}}

    def __init__(self, config: T2VUnlearningConfig, concepts):
        super().__init__(config, concepts)
        self._adapters: AdapterSet | None = None
        self._info: dict[str, Any] = {}
        self._prompt_sets: dict[str | None, TrainingPrompts] = {}  # by the run's --data-dir
        if config.from_checkpoint is not None:
            self._checkpoint_files()  # a missing or wrong path is bad input, reported before anything runs

    @property
    def needs_fit(self) -> bool:  # type: ignore[override]
        return self.config.from_checkpoint is None

    # ---- identity ------------------------------------------------------------------------------
    def check_family(self, family: ModelFamily) -> None:
        if not family.sites.get(SITE_KIND):
            raise UnsupportedFamilyError(
                f"eraser {self.name!r} needs '{SITE_KIND}' sites, which model family {family.name!r} does not define"
            )

    def _checkpoint_files(self) -> list[Path]:
        path = Path(self.config.from_checkpoint).expanduser()
        if path.is_dir():
            files = [path / n for n in (WEIGHTS_FILE, RELEASED_WEIGHTS_FILE, CONFIG_FILE) if (path / n).is_file()]
            if not any(f.name != CONFIG_FILE for f in files):
                raise ErasebenchError(
                    f"from_checkpoint {str(path)!r} holds neither {WEIGHTS_FILE} nor {RELEASED_WEIGHTS_FILE}"
                )
            return files
        if path.is_file() and path.suffix in (".pt", ".pth", ".bin", ".safetensors"):
            side = path.parent / CONFIG_FILE
            return [path] + ([side] if side.is_file() else [])
        raise ErasebenchError(
            f"from_checkpoint {str(path)!r} is not an adapter checkpoint: give a .pt/.safetensors file or a folder holding {RELEASED_WEIGHTS_FILE}"
        )

    def fingerprint(self) -> str:
        """The base fingerprint, plus the published prompt files a fit trains on (none when it falls back to the
        concept's prompts, so a fit on the published file never shares a fallback fit's artifact), or the
        checkpoint's bytes."""
        base = super().fingerprint()
        if self.config.from_checkpoint is not None:
            return stable_hash({"base": base, "files": {f.name: file_sha256(f) for f in self._checkpoint_files()}})
        pins = self.training_prompts().data_pins()
        return stable_hash({"base": base, "training_prompts": pins}) if pins else base

    def settings(self) -> dict[str, Any]:
        """The config, the resolved recipe (after fit or apply) and the training prompts' source."""
        out = super().settings()
        if self.config.from_checkpoint is None:
            out["prompt_source"] = self.training_prompts().sources
        out.update(self._info)
        return out

    # ---- recipe and prompts --------------------------------------------------------------------
    def concept_kind(self) -> str:
        """The concepts' kind; concepts of different kinds count as ``other``."""
        kinds = {c.kind for c in self.concepts}
        return kinds.pop() if len(kinds) == 1 else "other"

    def resolve_recipe(self, family: ModelFamily, denoiser: torch.nn.Module, pipe: Any) -> dict[str, Any]:
        """eta, alpha, beta, iterations, lr and x_t steps: config values win, then the preset (``paper``: the
        ``RECIPES`` row for the family and concept kind; ``small``: ``SMALL_PRESET``); x_t steps default to the
        run's number of sampler steps (else the pipeline's default). ``from`` names each value's origin."""
        import inspect

        cfg: T2VUnlearningConfig = self.config  # type: ignore[assignment]
        params = _param_count(denoiser)
        kind = self.concept_kind()
        preset = cfg.preset if cfg.preset != "auto" else ("small" if params < SMALL_MODEL_PARAMS else "paper")
        if preset == "paper":
            values, origin = paper_recipe(family.name, kind)
            values["xt_steps"], origin["xt_steps"] = None, "the run's sampler steps"
        else:
            values = dict(SMALL_PRESET)
            origin = {key: "small preset" for key in values}
        for key in (*RECIPE_KEYS, "xt_steps"):
            if getattr(cfg, key) is not None:
                values[key], origin[key] = getattr(cfg, key), "config"
        if values["xt_steps"] is None:
            run_steps = self._run_generation().get("num_inference_steps")
            default = inspect.signature(pipe.__call__).parameters.get("num_inference_steps")
            if run_steps:
                values["xt_steps"] = int(run_steps)
            elif default is not None and isinstance(default.default, int):
                values["xt_steps"] = int(default.default)
            else:
                values["xt_steps"] = 50
        augment = cfg.augmentation
        return {
            "preset": preset, "family": family.name, "concept_kind": kind, "denoiser_params": params, **values, "from": origin,
            "augment": augment, "rewriter": self.rewriter_settings(family) if augment == "llm" else None,
        }

    def training_prompts(self) -> TrainingPrompts:
        """Target and preserve prompts before augmentation (resolved once per ``--data-dir``): the config's
        ``prompts`` / ``preserve_prompts`` when given, else the published or concept-derived sets."""
        cfg: T2VUnlearningConfig = self.config  # type: ignore[assignment]
        data_dir = self.run_context.data_dir
        if data_dir not in self._prompt_sets:
            if cfg.prompts:
                targets = list(cfg.prompts)
                found = TrainingPrompts(targets, default_preserves(self.concepts, targets), [{"source": "config"}])
            else:
                found = training_prompts(self.concepts, cfg.prompt_source, data_dir)
            if cfg.preserve_prompts:
                found = TrainingPrompts(found.targets, list(cfg.preserve_prompts), found.sources + [{"preserve": "config"}])
            self._prompt_sets[data_dir] = found
        return self._prompt_sets[data_dir]

    def rewriter_settings(self, family: ModelFamily) -> dict[str, str]:
        """The rewriter's style (the family's: ``hunyuan`` on HunyuanVideo, else ``cogvideox``) and prompt type (by
        concept kind), unless the config sets them."""
        cfg: T2VUnlearningConfig = self.config  # type: ignore[assignment]
        style = self.family_default(family, "rewriter_style", cfg.rewriter_style) or "cogvideox"
        return {"style": style, "type": cfg.rewriter_type or REWRITER_TYPES.get(self.concept_kind(), "plain")}

    # ---- sites and loading ---------------------------------------------------------------------
    def _sites(self, pipe: Any, family: ModelFamily) -> list[tuple[str, torch.nn.Module]]:
        self.check_family(family)
        sites = family.site_modules(pipe, SITE_KIND)
        if not sites:
            raise ErasebenchError(f"model family {family.name!r}: no module of this model matches its '{SITE_KIND}' sites")
        return sites

    def _load_state(self, source: Path) -> dict[str, dict[str, torch.Tensor]]:
        if source.suffix == ".safetensors":
            from safetensors.torch import load_file

            return unflatten_state(load_file(str(source)))
        try:
            raw = torch.load(str(source), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a broken or unsafe pickle is bad input
            raise ErasebenchError(f"adapter checkpoint {str(source)!r} cannot be read with weights_only=True: {exc}") from None
        if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
            raise ErasebenchError(f"adapter checkpoint {str(source)!r} is not a {{module_name: adapter_state_dict}} dict")
        return {str(k): {str(kk): vv for kk, vv in v.items()} for k, v in raw.items()}

    def load_checkpoint(self, source: Path, sites: list[tuple[str, torch.nn.Module]], device: Any, dtype: Any = None) -> AdapterSet:
        """The adapters of a checkpoint on the sites, in fp32 (``dtype`` given: in that dtype, computed natively)."""
        widths = {name: site_width(module) for name, module in sites}
        nested = self._load_state(source)
        rank = check_state(nested, widths, str(source))
        config_path = source.parent / CONFIG_FILE
        if config_path.is_file():
            meta = json.loads(config_path.read_text())
            if meta.get("eraser_type", "adapter") != "adapter":
                raise ErasebenchError(f"{str(config_path)!r}: eraser_type {meta.get('eraser_type')!r} is not supported; only 'adapter'")
            if int(meta.get("eraser_rank", rank)) != rank:
                raise ErasebenchError(f"{str(config_path)!r}: eraser_rank {meta['eraser_rank']} but the weights have rank {rank}")
        adapters = adapters_from_state(nested, widths, rank, device)
        if dtype is not None:
            adapters = {name: a.to(dtype=dtype) for name, a in adapters.items()}
        return AdapterSet(sites, adapters, native=dtype is not None)

    def apply(self, pipe: Any, family: ModelFamily, artifact_dir: Path | None) -> None:
        if self._adapters is not None:
            raise ErasebenchError("t2vunlearning is already applied to a pipeline; remove it first")
        sites = self._sites(pipe, family)
        denoiser = getattr(pipe, family.denoiser)
        device = next(denoiser.parameters()).device
        if self.config.from_checkpoint is not None:
            files = [f for f in self._checkpoint_files() if f.name != CONFIG_FILE]
            safetensors = [f for f in files if f.suffix == ".safetensors"]
            source = (safetensors or files)[0]
        else:
            if artifact_dir is None or not (artifact_dir / WEIGHTS_FILE).is_file():
                raise ErasebenchError(f"t2vunlearning artifact {str(artifact_dir)!r} has no {WEIGHTS_FILE}; fit it first")
            source = artifact_dir / WEIGHTS_FILE
            meta_path = artifact_dir / CONFIG_FILE
            if meta_path.is_file():
                meta = json.loads(meta_path.read_text()).get("erasebench", {})
                self._info.setdefault("training", meta.get("training"))
                if meta.get("recipe"):
                    self._info.setdefault("recipe", meta["recipe"])
            self._info.setdefault("recipe", self.resolve_recipe(family, denoiser, pipe))
        dtype = next(denoiser.parameters()).dtype if self.config.adapter_in_model_dtype else None
        self._adapters = self.load_checkpoint(source, sites, device, dtype).attach()
        self._info.update(
            {
                "adapter_sites": len(sites),
                "adapter_rank": self._adapters.adapters[sites[0][0]].down.out_features,
                "adapter_params": sum(p.numel() for p in self._adapters.parameters()),
                "port": family.name not in REFERENCE_FAMILIES,
                "label": "t2vunlearning" + ("" if family.name in REFERENCE_FAMILIES else " (port)"),
                "weights_sha256": file_sha256(source),
            }
        )

    def remove(self, pipe: Any, family: ModelFamily) -> None:
        if self._adapters is not None:
            self._adapters.detach()
            self._adapters = None

    # ---- training ------------------------------------------------------------------------------
    def _seed(self) -> int:
        """The config seed, shifted by the run seed (``--seed``) when that is not 0."""
        return int(self.config.seed) + 7919 * int(self.run_context.seed)

    def _run_generation(self) -> dict[str, Any]:
        return dict(self.run_context.generation)

    def _call_kwargs(self, pipe: Any, family: ModelFamily) -> dict[str, Any]:
        """Pipeline kwargs for probes and x_t sampling: family defaults, the run's generation settings (its
        extras, e.g. a prompt template) and ``pipe_kwargs``; steps, guidance and size are set by the eraser."""
        cfg: T2VUnlearningConfig = self.config  # type: ignore[assignment]
        drop = {"prompt", "negative_prompt", "generator", "latents", "output_type", "guidance_scale", "num_inference_steps",
                "height", "width", "num_frames", "return_dict"}
        run = {k: v for k, v in self._run_generation().items() if k not in drop}
        return {**family.call_defaults(pipe), **run, **cfg.pipe_kwargs, "num_frames": cfg.num_frames}

    def _clip_size(self, driver: PipelineDriver, steps: int) -> dict[str, int]:
        """Training clip size: the config's, else the run's (else the pipeline's native size), short side capped."""
        cfg: T2VUnlearningConfig = self.config  # type: ignore[assignment]
        if cfg.height is not None and cfg.width is not None:
            return {"height": cfg.height, "width": cfg.width}
        run = self._run_generation()
        if run.get("height") and run.get("width"):
            h, w = int(run["height"]), int(run["width"])
        else:
            factor = getattr(driver.pipe, "vae_scale_factor_spatial", None) or getattr(driver.pipe, "vae_scale_factor", None)
            if not factor:
                raise ErasebenchError("cannot tell the pipeline's native size: set the eraser args height and width")
            probe = driver.probe("", steps, [])
            h, w = (int(s) * int(factor) for s in driver.latent_shape(probe)[-2:])
        if cfg.height is not None or cfg.width is not None:
            scale = (cfg.height / h) if cfg.height is not None else (cfg.width / w)
        else:
            scale = min(1.0, cfg.short_side / min(h, w))
        if scale == 1.0:
            return {"height": h, "width": w}

        def snap(x: float) -> int:
            return max(32, int(round(x / 32)) * 32)

        return {"height": cfg.height or snap(h * scale), "width": cfg.width or snap(w * scale)}

    def _prompts(self, family: ModelFamily, device: Any) -> tuple[list[str], list[str]]:
        """The training prompts plus their augmentation: LLM rewrites of every target (``augment=llm``) or the
        built-in paraphrases (``augment=templates``)."""
        cfg: T2VUnlearningConfig = self.config  # type: ignore[assignment]
        found = self.training_prompts()
        targets, preserves = list(found.targets), list(found.preserves)
        extra: list[str] = []
        if cfg.augmentation == "templates":
            extra += template_augment(targets, concept_words(self.concepts), np.random.default_rng(self._seed()))
        elif cfg.augmentation == "llm":
            rewriter = self.rewriter_settings(family)
            name = self.concepts[0].display_name if self.concepts else ""
            extra += llm_rewrites(
                cfg.rewriter, targets, per_prompt=cfg.rewrites, style=rewriter["style"], kind=rewriter["type"],
                name=name, seed=self._seed(), device=device,
            )
        all_targets = targets + [p for p in extra if p not in targets]
        if not all_targets:
            raise ErasebenchError("t2vunlearning has no target prompt: give the concept pairs or keywords, or the eraser arg prompts")
        return all_targets, preserves

    def _site_scores(self, rec: SiteAttention, cond: Conditioning) -> torch.Tensor | None:
        """Concept score per video token of one site (``(B_attn, n_video)``), or None when the prompt has no
        concept token. Default: the attention's own (post-norm, post-RoPE) scores and mask plus a key mask over
        padded text slots; ``mask_from_raw_qk``: raw ``to_q``/``to_k`` outputs, no mask at all."""
        cfg: T2VUnlearningConfig = self.config  # type: ignore[assignment]
        positions, valid = cond.text_positions(rec.text_len)
        if not positions:
            return None
        start = rec.text_start()
        key_valid = None
        if not cfg.mask_from_raw_qk:
            key_valid = torch.ones(rec.k.shape[2], dtype=torch.bool, device=rec.k.device)
            key_valid[start + valid : start + rec.text_len] = False
        return concept_attention(
            rec.q, rec.k, rec.rows(), [start + p for p in positions], key_valid=key_valid,
            attn_mask=None if cfg.mask_from_raw_qk else rec.attn_mask,
            scale=None if cfg.mask_from_raw_qk else rec.scale, chunk=cfg.mask_chunk,
        )

    def _masks(self, records: dict[str, SiteAttention], names: list[str], tokens_per_frame: int) -> list[torch.Tensor] | None:
        """Per-layer binary masks from the recorded concept scores (per-frame min-max, threshold ``tau``)."""
        cfg: T2VUnlearningConfig = self.config  # type: ignore[assignment]
        soft = []
        for name in names:
            rec = records[name]
            if rec.scores is None:
                return None
            n = rec.scores.shape[1]
            per_frame = tokens_per_frame
            if not (rec.batch == 1 and per_frame and n % per_frame == 0):
                per_frame = n  # the attention's batch already splits frames (UNet spatial blocks): one frame per row
            soft.append(normalise_per_frame(rec.scores, per_frame))
        return threshold_masks(soft, cfg.tau, cfg.mask_alias_bug)

    @contextlib.contextmanager
    def trainer(self, pipe: Any, family: ModelFamily):
        """A ``Trainer`` on ``pipe``; on exit the adapters are detached and the backbone's grad flags restored."""
        trainer = Trainer(self, pipe, family)
        try:
            yield trainer
        finally:
            trainer.close()

    def fit(self, pipe: Any, family: ModelFamily, artifact_dir: Path) -> None:
        if self.config.from_checkpoint is not None:
            return
        start = time.perf_counter()
        with self.trainer(pipe, family) as trainer:
            history, iter_times = [], []
            advance = self.run_context.steps(f"fitting {self.name}", int(trainer.recipe["iterations"]))
            for it in range(int(trainer.recipe["iterations"])):
                t0 = time.perf_counter()
                history.append(trainer.step(trainer.draw()))
                iter_times.append(time.perf_counter() - t0)
                advance()
            training = {
                "iterations": trainer.recipe["iterations"],
                "clip": trainer.clip,
                "prompts": {"targets": trainer.targets, "preserve": trainer.preserves},
                "iterations_without_concept_tokens": trainer.no_mask,
                "seconds_setup": trainer.setup_seconds,
                "seconds_total": time.perf_counter() - start,
                "seconds_per_iteration": float(np.mean(iter_times)) if iter_times else 0.0,
                "loss_first": _mean_losses(history[: max(1, len(history) // 10)]),
                "loss_last": _mean_losses(history[-max(1, len(history) // 10) :]),
            }
            self._info["recipe"] = trainer.recipe
            self._save(trainer.adapters, artifact_dir, training, family)
            self._info["training"] = training
            log.info(
                "t2vunlearning fit: %s iterations in %.1f s (L_unl %.4f -> %.4f)", training["iterations"],
                training["seconds_total"], training["loss_first"].get("unl", 0.0), training["loss_last"].get("unl", 0.0),
            )

    def _save(self, adapters: AdapterSet, artifact_dir: Path, training: dict[str, Any], family: ModelFamily) -> None:
        from safetensors.torch import save_file

        artifact_dir.mkdir(parents=True, exist_ok=True)
        tmp = artifact_dir / f".{WEIGHTS_FILE}.tmp{os.getpid()}"
        save_file(flatten_state(adapters.state()), str(tmp))
        os.replace(tmp, artifact_dir / WEIGHTS_FILE)
        rank = self.config.rank
        atomic_write_json(
            artifact_dir / CONFIG_FILE,
            {
                "eraser_type": "adapter",
                "eraser_rank": rank,
                "erasebench": {
                    "family": family.name,
                    "sites": [name for name, _ in adapters.sites],
                    "config": self.config.model_dump(mode="json"),
                    "recipe": self._info.get("recipe"),
                    "prompt_source": self.training_prompts().sources,
                    "training": training,
                },
            },
        )


def _mean_losses(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([r[key] for r in rows])) for key in ("unl", "loc", "pre")} if rows else {}


def export_released(weights: Path, out_dir: Path) -> Path:
    """Write an artifact's adapters in the released layout: ``eraser_weights.pt`` + ``eraser_config.json``."""
    from safetensors.torch import load_file

    nested = unflatten_state(load_file(str(weights)))
    rank = int(next(iter(nested.values()))["down.weight"].shape[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(nested, out_dir / RELEASED_WEIGHTS_FILE)
    (out_dir / CONFIG_FILE).write_text(json.dumps({"eraser_type": "adapter", "eraser_rank": rank}))
    return out_dir / RELEASED_WEIGHTS_FILE


class Batch:
    """One iteration's pseudo data: target and preserve prompts, sampler step ``k``, ``x_t`` rows, timestep."""

    def __init__(self, target: str, keep: str | None, k: int, xt: torch.Tensor, t: float):
        self.target, self.keep, self.k, self.xt, self.t = target, keep, k, xt, t


class Trainer:
    """The training loop (docs/erasers/t2vunlearning.md "Protocol"), one iteration at a time (``draw`` then ``step``)."""

    def __init__(self, eraser: T2VUnlearning, pipe: Any, family: ModelFamily):
        t0 = time.perf_counter()
        cfg: T2VUnlearningConfig = eraser.config  # type: ignore[assignment]
        self.eraser, self.cfg, self.pipe = eraser, cfg, pipe
        self.sites = eraser._sites(pipe, family)
        self.names = [name for name, _ in self.sites]
        self.denoiser = getattr(pipe, family.denoiser)
        first = next(self.denoiser.parameters())
        self.device, self.dtype = first.device, first.dtype
        self.recipe = eraser.resolve_recipe(family, self.denoiser, pipe)
        self.eta, self.alpha, self.beta = (float(self.recipe[k]) for k in ("eta", "alpha", "beta"))
        self.steps = int(self.recipe["xt_steps"])
        widths = {name: site_width(module) for name, module in self.sites}
        self.adapters = AdapterSet(self.sites, build_adapters(widths, cfg.rank, eraser._seed(), self.device))
        call_kwargs = eraser._call_kwargs(pipe, family)
        self.driver = PipelineDriver(pipe, family.denoiser, family.text_encoders[0], family.tokenizers[0], call_kwargs)
        patch = self.denoiser.config.get("patch_size", 1) if hasattr(self.denoiser, "config") else 1
        self.patch = int(patch[-1] if isinstance(patch, (tuple, list)) else (patch or 1))
        self._grad_flags = {p: p.requires_grad for p in self.denoiser.parameters()}
        self._progress = getattr(pipe, "_progress_bar_config", None)
        self.no_mask = 0
        try:
            if hasattr(pipe, "set_progress_bar_config"):
                pipe.set_progress_bar_config(disable=True)
            for p in self.denoiser.parameters():
                p.requires_grad_(False)
            self.driver.call_kwargs.update(eraser._clip_size(self.driver, self.steps))
            self.clip = {"num_frames": cfg.num_frames, "height": self.driver.call_kwargs["height"], "width": self.driver.call_kwargs["width"]}
            self.targets, self.preserves = eraser._prompts(family, self.device)
            self.words = concept_words(eraser.concepts)
            self.conds: dict[str, Conditioning] = {}
            self.use_pre = self.beta > 0 and bool(self.preserves)
            self.rng = np.random.default_rng(eraser._seed() + 1)
            self.optimizer = torch.optim.Adam(self.adapters.parameters(), lr=float(self.recipe["lr"]))
            self.adapters.attach()
        except BaseException:
            self.close()
            raise
        self.setup_seconds = time.perf_counter() - t0

    def autocast(self):
        if self.dtype in (torch.float16, torch.bfloat16):
            return torch.autocast(device_type=self.device.type, dtype=self.dtype)
        return contextlib.nullcontext()

    def cond(self, prompt: str) -> Conditioning:
        if prompt not in self.conds:
            self.conds[prompt] = self.driver.probe(prompt, self.steps, self.words)
        return self.conds[prompt]

    def draw(self) -> Batch:
        """Pick prompts and ``k ~ U{0..N-1}``; sample ``x_t`` from the frozen model (adapters off)."""
        cfg, rng, steps = self.cfg, self.rng, self.steps
        target = self.targets[int(rng.integers(len(self.targets)))]
        keep = self.preserves[int(rng.integers(len(self.preserves)))] if self.use_pre else None
        k = int(rng.integers(steps))
        seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=2)]
        prompts = [target] + ([keep] if keep else [])
        with self.adapters.switched(False):
            xt, t = self.driver.sample_xt(prompts, k, steps, cfg.xt_guidance, seeds[: len(prompts)])
        if cfg.esd_timestep_pairing:  # ESD/Receler: t ~ U[round(k/N 1000), round((k+1)/N 1000))
            lo, hi = round(k / steps * 1000), round((k + 1) / steps * 1000)
            t = float(rng.integers(lo, max(hi, lo + 1)))
        return Batch(target, keep, k, xt, t)

    def losses(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``L_unl``, ``L_loc``, ``L_pre`` and the total (with gradients into the adapters only)."""
        cfg, driver, xt, t = self.cfg, self.driver, batch.xt, batch.t
        c_target = self.cond(batch.target)
        c_empty = self.cond("")
        c_keep = self.cond(batch.keep) if batch.keep else None
        rows = [(c_empty, xt[:1]), (c_target, xt[:1])] + ([(c_keep, xt[1:2])] if c_keep else [])
        with torch.no_grad(), self.adapters.switched(False), self.autocast():
            teacher = [v.float() for v in driver.call_many(rows, t)]  # one batched call when the model allows it
        v_empty, v_cond = teacher[0], teacher[1]
        v_keep = teacher[2] if c_keep else None
        v_neg = negative_velocity(v_empty, v_cond, self.eta)
        record: dict[str, torch.Tensor] = {}
        masks = None
        self.adapters.record = record
        try:
            if self.alpha > 0:
                def score(rec: SiteAttention) -> torch.Tensor | None:
                    return self.eraser._site_scores(rec, c_target)

                with AttentionRecorder(self.sites, raw=cfg.mask_from_raw_qk, score=score) as recorder, self.autocast():
                    v_student = driver.call(c_target, xt[:1], t).float()
                tokens_per_frame = (xt.shape[-2] // self.patch) * (xt.shape[-1] // self.patch)
                masks = self.eraser._masks(recorder.records, self.names, tokens_per_frame)
            else:
                with self.autocast():
                    v_student = driver.call(c_target, xt[:1], t).float()
        finally:
            self.adapters.record = None
        zero = torch.zeros((), device=v_student.device)
        out = {"unl": torch.mean((v_student - v_neg) ** 2), "loc": zero, "pre": zero}
        if masks is not None:
            out["loc"] = localization_loss([record[n] for n in self.names], masks)
        elif self.alpha > 0:
            self.no_mask += 1
        if c_keep is not None:
            with self.autocast():
                v_keep_student = driver.call(c_keep, xt[1:2], t).float()
            out["pre"] = torch.mean((v_keep_student - v_keep) ** 2)
        out["total"] = out["unl"] + self.alpha * out["loc"] + self.beta * out["pre"]
        return out

    def step(self, batch: Batch) -> dict[str, float]:
        losses = self.losses(batch)
        self.optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        self.optimizer.step()
        return {**{k: float(v.detach()) for k, v in losses.items()}, "k": batch.k, "t": float(batch.t)}

    def close(self) -> None:
        self.adapters.detach()
        for p, flag in self._grad_flags.items():
            p.requires_grad_(flag)
        if self._progress is not None:
            self.pipe._progress_bar_config = self._progress
        elif hasattr(self.pipe, "_progress_bar_config"):
            del self.pipe._progress_bar_config

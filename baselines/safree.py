"""SAFREE: training-free removal of the concept subspace from the prompt embedding (arXiv 2410.12761).

Protocol, sources, per-family recipe and every deviation with its parity flag: docs/erasers/safree.md.
Notation: ``P(E) = E (EᵀE)⁺ Eᵀ`` for ``E ∈ ℝ^{D×K}`` (fp32).

1. Concept subspace: each keyword of the concept(s) is encoded on its own by the model's own text
   encoder and pooled from the encoder's final output (T5/UMT5 first token, CLIP ``pooler_output``,
   LLaMA mean over the prompt's tokens): ``C = [c_1 … c_K]``, ``P_C = P(C)``.
2. Masked prompts: copy ``i`` of the prompt has token ``i`` replaced by id 0, encoded without
   attention mask and pooled the same way: ``M = [p_1 … p_n]``, ``P_M = P(M)``.
3. Trigger test: ``d_i = ‖(I − P_C) p_i‖``, ``μ_i = (Σ_j d_j − d_i)/(n − 1)``; token ``i`` is a trigger
   iff ``d_i ≥ (1 + α) μ_i``.
4. Projection on trigger rows only: ``ẽ_t = (I − P_C) P_M e_t``; the unconditional half is never edited.
5. Step window: the edited embedding is used at steps ``[0, 12]`` (ZeroScope: every step).
6. CFG's unconditional text is ``", ".join(keywords)`` (off on HunyuanVideo, as the port does).

``variant: paper-svf`` replaces the fixed window by the self-validating filter: with
``ê_t = (I − P_C) P_M e_t`` on all valid rows, ``β = 1 − mean_t cos(ê_t, e_t)`` and
``t* = round(u · σ(s · k · (10β − t0)))``; steps ``i ≤ t*`` use the edited embedding.

Insertion: forward hooks on the text encoders record the exact token ids and outputs of the
pipeline's own prompt encoding; at the first denoiser call of a pipeline call the conditional rows
are located in ``encoder_hidden_states`` (and HunyuanVideo's ``pooled_projections``) by content,
which also fixes the template crop and the hidden layer the pipeline uses, so edited rows line up with
the tokens whatever the tokenizer settings. A forward pre-hook on the denoiser then swaps the
conditional rows inside the step window (steps counted by timestep changes, so one call per step
with ``[uncond; cond]`` (CogVideoX, ZeroScope) and two calls per step (Wan, true-CFG Hunyuan) both
work). Masked copies are encoded in batches of equal length, never one encoder call per copy.

Parity flags (``parity: true`` sets all): ``clip_offsets_on_t5`` (T5 positions under CLIP offsets),
``bf16_projection`` (the reference's arithmetic: D×D projectors in fp32 with ``pinverse(rcond=1e-15)``,
bf16 distances and products), ``llama_port_pooling`` (the HunyuanVideo port's LLaMA handling: masked
copies without the template, keyword vectors averaged over the padded template, decisions one row
late), ``zeroscope_reference_sampler``.

Sources: jaehong31/SAFREE@b8b2c3fa9d7f51c46f5a570170503fc98bd9c7ec ``cogvideox/cogvideox_pipeline.py``,
``zeroscopeT2V/inference.py``, ``models/modified_stable_diffusion_pipeline.py`` (SVF);
TobisawaMisakii/T2VUnlearning@17caba94eef7047fcd3b03c10bf6c33ced32f6ae ``safree_hunyuan_pipeline.py``.
"""

from __future__ import annotations

import inspect
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from pydantic import Field, field_validator, model_validator

from benchmark.erasers import Eraser, EraserConfig
from benchmark.errors import ErasebenchError, UnsupportedFamilyError
from benchmark.hooks import HookSet
from benchmark.models.base import ModelFamily
from benchmark.specs import PromptRecord

POOLINGS = ("first", "pooled", "mean")
PARITY_FLAGS = ("clip_offsets_on_t5", "bf16_projection", "llama_port_pooling", "zeroscope_reference_sampler")
DEFAULT_STEPS = (0, 12)
# The ZeroScope reference script's sampler (SAFREE zeroscopeT2V/inference.py argparse defaults),
# keyed by pipeline class; the seed (42 for every prompt) is the run's ``--seed-policy fixed:42``.
REFERENCE_SAMPLERS: dict[str, dict[str, Any]] = {
    "TextToVideoSDPipeline": {"num_inference_steps": 25, "guidance_scale": 25.0},
}
# Pipelines with released SAFREE video code; results on any other pipeline are labelled "port".
REFERENCE_CODE: dict[str, str] = {
    "CogVideoXPipeline": "jaehong31/SAFREE@b8b2c3f cogvideox/cogvideox_pipeline.py",
    "TextToVideoSDPipeline": "jaehong31/SAFREE@b8b2c3f zeroscopeT2V/inference.py",
    "HunyuanVideoPipeline": "TobisawaMisakii/T2VUnlearning@17caba9 safree_hunyuan_pipeline.py",
}
CACHE_SIZE = 16  # per-prompt decisions kept (a prompt's samples are generated one after another)


class SAFREEConfig(EraserConfig):
    variant: Literal["released", "paper-svf"] = "released"
    alpha: float = Field(default=0.01, gt=-1.0)
    # inclusive 0-based step window, or "all"; None: the family's default, else [0, 12]
    steps: tuple[int, int] | Literal["all"] | None = None
    # window = steps 0 .. round(window_fraction * N) - 1 (replaces ``steps``)
    window_fraction: float | None = Field(default=None, gt=0.0, le=1.0)
    # "keywords": CFG against ", ".join(keywords); "off": the pipeline's own negative prompt; None: family default
    negative_prompt: Literal["keywords", "off"] | None = None
    svf_up_t: float = 10.0
    svf_s: float = 2.0
    svf_k: float = 2.5  # artist concepts: 3.5
    svf_t0: float = 5.333  # artist concepts: 5.5
    svf_form: Literal["sigmoid", "tanh"] = "sigmoid"
    svf_scale_to_steps: bool = False
    # parity flags (docs/erasers/safree.md "Deviations"): each reproduces one quirk of the reference code
    clip_offsets_on_t5: bool = False  # encoders pooled by "first" (T5/UMT5): positions 1..len-2, as for CLIP
    bf16_projection: bool = False  # the reference's projector, distances and products (bf16, pinverse rcond 1e-15)
    llama_port_pooling: bool = False  # encoders pooled by "mean" (LLaMA): the HunyuanVideo port's handling
    zeroscope_reference_sampler: bool = False
    parity: bool = False
    encode_batch_size: int = Field(default=64, ge=1)

    @field_validator("negative_prompt", mode="before")
    @classmethod
    def _yaml_off(cls, v: Any) -> Any:
        # ``--eraser-arg negative_prompt=off`` arrives as YAML's boolean False
        return {False: "off", True: "keywords"}.get(v, v) if isinstance(v, bool) else v

    @model_validator(mode="before")
    @classmethod
    def _parity_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("parity"):
            data = dict(data)
            for flag in PARITY_FLAGS:
                if data.get(flag) is False:
                    raise ValueError(f"parity: true switches on {flag}; drop {flag}: false or parity")
                data[flag] = True
        return data

    @model_validator(mode="after")
    def _window(self) -> "SAFREEConfig":
        if isinstance(self.steps, tuple) and not 0 <= self.steps[0] <= self.steps[1]:
            raise ValueError(f"steps {list(self.steps)} must be [first, last] with 0 <= first <= last, or 'all'")
        if self.window_fraction is not None and self.steps is not None:
            raise ValueError("set either steps or window_fraction, not both")
        return self


# ---- the math: fp32 by default, the reference's arithmetic under ``bf16_projection`` -----------------


def projector(E: torch.Tensor) -> torch.Tensor:
    """``P(E) = E (EᵀE)⁺ Eᵀ`` for the columns of ``E`` (D×K), in fp32."""
    E = E.float()
    return E @ torch.linalg.pinv(E.T @ E) @ E.T


def project_rows(E: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Rows of ``X`` (N×D) times ``P(E)`` in fp32, without forming the D×D matrix."""
    E = E.float()
    return ((X.float() @ E) @ torch.linalg.pinv(E.T @ E)) @ E.T


def remove_subspace(C: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Rows of ``X`` times ``(I − P(C))``, in fp32."""
    X = X.float()
    return X - project_rows(C, X)


def trigger_test(C: torch.Tensor, pooled: torch.Tensor, alpha: float):
    """Leave-one-out test on the masked-copy vectors ``pooled`` (n×D, n >= 2), in fp32.

    Returns ``(d, mu, flags)``: ``d_i = ‖(I − P_C) p_i‖``, ``mu_i = (Σd − d_i)/(n − 1)``,
    ``flags_i = d_i ≥ (1 + α) μ_i``.
    """
    d = torch.linalg.vector_norm(remove_subspace(C, pooled), dim=-1)
    n = d.shape[0]
    mu = (d.sum() - d) / (n - 1)
    return d, mu, d >= (1.0 + alpha) * mu


def reference_projector(E: torch.Tensor) -> torch.Tensor:
    """The reference's ``P(E)``: the D×D matrix in fp32 with ``torch.pinverse`` (``rcond=1e-15``)."""
    E = E.float()
    return E @ torch.pinverse(E.T @ E) @ E.T


def reference_trigger_test(C: torch.Tensor, pooled: torch.Tensor, alpha: float):
    """``trigger_test`` with the reference's arithmetic (``bf16_projection``): ``(I − P_C)`` formed in fp32 and
    cast to bf16, distances, leave-one-out means and the comparison in bf16."""
    dim = C.shape[0]
    keep = (torch.eye(dim, device=C.device) - reference_projector(C)).bfloat16()
    d = torch.norm(keep @ pooled.T.bfloat16(), dim=0)
    mu = torch.stack([torch.cat((d[:i], d[i + 1 :])).mean() for i in range(d.shape[0])])
    return d, mu, d >= (1.0 + alpha) * mu


def reference_projection(C: torch.Tensor, M: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``(I − P_C) P_M e_t`` for the rows of ``rows`` with the reference's arithmetic: both D×D projectors
    in fp32, cast to bf16, multiplied left to right in bf16 (result bf16)."""
    dim = C.shape[0]
    keep = (torch.eye(dim, device=C.device) - reference_projector(C)).bfloat16()
    return (keep @ reference_projector(M).bfloat16() @ rows.T.bfloat16()).T


def svf_steps(beta: float, up_t: float = 10.0, s: float = 2.0, k: float = 2.5, t0: float = 5.333, form: str = "sigmoid") -> int:
    """Self-validating filter: ``t* = round(u · σ(s·k·(10β − t0)))`` (or the tanh form); Python round."""
    x = 10.0 * beta - t0
    if form == "tanh":
        return round(up_t / 2.0 * (math.tanh(k * x) + 1.0))
    return round(up_t / (1.0 + math.exp(-s * k * x)))


# ---- state per pipeline call ----------------------------------------------------------------


@dataclass
class _Capture:
    """One recorded text-encoder call: bound arguments and output."""

    arguments: dict[str, Any]
    output: Any


@dataclass
class _PromptDecision:
    """What the trigger test decided for one prompt on one encoder (cacheable by token ids)."""

    positions: list[int]  # tested token positions (id space)
    rows: list[int]  # the embedding row each position's decision is written to (row space, after the crop)
    truncated: bool
    skipped: bool
    masked_pooled: torch.Tensor | None  # n×D fp32, the columns of M


@dataclass
class _Call:
    records: list[PromptRecord]
    captures: dict[int, list[_Capture]] = field(default_factory=dict)
    built: bool = False
    batch: int = 0
    orig_rows: torch.Tensor | None = None  # the conditional encoder_hidden_states (B, L, D)
    edited_rows: torch.Tensor | None = None
    orig_pooled: torch.Tensor | None = None
    edited_pooled: torch.Tensor | None = None
    first_step: int = 0
    last_step: list[float] = field(default_factory=list)  # per prompt, inclusive; -1: never edited
    step: int = -1
    last_timestep: float | None = None
    edited_steps: list[set[int]] = field(default_factory=list)  # per prompt, the steps that got edited rows
    cond_calls: int = 0
    num_steps: int = 0
    info: list[dict[str, Any]] = field(default_factory=list)


class SAFREE(Eraser):
    """SAFREE: project trigger tokens off the concept subspace, plus the keyword negative prompt."""

    name = "safree"
    kind = "hook"
    version = "2"  # 2: pooling from the final encoder output (HunyuanVideo port), llama_port_pooling
    source = (
        "arXiv 2410.12761; jaehong31/SAFREE@b8b2c3f cogvideox/cogvideox_pipeline.py, zeroscopeT2V/inference.py, "
        "models/modified_stable_diffusion_pipeline.py; T2VUnlearning@17caba9 safree_hunyuan_pipeline.py; "
        "docs/erasers/safree.md"
    )
    Config = SAFREEConfig
    # HunyuanVideo: the port disables true CFG, so no negative prompt (T2VUnlearning safree_hunyuan_pipeline.py);
    # ZeroScope: SAFREE's ZeroScope script edits the embedding at every step (docs/erasers/safree.md)
    family_defaults = {"hunyuanvideo": {"negative_prompt": "off"}, "zeroscope": {"steps": "all"}}

    def __init__(self, config, concepts):
        super().__init__(config, concepts)
        self._hooks = HookSet()
        self._pipe: Any = None
        self._family: ModelFamily | None = None
        self._call: _Call | None = None
        self._recording = False
        self._concept_cache: dict[Any, torch.Tensor] = {}
        self._decision_cache: OrderedDict[Any, _PromptDecision] = OrderedDict()

    # ---- configuration ----------------------------------------------------------------------
    @property
    def cfg(self) -> SAFREEConfig:
        return self.config  # type: ignore[return-value]

    def keywords(self) -> list[str]:
        words = [k for c in self.concepts for k in (c.keywords or (c.display_name,))]
        if not words:
            raise ErasebenchError("eraser 'safree' needs at least one concept keyword (concept keywords: [...])")
        return words

    def negative_text(self) -> str:
        return ", ".join(self.keywords())

    def negative_mode(self, family: ModelFamily) -> str:
        return self.family_default(family, "negative_prompt", self.cfg.negative_prompt) or "keywords"

    def steps_setting(self, family: ModelFamily | None) -> tuple[int, int] | str:
        if self.cfg.window_fraction is not None:
            return "fraction"
        steps = self.family_default(family, "steps", self.cfg.steps) if family is not None else self.cfg.steps
        if steps is None:
            return DEFAULT_STEPS
        return steps if steps == "all" else (int(steps[0]), int(steps[1]))

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "negative_prompt": self.negative_text(), "variant": self.cfg.variant}

    def call_kwargs(self, family: ModelFamily, records: list[PromptRecord]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.cfg.zeroscope_reference_sampler:
            for cls_name in family.pipeline_classes:
                kwargs.update(REFERENCE_SAMPLERS.get(cls_name, {}))
        if self.negative_mode(family) == "keywords":
            kwargs.update(family.negative_prompt_kwargs(self.negative_text(), max(1, len(records))))
            if records and isinstance(kwargs.get("negative_prompt"), str):
                # one per prompt: TextToVideoSDPipeline refuses a str negative prompt beside a list of prompts
                kwargs["negative_prompt"] = [kwargs["negative_prompt"]] * len(records)
        return kwargs

    # ---- attach / detach --------------------------------------------------------------------
    def check_family(self, family: ModelFamily) -> None:
        """SAFREE needs one pooling rule per text encoder (the family's ``text_pooling``)."""
        super().check_family(family)
        encoders = family.text_encoders
        if not encoders or len(family.text_pooling) != len(encoders) or any(p not in POOLINGS for p in family.text_pooling):
            raise UnsupportedFamilyError(
                f"eraser 'safree' needs one text pooling rule ({', '.join(POOLINGS)}) per text encoder; "
                f"family {family.name!r} declares {list(family.text_pooling)} for {list(encoders)}"
            )

    def check_sites(self, pipe: Any, family: ModelFamily) -> None:
        """SAFREE needs a denoiser taking ``encoder_hidden_states`` and the family's encoders and tokenizers."""
        encoders = family.text_encoders
        denoiser = getattr(pipe, family.denoiser, None)
        if not isinstance(denoiser, torch.nn.Module):
            raise UnsupportedFamilyError(f"eraser 'safree': family {family.name!r} pipeline has no denoiser {family.denoiser!r}")
        params = inspect.signature(denoiser.forward).parameters
        if "encoder_hidden_states" not in params:
            raise UnsupportedFamilyError(
                f"eraser 'safree': the denoiser of family {family.name!r} takes no encoder_hidden_states "
                "(SAFREE edits the conditional prompt embedding)"
            )
        if len(encoders) > 1 and "pooled_projections" not in params:
            raise UnsupportedFamilyError(
                f"eraser 'safree': family {family.name!r} has {len(encoders)} text encoders but its denoiser takes no "
                "pooled_projections (the second encoder's insertion point)"
            )
        for attr in (*encoders, *family.tokenizers):
            if getattr(pipe, attr, None) is None:
                raise UnsupportedFamilyError(f"eraser 'safree': family {family.name!r} pipeline has no component {attr!r}")

    def apply(self, pipe: Any, family: ModelFamily, artifact_dir: Any) -> None:
        self.check_family(family)
        self.check_sites(pipe, family)
        if len(self._hooks):
            self.remove(pipe, family)
        self._pipe, self._family = pipe, family
        self._concept_cache.clear()  # both caches belong to one pipeline's encoders
        self._decision_cache.clear()
        for index, attr in enumerate(family.text_encoders):
            encoder = getattr(pipe, attr)
            self._hooks.post(f"record:{attr}", encoder, self._encoder_hook(index, encoder), with_kwargs=True)
        denoiser = getattr(pipe, family.denoiser)
        self._hooks.pre(f"swap:{family.denoiser}", denoiser, self._denoiser_hook, with_kwargs=True)

    def remove(self, pipe: Any, family: ModelFamily) -> None:
        self._hooks.clear()
        self._call = None
        self._pipe = None

    def before_batch(self, pipe: Any, family: ModelFamily, records: list[PromptRecord]) -> None:
        if not len(self._hooks):
            raise ErasebenchError("eraser 'safree': before_batch called before apply")
        self._call = _Call(records=list(records))

    def batch_info(self, records: list[PromptRecord]) -> list[dict[str, Any]]:
        call = self._call
        if call is None or not call.built:
            raise ErasebenchError("eraser 'safree': the denoiser never received this batch's prompt embeddings")
        if call.cond_calls == 0:
            raise ErasebenchError("eraser 'safree': no denoiser call carried this batch's conditional embeddings")
        return [{**info, "safree_edited_steps": sorted(steps)} for info, steps in zip(call.info, call.edited_steps)]

    # ---- hooks ------------------------------------------------------------------------------
    def _encoder_hook(self, index: int, encoder: torch.nn.Module):
        signature = inspect.signature(encoder.forward)

        def hook(module, args, kwargs, output):
            call = self._call
            if self._recording or call is None or call.built:
                return None
            arguments: dict[str, Any] = {}
            for name, value in signature.bind_partial(*args, **kwargs).arguments.items():
                if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                    arguments.update(value)
                else:
                    arguments[name] = value
            call.captures.setdefault(index, []).append(_Capture(arguments, output))
            return None

        return hook

    def _denoiser_hook(self, module, args, kwargs):
        call = self._call
        if call is None:
            return None
        ehs = kwargs.get("encoder_hidden_states")
        if not isinstance(ehs, torch.Tensor):
            raise UnsupportedFamilyError("eraser 'safree': the denoiser was called without encoder_hidden_states as a keyword")
        if not call.built:
            self._build(call, ehs, kwargs)
        timestep = kwargs.get("timestep", args[1] if len(args) > 1 else None)
        value = float(timestep.flatten()[0]) if isinstance(timestep, torch.Tensor) else timestep
        if call.step < 0 or value != call.last_timestep:
            call.step += 1
            call.last_timestep = value
        B = call.batch
        if ehs.shape[0] % B:
            return None
        new_ehs = None
        pooled = kwargs.get("pooled_projections")
        new_pooled = None
        for k in range(ehs.shape[0] // B):
            if not torch.equal(ehs[k * B : (k + 1) * B], call.orig_rows):
                continue
            call.cond_calls += 1
            active = [b for b in range(B) if call.first_step <= call.step <= call.last_step[b]]
            if not active:
                continue
            if new_ehs is None:
                new_ehs = ehs.clone()
            for b in active:
                new_ehs[k * B + b] = call.edited_rows[b]
                call.edited_steps[b].add(call.step)
            if call.edited_pooled is not None and isinstance(pooled, torch.Tensor) and pooled.shape[0] == ehs.shape[0]:
                if new_pooled is None:
                    new_pooled = pooled.clone()
                for b in active:
                    new_pooled[k * B + b] = call.edited_pooled[b]
        if new_ehs is None:
            return None
        kwargs = {**kwargs, "encoder_hidden_states": new_ehs}
        if new_pooled is not None:
            kwargs["pooled_projections"] = new_pooled
        return args, kwargs

    # ---- building the edited embeddings ------------------------------------------------------
    def _prompt_capture(self, call: _Call, index: int) -> _Capture:
        attr = self._family.text_encoders[index]
        for capture in call.captures.get(index, []):
            ids = capture.arguments.get("input_ids")
            if isinstance(ids, torch.Tensor) and ids.shape[0] == call.batch:
                return capture
        raise UnsupportedFamilyError(
            f"eraser 'safree': the pipeline did not encode this batch's {call.batch} prompts with {attr!r} "
            "before the first denoiser call"
        )

    @staticmethod
    def _candidates(output: Any) -> list[tuple[Any, torch.Tensor]]:
        """(key, tensor) of every per-token output of an encoder call: last hidden state, then hidden states last-first."""
        out = []
        last = getattr(output, "last_hidden_state", None)
        if last is None and isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
            last = output[0]
        if isinstance(last, torch.Tensor):
            out.append(("last", last))
        hidden = getattr(output, "hidden_states", None)
        if hidden:
            for i in range(1, len(hidden) + 1):
                out.append((-i, hidden[-i]))
        return out

    @staticmethod
    def _select(output: Any, key: Any) -> torch.Tensor:
        if key == "last":
            last = getattr(output, "last_hidden_state", None)
            return last if last is not None else output[0]
        return output.hidden_states[key]

    def _valid_lengths(self, capture: _Capture, tokenizer: Any) -> list[int]:
        ids = capture.arguments["input_ids"]
        mask = capture.arguments.get("attention_mask")
        if isinstance(mask, torch.Tensor):
            return [int(m.sum()) for m in mask]
        pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
        lengths = []
        for row in ids.tolist():
            n = len(row)
            while n > 0 and row[n - 1] == pad:
                n -= 1
            if pad is not None and pad == eos and n < len(row):
                n += 1  # CLIP pads with its eos token: keep the first one
            lengths.append(n)
        return lengths

    def _body(self, ids: list[int], valid: int, crop: int, tokenizer: Any) -> tuple[int, int]:
        """[start, end) of the prompt's own tokens in the id space: the valid region after the crop, stripped of
        the special tokens (bos/eos/template markers, never <unk>) at both ends."""
        special = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
        start, end = crop, valid
        while start < end and ids[start] in special:
            start += 1
        while end > start and ids[end - 1] in special:
            end -= 1
        return start, end

    def _encode(self, encoder, bound: dict[str, Any], ids: torch.Tensor, mask: torch.Tensor | None) -> Any:
        arguments = {k: v for k, v in bound.items() if k not in ("input_ids", "attention_mask")}
        if mask is not None:
            arguments["attention_mask"] = mask
        self._recording = True
        try:
            return encoder(input_ids=ids, **arguments)
        finally:
            self._recording = False

    @staticmethod
    def _pool(output: Any, pooling: str, crop: int, lengths: list[int]) -> torch.Tensor:
        """One vector per sequence from the encoder's final output, whatever layer the pipeline feeds the denoiser
        (every reference pools there): ``first`` row ``crop``, ``pooled`` the ``pooler_output``, ``mean`` the
        mean of rows ``crop .. length-1`` of each sequence."""
        if pooling == "pooled":
            pooled = getattr(output, "pooler_output", None)
            if pooled is None:
                raise UnsupportedFamilyError("eraser 'safree': pooling 'pooled' needs an encoder with a pooler_output")
            return pooled.float()
        rows = SAFREE._select(output, "last").float()
        if pooling == "first":
            return rows[:, crop]
        return torch.stack([rows[i, crop:n].mean(dim=0) for i, n in enumerate(lengths)])

    def _port_mean(self, pooling: str) -> bool:
        """The HunyuanVideo port's handling applies to the mean-pooled encoder under ``llama_port_pooling``."""
        return pooling == "mean" and self.cfg.llama_port_pooling

    def _concept_vectors(self, index: int, encoder, bound, pooling, crop, prefix, suffix, width, pad_id, tokenizer) -> torch.Tensor:
        """``C``: each keyword in the prompt's frame (template prefix and suffix), padded to the pipeline's width
        with an attention mask, pooled like the masked copies (``llama_port_pooling``: mean over every row)."""
        port = self._port_mean(pooling)
        cache_key = (index, pooling, port, crop, tuple(prefix), tuple(suffix), width)
        if cache_key in self._concept_cache:
            return self._concept_cache[cache_key]
        device = bound["input_ids"].device
        rows, masks, lengths = [], [], []
        for word in self.keywords():
            body = tokenizer(word, add_special_tokens=False)["input_ids"]
            seq = (list(prefix) + list(body) + list(suffix))[:width]
            lengths.append(width if port else len(seq))
            masks.append([1] * len(seq) + [0] * (width - len(seq)))
            rows.append(seq + [pad_id] * (width - len(seq)))
        ids = torch.tensor(rows, dtype=torch.long, device=device)
        mask = torch.tensor(masks, dtype=torch.long, device=device)
        output = self._encode(encoder, bound, ids, mask)
        vectors = self._pool(output, pooling, 0 if port else crop, lengths).T.contiguous()
        self._concept_cache[cache_key] = vectors
        return vectors

    def _copies(self, ids: list[int], start: int, end: int, valid: int, crop: int, rows: int, pooling: str):
        """How one prompt's masked copies are made: ``(sequence, masked positions in it, pooling crop, positions
        in id space, rows written)``. Default: the pipeline's own ids up to ``valid``, every token of the prompt's
        body masked in turn, each decision written to its own row. Parity: ``clip_offsets_on_t5`` masks positions
        ``1..len-2`` after the crop (CLIP offsets) on a first-token encoder; ``llama_port_pooling`` encodes the
        ids after the crop alone (no template), masks ``0..n-1`` (``n`` = length − 1) and writes row ``i + 1``."""
        if self._port_mean(pooling):
            n = valid - crop - 1
            positions = [crop + i for i in range(n)]
            return ids[crop:valid], [i for i in range(n)], 0, positions, [i + 1 for i in range(n) if i + 1 < rows]
        if pooling == "first" and self.cfg.clip_offsets_on_t5:
            n = min(valid - crop - 2, rows - 2)
            positions = [crop + i for i in range(1, n + 1)]
        else:
            positions = list(range(start, end))
        return ids[:valid], positions, crop, positions, [p - crop for p in positions]

    def _decide(self, index, encoder, bound, pooling, crop, ids_rows, valids, rows_len, tokenizer, prompts):
        """Trigger decisions for every prompt of the batch (masked copies encoded in equal-length batches)."""
        decisions: list[_PromptDecision | None] = [None] * len(ids_rows)
        flags = (self.cfg.clip_offsets_on_t5, self.cfg.llama_port_pooling)
        todo = []
        for b, (ids, valid) in enumerate(zip(ids_rows, valids)):
            cache_key = (index, pooling, crop, flags, tuple(ids[:valid]))
            if cache_key in self._decision_cache:
                self._decision_cache.move_to_end(cache_key)
                decisions[b] = self._decision_cache[cache_key]
                continue
            start, end = self._body(ids, valid, crop, tokenizer)
            seq, masked, pool_crop, positions, rows = self._copies(ids, start, end, valid, crop, rows_len, pooling)
            full = len(tokenizer(prompts[b], add_special_tokens=False)["input_ids"])
            truncated = full > end - start
            todo.append((b, cache_key, seq, masked, pool_crop, positions, rows, truncated))
        # masked copies of every prompt, grouped by sequence length so no copy needs padding
        copies: dict[int, list[tuple[int, int]]] = {}
        for slot, (_, _, seq, masked, *_rest) in enumerate(todo):
            if len(masked) >= 2:
                copies.setdefault(len(seq), []).extend((slot, p) for p in masked)
        pooled_by_slot: dict[int, list[torch.Tensor]] = {}
        device = bound["input_ids"].device
        for length, items in copies.items():
            for chunk_start in range(0, len(items), self.cfg.encode_batch_size):
                chunk = items[chunk_start : chunk_start + self.cfg.encode_batch_size]
                ids = torch.tensor([todo[slot][2] for slot, _ in chunk], dtype=torch.long, device=device)
                for row, (_, p) in enumerate(chunk):
                    ids[row, p] = 0  # the mask token is id 0 (docs/erasers/safree.md)
                pool_crop = todo[chunk[0][0]][4]
                pooled = self._pool(self._encode(encoder, bound, ids, None), pooling, pool_crop, [length] * len(chunk))
                for row, (slot, _) in enumerate(chunk):
                    pooled_by_slot.setdefault(slot, []).append(pooled[row])
        for slot, (b, cache_key, _, masked, _, positions, rows, truncated) in enumerate(todo):
            skipped = len(masked) < 2
            pooled = None if skipped else torch.stack(pooled_by_slot[slot])
            decision = _PromptDecision(positions, rows, truncated, skipped, pooled)
            decisions[b] = decision
            self._decision_cache[cache_key] = decision
            while len(self._decision_cache) > CACHE_SIZE:
                self._decision_cache.popitem(last=False)
        return decisions

    def _edit(self, C, decision: _PromptDecision, rows: torch.Tensor, valid_rows: int) -> tuple[torch.Tensor, list[int], float]:
        """One prompt's rows (L×D) with ``(I − P_C) P_M e_t`` at trigger rows, and the SVF β.

        The merged rows keep the projection's dtype where it differs from the rows' (``torch.where`` promotion,
        as in the reference); callers cast them to the model's dtype."""
        if decision.skipped:
            return rows, [], 0.0
        M = decision.masked_pooled.T
        reference = self.cfg.bf16_projection
        _, _, flags = (reference_trigger_test if reference else trigger_test)(C, decision.masked_pooled, self.cfg.alpha)
        n = rows.shape[0]
        flagged = [r for r, f in zip(decision.rows, flags.tolist()) if f and 0 <= r < n]
        if reference:
            projected = reference_projection(C, M, rows)
            merged = rows.to(torch.result_type(rows, projected)).clone()
        else:
            projected = None
            merged = rows.clone()
        if flagged:
            idx = torch.tensor(flagged, device=rows.device)
            new = projected[idx] if reference else remove_subspace(C, project_rows(M, rows[idx])).to(rows.dtype)
            merged[idx] = new.to(merged.dtype)
        beta = 0.0
        if self.cfg.variant == "paper-svf":
            e = rows[:valid_rows].float()
            e_hat = remove_subspace(C, project_rows(M, e))
            beta = 1.0 - float(torch.nn.functional.cosine_similarity(e_hat, e, dim=-1).mean())
        return merged, flagged, beta

    def _build(self, call: _Call, ehs: torch.Tensor, kwargs: dict[str, Any]) -> None:
        pipe, family, cfg = self._pipe, self._family, self.cfg
        call.batch = B = len(call.records)
        prompts = [r.prompt for r in call.records]
        encoders = family.text_encoders
        if ehs.shape[0] % B:
            raise UnsupportedFamilyError(
                f"eraser 'safree': encoder_hidden_states batch {ehs.shape[0]} is not a multiple of the {B} prompts"
            )
        edited_rows = None
        edited_pooled = None
        infos: list[dict[str, Any]] = [
            {"safree_variant": cfg.variant, "safree_skipped": False, "truncated": False, "safree_triggers": {}, "safree_tested": {}}
            for _ in range(B)
        ]
        any_edit = [False] * B
        betas = [0.0] * B
        for index, attr in enumerate(encoders):
            encoder = getattr(pipe, attr)
            tokenizer = getattr(pipe, family.tokenizers[index])
            pooling = family.text_pooling[index]
            capture = self._prompt_capture(call, index)
            bound = capture.arguments
            ids = bound["input_ids"]
            valids = self._valid_lengths(capture, tokenizer)
            if index == 0:
                key, crop, slot = self._locate_rows(capture, ehs, valids, B)
                if key is None:
                    raise UnsupportedFamilyError(
                        f"eraser 'safree': family {family.name!r}: the output of {attr!r} for this batch is not among the "
                        "denoiser's encoder_hidden_states (no insertion point for SAFREE)"
                    )
                rows_all = ehs[slot * B : (slot + 1) * B]
                call.orig_rows = rows_all.clone()
            else:
                pooled_in = kwargs.get("pooled_projections")
                pooler = getattr(capture.output, "pooler_output", None)
                if not isinstance(pooled_in, torch.Tensor) or pooler is None:
                    raise UnsupportedFamilyError(
                        f"eraser 'safree': family {family.name!r}: {attr!r} feeds no pooled_projections of the denoiser"
                    )
                slot = next(
                    (k for k in range(pooled_in.shape[0] // B) if torch.equal(pooled_in[k * B : (k + 1) * B], pooler.to(pooled_in.dtype))),
                    None,
                )
                if slot is None:
                    raise UnsupportedFamilyError(
                        f"eraser 'safree': family {family.name!r}: the pooled output of {attr!r} is not the denoiser's pooled_projections"
                    )
                key, crop = "last", 0
                rows_all = self._select(capture.output, key)
                call.orig_pooled = pooled_in[slot * B : (slot + 1) * B].clone()
            rows_len = rows_all.shape[1]
            ids_rows = ids.tolist()
            decisions = self._decide(index, encoder, bound, pooling, crop, ids_rows, valids, rows_len, tokenizer, prompts)
            # the keyword frame (prefix / suffix around the prompt's own tokens) from the batch's longest suffix
            frames = []
            for b in range(B):
                start, end = self._body(ids_rows[b], valids[b], crop, tokenizer)
                frames.append((ids_rows[b][:start], ids_rows[b][end : valids[b]]))
            prefix, suffix = max(frames, key=lambda f: len(f[1]))
            pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
            C = self._concept_vectors(index, encoder, bound, pooling, crop, prefix, suffix, ids.shape[1], pad_id, tokenizer)
            new_rows = rows_all.clone()
            merged_rows = []
            for b, decision in enumerate(decisions):
                valid_rows = max(1, min(valids[b] - crop, rows_len))
                merged, triggers, beta = self._edit(C, decision, rows_all[b], valid_rows)
                merged_rows.append(merged)
                new_rows[b] = merged.to(new_rows.dtype)
                infos[b]["safree_triggers"][attr] = triggers
                infos[b]["safree_tested"][attr] = [p - crop for p in decision.positions]
                infos[b]["truncated"] = infos[b]["truncated"] or decision.truncated
                if index == 0:
                    infos[b]["safree_skipped"] = decision.skipped
                    betas[b] = beta
                    any_edit[b] = bool(triggers)
                elif not decision.skipped:
                    any_edit[b] = True
            if index == 0:
                edited_rows = new_rows
            else:
                # HunyuanVideo port: the mean of the (partly projected) CLIP rows replaces the pooled vector; the
                # reference's arithmetic averages the merged rows in their promoted dtype
                pooled_new = call.orig_pooled.clone()
                for b, decision in enumerate(decisions):
                    if not decision.skipped:
                        merged = merged_rows[b] if cfg.bf16_projection else merged_rows[b].float()
                        pooled_new[b] = merged.mean(dim=0).to(pooled_new.dtype)
                edited_pooled = pooled_new
        call.edited_rows = edited_rows
        call.edited_pooled = edited_pooled
        timesteps = getattr(pipe.scheduler, "timesteps", None)
        call.num_steps = len(timesteps) if timesteps is not None else 0
        call.edited_steps = [set() for _ in range(B)]
        call.first_step, last = self._window(call.num_steps, family)
        for b in range(B):
            if cfg.variant == "paper-svf":
                up_t = cfg.svf_up_t * (call.num_steps / 50.0 if cfg.svf_scale_to_steps else 1.0)
                t_star = svf_steps(betas[b], up_t, cfg.svf_s, cfg.svf_k, cfg.svf_t0, cfg.svf_form)
                infos[b]["safree_beta"] = betas[b]
                infos[b]["safree_t_star"] = t_star
                last_b: float = t_star
            else:
                last_b = last
            edits = any_edit[b] and not infos[b]["safree_skipped"]
            call.last_step.append(last_b if edits else -1)
            infos[b]["safree_edits"] = edits
            infos[b]["safree_window"] = [call.first_step, None if last_b == math.inf else last_b]
            infos[b]["safree_negative_prompt"] = self.negative_text() if self.negative_mode(family) == "keywords" else None
            infos[b]["safree_reference"] = next((REFERENCE_CODE[c] for c in family.pipeline_classes if c in REFERENCE_CODE), "port")
        call.info = infos
        call.captures = {}
        call.built = True

    def _locate_rows(self, capture: _Capture, ehs: torch.Tensor, valids: list[int], B: int):
        """(output key, crop, batch slot) such that the encoder output, cropped, equals a B-slice of ``ehs`` on valid rows."""
        width = capture.arguments["input_ids"].shape[1]
        L = ehs.shape[1]
        crop = width - L
        if crop < 0:
            return None, 0, 0
        for key, tensor in self._candidates(capture.output):
            if tensor.dim() != 3 or tensor.shape[0] != B or tensor.shape[1] != width or tensor.shape[2] != ehs.shape[2]:
                continue
            cand = tensor[:, crop:].to(ehs.dtype)
            for slot in range(ehs.shape[0] // B):
                part = ehs[slot * B : (slot + 1) * B]
                if all(torch.equal(cand[b, : max(0, v - crop)], part[b, : max(0, v - crop)]) for b, v in enumerate(valids)) and any(
                    v > crop for v in valids
                ):
                    return key, crop, slot
        return None, 0, 0

    def _window(self, num_steps: int, family: ModelFamily) -> tuple[int, float]:
        steps = self.steps_setting(family)
        if steps == "fraction":
            return 0, round(self.cfg.window_fraction * num_steps) - 1
        if steps == "all":
            return 0, math.inf
        return steps[0], steps[1]

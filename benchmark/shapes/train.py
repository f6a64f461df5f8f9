"""Train the tiny shapes-world text-to-video model that ships in ``benchmark/shapes_model``.

Usage::

    python -m benchmark.shapes.train --out benchmark/shapes_model [--seed 0] [--smoke]
    python -m benchmark.shapes.train --evaluate benchmark/shapes_model

The model is a real ``CogVideoXPipeline`` built only from diffusers / transformers classes (section 9 of
``shapes-calibration.md``):

* a word-level ``PreTrainedTokenizerFast`` over ``world.tokenizer_vocab()`` (``<pad>`` 0, ``</s>`` 1,
  ``<unk>`` 2), model max length 16;
* a tiny ``T5EncoderModel`` (d_model 64, 2 layers), trained jointly with the transformer;
* ``AutoencoderKLCogVideoX`` with 3 blocks (16, 32, 32) and 4 latent channels: 9x32x32 px -> 3x8x8 latents;
* ``CogVideoXTransformer3DModel`` with 4 layers x 4 heads x 32, patch 2, 16 text tokens (sincos positions);
* ``CogVideoXDDIMScheduler`` with the CogVideoX-2b configuration (v-prediction, zero-terminal-SNR).

Training runs in three stages, each with a fixed number of steps (so a run is a deterministic function of
the seed at a given thread count; the step counts are sized for about 50 min on 2 CPU cores):

1. **VAE** on videos rendered on the fly: foreground-weighted MSE + L1, KL 1e-3 per element, and latent-noise
   augmentation (z += 0.25 std(z) eps) so that the decoder tolerates the diffusion model's latent errors.
   Two acceptance gates follow (oracle accuracy of reconstructions, and shape accuracy when decoding
   mu + N(0, 0.3^2) in scaled units); if either fails, the VAE gets up to two short extra rounds.
2. **Latent encoding** of a balanced set of videos (posterior mean and std; a fresh sample every step);
   ``scaling_factor = 1 / std(latents)`` is written into the VAE config.
3. **Text encoder + transformer**, jointly, v-prediction MSE with EMA weights, 10 % empty prompts (CFG),
   15 % partial prompts, and two prompt augmentations that never use a paraphrase-only word:
   random ``<unk>`` insertions (so unknown filler words are ignored) and word-order shuffles.
   At save time, every vocabulary row that training never produced (``world.PARAPHRASE_ONLY_WORDS``, whose
   embeddings are untrained) is set to the trained ``<unk>`` embedding, i.e. the model treats those words
   exactly like an unknown word, which is what it was taught to ignore.

The pipeline is saved (EMA weights, fp32 safetensors) with ``TRAINING.json`` (seed, hyperparameters, step
counts, wall times, package versions, evaluation). The evaluation generates 256 videos on the main templates
and 256 on the held-out paraphrase templates with held-out noise seeds and reads them with the oracle.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import world
from .oracle import accuracy, confusion_matrix, read_videos
from .world import (
    ALL_ATTRIBUTES,
    COLOURS,
    MAIN_TEMPLATE_IDS,
    PARAPHRASE_TEMPLATE_IDS,
    SHAPES,
    ShapeAttributes,
    prompt_for,
    render_videos,
    sample_training_prompt,
    split_words,
    tokenizer_vocab,
)

__all__ = [
    "TrainConfig",
    "build_pipeline_components",
    "build_tokenizer",
    "evaluate_pipeline",
    "main",
    "train",
]

TEXT_LEN = 16  # tokenizer model_max_length == transformer max_text_seq_length == call max_sequence_length
NUM_FRAMES = world.DEFAULT_FRAMES  # 9 pixel frames -> 3 latent frames
SIZE = world.DEFAULT_SIZE  # 32 px -> 8x8 latents
PAD_ID, EOS_ID, UNK_ID = 0, 1, 2

# ----------------------------------------------------------------------------------------------
# Component configurations (section 9 of shapes-calibration.md)

T5_CONFIG: dict[str, Any] = dict(
    d_model=64,
    d_kv=16,
    d_ff=128,
    num_layers=2,
    num_heads=4,
    feed_forward_proj="gated-gelu",
    dropout_rate=0.0,
    relative_attention_num_buckets=8,
    relative_attention_max_distance=16,
    pad_token_id=PAD_ID,
    eos_token_id=EOS_ID,
    decoder_start_token_id=PAD_ID,
    is_encoder_decoder=False,
)

VAE_CONFIG: dict[str, Any] = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("CogVideoXDownBlock3D",) * 3,
    up_block_types=("CogVideoXUpBlock3D",) * 3,
    block_out_channels=(16, 32, 32),
    layers_per_block=1,
    norm_num_groups=8,
    latent_channels=4,
    temporal_compression_ratio=4,
    sample_height=SIZE,
    sample_width=SIZE,
)

TRANSFORMER_CONFIG: dict[str, Any] = dict(
    num_attention_heads=4,
    attention_head_dim=32,
    in_channels=4,
    out_channels=4,
    time_embed_dim=128,
    text_embed_dim=64,  # == T5 d_model
    num_layers=4,
    sample_width=SIZE // 4,  # latent units
    sample_height=SIZE // 4,
    sample_frames=NUM_FRAMES,  # pixel frames
    patch_size=2,
    temporal_compression_ratio=4,
    max_text_seq_length=TEXT_LEN,
    spatial_interpolation_scale=1.0,
    temporal_interpolation_scale=1.0,
    use_rotary_positional_embeddings=False,
)

#: CogVideoX-2b scheduler configuration.
SCHEDULER_CONFIG: dict[str, Any] = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=True,
    steps_offset=0,
    prediction_type="v_prediction",
    rescale_betas_zero_snr=True,
    snr_shift_scale=3.0,
    timestep_spacing="trailing",
)

#: Generation settings of the evaluation (and of the benchmark).
GENERATION: dict[str, Any] = dict(
    num_frames=NUM_FRAMES,
    height=SIZE,
    width=SIZE,
    num_inference_steps=25,
    guidance_scale=5.0,
    max_sequence_length=TEXT_LEN,
)


@dataclasses.dataclass
class TrainConfig:
    """Every hyperparameter of a training run (all of it goes into TRAINING.json)."""

    seed: int = 0
    threads: int = 2
    # --- VAE stage
    vae_steps: int = 2000
    vae_batch: int = 8
    vae_lr: float = 1e-3
    vae_warmup: int = 30
    vae_min_lr_frac: float = 0.1
    vae_weight_decay: float = 0.0
    vae_kl_weight: float = 1e-3  # per element
    vae_fg_weight: float = 4.0  # pixel weight 1 + fg_weight * dilated foreground mask, renormalised
    vae_fg_dilate: int = 1  # px (3x3 max-pool)
    vae_latent_noise: float = 0.25  # z += latent_noise * std(z) * eps before decoding
    grad_clip: float = 1.0
    # --- VAE acceptance gates
    gate_videos: int = 512
    gate_recon_min: float = 0.99  # oracle "all three" accuracy of reconstructions
    gate_noise_scaled: float = 0.3  # decode mu + N(0, s^2) in scaled units ...
    gate_noise_shape_min: float = 0.98  # ... and need this shape accuracy
    gate_extra_rounds: int = 2
    gate_extra_steps: int = 300
    gate_extra_lr: float = 3e-4
    # --- latent data set
    dataset_videos: int = 16384  # balanced over the 64 attribute combinations
    encode_batch: int = 64
    # --- text encoder + transformer stage
    dit_steps: int = 5200
    dit_batch: int = 64
    dit_lr: float = 5e-4
    dit_warmup: int = 100
    dit_min_lr_frac: float = 0.1
    dit_weight_decay: float = 0.01
    ema_decay: float = 0.999
    p_empty: float = 0.10
    p_partial: float = 0.15
    p_unk: float = 0.25  # insert 1..unk_max "<unk>" tokens at random positions
    unk_max: int = 3
    p_shuffle: float = 0.10  # shuffle the word order of a (non-empty) prompt
    tie_untrained_to_unk: bool = True
    # --- evaluation
    eval_repeats: int = 4  # x 64 combinations per template family
    eval_batch: int = 16
    eval_seed_main: int = 10_000_000
    eval_seed_para: int = 20_000_000
    eval_untied: bool = True  # also measure paraphrases with the untrained rows left as they are
    eval_max_videos: int = 0  # per family; 0 = all (64 x eval_repeats)
    # --- render seeds (disjoint ranges)
    dataset_seed_base: int = 1_000_000
    gate_seed_base: int = 2_000_000_000
    log_every: int = 50

    @classmethod
    def smoke(cls, seed: int = 0) -> "TrainConfig":
        return cls(
            seed=seed,
            vae_steps=20,
            vae_batch=2,
            vae_warmup=5,
            gate_videos=16,
            gate_extra_rounds=1,
            gate_extra_steps=5,
            dataset_videos=128,
            encode_batch=64,
            dit_steps=20,
            dit_batch=8,
            dit_warmup=5,
            eval_repeats=1,
            eval_batch=8,
            eval_max_videos=8,
            log_every=5,
        )


# ----------------------------------------------------------------------------------------------
# Building blocks


def build_tokenizer():
    """Word-level T5-style tokenizer over the shapes vocabulary; saves/loads inside a pipeline folder."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = tokenizer_vocab()
    assert vocab["<pad>"] == PAD_ID and vocab["</s>"] == EOS_ID and vocab["<unk>"] == UNK_ID
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # \w+|[^\w\s]+, like world.split_words
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", EOS_ID)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=TEXT_LEN,
        padding_side="right",
        truncation_side="right",
    )


def build_pipeline_components(seed: int) -> dict[str, Any]:
    """Fresh (random-init, seeded) tokenizer, text encoder, VAE, transformer and scheduler."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    text_encoder = T5EncoderModel(T5Config(vocab_size=len(tokenizer_vocab()), **T5_CONFIG))
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLCogVideoX(**VAE_CONFIG)
    torch.manual_seed(seed + 2)
    transformer = CogVideoXTransformer3DModel(**TRANSFORMER_CONFIG)
    scheduler = CogVideoXDDIMScheduler(**SCHEDULER_CONFIG)
    return dict(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def videos_to_tensor(videos: np.ndarray) -> torch.Tensor:
    """(N, F, H, W, 3) uint8 -> (N, 3, F, H, W) float32 in [-1, 1] (the VAE's input convention)."""
    x = torch.from_numpy(np.ascontiguousarray(videos)).permute(0, 4, 1, 2, 3).float()
    return x / 127.5 - 1.0


def tensor_to_videos(x: torch.Tensor) -> np.ndarray:
    """(N, 3, F, H, W) in [-1, 1] -> (N, F, H, W, 3) float in [0, 1] (what the pipeline outputs)."""
    return (x.detach().float().clamp(-1, 1) / 2 + 0.5).permute(0, 2, 3, 4, 1).numpy()


def lr_factor(step: int, total: int, warmup: int, min_frac: float) -> float:
    """Linear warm-up, then cosine decay to ``min_frac`` at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_frac + (1.0 - min_frac) * 0.5 * (1.0 + math.cos(math.pi * progress))


class Logger:
    def __init__(self, quiet: bool = False) -> None:
        self.t0 = time.perf_counter()
        self.quiet = quiet

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            print(f"[{self.elapsed():7.1f}s] {msg}", flush=True)


# ----------------------------------------------------------------------------------------------
# Prompts (id level, so that "<unk>" can be inserted as a token)


class PromptIds:
    """Training prompts -> padded input ids, exactly as the pipeline's tokenizer call would produce them.

    Words are split with ``world.split_words`` (the tokenizer's ``Lowercase`` + ``Whitespace``), mapped with
    ``tokenizer_vocab()`` and closed with ``</s>``; pads follow. Augmentations act on the word-id list.
    """

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.vocab = tokenizer_vocab()

    def ids(self, prompt: str, rng: np.random.Generator | None = None) -> list[int]:
        words = [self.vocab.get(w, UNK_ID) for w in split_words(prompt)]
        if rng is not None and words:
            if rng.random() < self.cfg.p_shuffle:
                words = [words[i] for i in rng.permutation(len(words))]
            if rng.random() < self.cfg.p_unk:
                for _ in range(int(rng.integers(1, self.cfg.unk_max + 1))):
                    words.insert(int(rng.integers(0, len(words) + 1)), UNK_ID)
        words = words[: TEXT_LEN - 1] + [EOS_ID]
        return words + [PAD_ID] * (TEXT_LEN - len(words))

    def batch(self, attrs: Sequence[ShapeAttributes], rng: np.random.Generator) -> tuple[torch.Tensor, list[str]]:
        prompts = [
            sample_training_prompt(a, rng, p_empty=self.cfg.p_empty, p_partial=self.cfg.p_partial) for a in attrs
        ]
        ids = [self.ids(p, rng) for p in prompts]
        return torch.tensor(ids, dtype=torch.long), prompts


# ----------------------------------------------------------------------------------------------
# Stage 1: VAE


def _random_items(rng: np.random.Generator, n: int) -> list[tuple[ShapeAttributes, int]]:
    return [(world.random_attributes(rng), int(rng.integers(0, 2**31 - 1))) for _ in range(n)]


def _balanced_items(n: int, seed_base: int) -> list[tuple[ShapeAttributes, int]]:
    """``n`` items cycling through the 64 combinations, with distinct render seeds."""
    return [(ALL_ATTRIBUTES[i % len(ALL_ATTRIBUTES)], seed_base + i) for i in range(n)]


def vae_loss(vae, x: torch.Tensor, cfg: TrainConfig) -> tuple[torch.Tensor, dict[str, float]]:
    posterior = vae.encode(x).latent_dist
    mu, logvar = posterior.mean, posterior.logvar
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    if cfg.vae_latent_noise > 0:
        z = z + cfg.vae_latent_noise * z.detach().std() * torch.randn_like(z)
    recon = vae.decode(z).sample
    # Foreground weight: 1 + w * (dilated mask of non-black pixels), renormalised to mean 1.
    fg = (x.amax(dim=1, keepdim=True) > -0.99).float()  # (B, 1, F, H, W)
    if cfg.vae_fg_dilate > 0:
        k = 2 * cfg.vae_fg_dilate + 1
        b, _, f, h, w = fg.shape
        fg = F.max_pool2d(fg.transpose(1, 2).reshape(b * f, 1, h, w), k, stride=1, padding=cfg.vae_fg_dilate)
        fg = fg.reshape(b, f, 1, h, w).transpose(1, 2)
    weight = 1.0 + cfg.vae_fg_weight * fg
    weight = weight / weight.mean()
    err = recon - x
    mse = (weight * err.pow(2)).mean()
    l1 = (weight * err.abs()).mean()
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean()
    loss = mse + l1 + cfg.vae_kl_weight * kl
    return loss, {"loss": loss.item(), "mse": mse.item(), "l1": l1.item(), "kl": kl.item()}


def run_vae_steps(
    vae, opt, cfg: TrainConfig, rng: np.random.Generator, steps: int, lr: float, warmup: int, log: Logger, tag: str
) -> dict[str, Any]:
    vae.train()
    t0 = time.perf_counter()
    hist: list[float] = []
    last: dict[str, float] = {}
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr * lr_factor(step, steps, warmup, cfg.vae_min_lr_frac)
        x = videos_to_tensor(render_videos(_random_items(rng, cfg.vae_batch)))
        loss, last = vae_loss(vae, x, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), cfg.grad_clip)
        opt.step()
        hist.append(last["loss"])
        if (step + 1) % cfg.log_every == 0 or step + 1 == steps:
            el = time.perf_counter() - t0
            log(
                f"{tag} step {step + 1}/{steps} loss {np.mean(hist[-cfg.log_every:]):.4f} "
                f"(mse {last['mse']:.4f} l1 {last['l1']:.4f} kl {last['kl']:.2f}) "
                f"lr {opt.param_groups[0]['lr']:.2e} {el:.0f}s ({el / (step + 1):.3f} s/step)"
            )
    vae.eval()
    return {"steps": steps, "seconds": time.perf_counter() - t0, "final_loss": float(np.mean(hist[-50:]))}


@torch.no_grad()
def encode_videos(vae, videos: np.ndarray, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std, (N, C, F', H', W') each."""
    mus, stds = [], []
    for i in range(0, len(videos), batch):
        post = vae.encode(videos_to_tensor(videos[i : i + batch])).latent_dist
        mus.append(post.mean)
        stds.append(post.std)
    return torch.cat(mus), torch.cat(stds)


@torch.no_grad()
def decode_latents(vae, z: torch.Tensor, batch: int) -> np.ndarray:
    return np.concatenate([tensor_to_videos(vae.decode(z[i : i + batch]).sample) for i in range(0, len(z), batch)])


def _conf(readings, truths, attribute: str) -> dict[str, Any]:
    rows, cols, mat = confusion_matrix(readings, truths, attribute)
    return {"rows": list(rows), "cols": list(cols), "matrix": mat.tolist()}


@torch.no_grad()
def vae_gates(vae, cfg: TrainConfig, log: Logger) -> dict[str, Any]:
    """Acceptance gates: reconstruction oracle accuracy, and shape accuracy under latent noise."""
    t0 = time.perf_counter()
    items = _balanced_items(cfg.gate_videos, cfg.gate_seed_base)
    truths = [a for a, _ in items]
    videos = render_videos(items)
    mu, _ = encode_videos(vae, videos, 64)
    std = float(mu.std())
    x = videos_to_tensor(videos)
    recon = decode_latents(vae, mu, 64)
    psnr = float(10 * np.log10(1.0 / np.mean((recon - (x.permute(0, 2, 3, 4, 1).numpy() + 1) / 2) ** 2)))
    r_recon = read_videos(recon)
    acc_recon = accuracy(r_recon, truths)
    g = torch.Generator().manual_seed(cfg.seed + 12345)
    noise = torch.randn(mu.shape, generator=g) * (cfg.gate_noise_scaled * std)  # scaled units -> raw
    r_noisy = read_videos(decode_latents(vae, mu + noise, 64))
    acc_noisy = accuracy(r_noisy, truths)
    passed = acc_recon["all"] >= cfg.gate_recon_min and acc_noisy["shape"] >= cfg.gate_noise_shape_min
    out = {
        "videos": len(items),
        "latent_std": std,
        "recon_psnr_db": psnr,
        "recon_accuracy": acc_recon,
        "recon_shape_confusion": _conf(r_recon, truths, "shape"),
        "noisy_decode_scaled_std": cfg.gate_noise_scaled,
        "noisy_accuracy": acc_noisy,
        "noisy_shape_confusion": _conf(r_noisy, truths, "shape"),
        "passed": bool(passed),
        "seconds": time.perf_counter() - t0,
    }
    log(
        f"VAE gates: recon PSNR {psnr:.1f} dB, recon acc {_fmt_acc(acc_recon)}; "
        f"decode mu+N(0,{cfg.gate_noise_scaled}^2 scaled) acc {_fmt_acc(acc_noisy)} -> "
        f"{'PASS' if passed else 'FAIL'} ({out['seconds']:.0f}s)"
    )
    return out


def _fmt_acc(acc: dict[str, float]) -> str:
    return " ".join(f"{k} {100 * v:.1f}%" for k, v in acc.items())


# ----------------------------------------------------------------------------------------------
# Stage 3: text encoder + transformer


class EMA:
    """Exponential moving average of the parameters of several modules (warm-up min(d, (1+n)/(10+n)))."""

    def __init__(self, modules: Sequence[torch.nn.Module], decay: float) -> None:
        self.decay = decay
        self.copies = [copy.deepcopy(m).eval().requires_grad_(False) for m in modules]
        self.src = [list(m.parameters()) for m in modules]
        self.dst = [list(c.parameters()) for c in self.copies]
        self.n = 0

    @torch.no_grad()
    def update(self) -> None:
        d = min(self.decay, (1 + self.n) / (10 + self.n))
        self.n += 1
        for src, dst in zip(self.src, self.dst):
            torch._foreach_lerp_(dst, [p.detach() for p in src], 1.0 - d)


def train_dit(
    text_encoder,
    transformer,
    scheduler,
    mu: torch.Tensor,
    std: torch.Tensor,
    attrs: Sequence[ShapeAttributes],
    scaling_factor: float,
    cfg: TrainConfig,
    rng: np.random.Generator,
    log: Logger,
) -> tuple[EMA, dict[str, Any]]:
    prompts = PromptIds(cfg)
    params = list(text_encoder.parameters()) + list(transformer.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.dit_lr, weight_decay=cfg.dit_weight_decay)
    ema = EMA([text_encoder, transformer], cfg.ema_decay)
    alphas = scheduler.alphas_cumprod.float()  # float64 in the scheduler: keep everything fp32
    text_encoder.train()
    transformer.train()
    n = len(mu)
    t0 = time.perf_counter()
    hist: list[float] = []
    counts = {"empty": 0, "total": 0}
    for step in range(cfg.dit_steps):
        for g in opt.param_groups:
            g["lr"] = cfg.dit_lr * lr_factor(step, cfg.dit_steps, cfg.dit_warmup, cfg.dit_min_lr_frac)
        idx = rng.integers(0, n, size=cfg.dit_batch)
        ids, texts = prompts.batch([attrs[i] for i in idx], rng)
        counts["empty"] += sum(1 for t in texts if not t)
        counts["total"] += len(texts)
        idx_t = torch.from_numpy(idx)
        x0 = (mu[idx_t] + std[idx_t] * torch.randn_like(mu[idx_t])) * scaling_factor
        x0 = x0.permute(0, 2, 1, 3, 4)  # (B, C, F, H, W) -> frame-major (B, F, C, H, W)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (cfg.dit_batch,))
        a = alphas[t].view(-1, 1, 1, 1, 1)
        eps = torch.randn_like(x0)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        v = a.sqrt() * eps - (1 - a).sqrt() * x0
        emb = text_encoder(ids)[0]
        pred = transformer(hidden_states=xt, encoder_hidden_states=emb, timestep=t, return_dict=False)[0]
        loss = F.mse_loss(pred, v)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        ema.update()
        hist.append(loss.item())
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.dit_steps:
            el = time.perf_counter() - t0
            log(
                f"DiT step {step + 1}/{cfg.dit_steps} loss {np.mean(hist[-cfg.log_every:]):.4f} "
                f"lr {opt.param_groups[0]['lr']:.2e} {el:.0f}s ({el / (step + 1):.3f} s/step)"
            )
    text_encoder.eval()
    transformer.eval()
    stats = {
        "steps": cfg.dit_steps,
        "seconds": time.perf_counter() - t0,
        "final_loss": float(np.mean(hist[-200:])),
        "empty_prompt_fraction": counts["empty"] / max(1, counts["total"]),
    }
    return ema, stats


def untrained_token_ids() -> list[int]:
    """Vocabulary ids that no training prompt can produce (the paraphrase-only words)."""
    vocab = tokenizer_vocab()
    trained = set(world.TRAINING_VOCABULARY)
    return [i for w, i in vocab.items() if w not in trained and w not in world.SPECIAL_TOKENS]


@torch.no_grad()
def tie_untrained_to_unk(text_encoder) -> tuple[list[int], torch.Tensor]:
    """Give every never-trained row the ``<unk>`` embedding; returns (ids, their previous rows)."""
    emb = text_encoder.get_input_embeddings().weight
    ids = untrained_token_ids()
    old = emb[ids].clone()
    emb[ids] = emb[UNK_ID].clone()
    return ids, old


# ----------------------------------------------------------------------------------------------
# Evaluation


def eval_items(family: str, repeats: int) -> list[tuple[ShapeAttributes, str]]:
    """(attributes, template id): every combination ``repeats`` times, templates cycling per repeat."""
    tids = MAIN_TEMPLATE_IDS if family == "main" else PARAPHRASE_TEMPLATE_IDS
    return [
        (a, tids[(k + r) % len(tids)]) for r in range(repeats) for k, a in enumerate(ALL_ATTRIBUTES)
    ]


def generate(pipe, prompts: Sequence[str], seeds: Sequence[int], batch: int) -> tuple[np.ndarray, float]:
    """Generate one video per prompt (seeded per video); returns frames and seconds."""
    out = []
    t0 = time.perf_counter()
    for i in range(0, len(prompts), batch):
        res = pipe(
            prompt=list(prompts[i : i + batch]),
            generator=[torch.Generator().manual_seed(int(s)) for s in seeds[i : i + batch]],
            output_type="np",
            **GENERATION,
        )
        out.append(np.asarray(res.frames))
    return np.concatenate(out), time.perf_counter() - t0


def summarise(readings, truths, template_ids: Sequence[str]) -> dict[str, Any]:
    acc = accuracy(readings, truths)
    per_colour_shape = {
        c: accuracy([r for r, t in zip(readings, truths) if t.colour == c], [t for t in truths if t.colour == c])[
            "shape"
        ]
        for c in COLOURS
    }
    per_shape = {
        s: accuracy([r for r, t in zip(readings, truths) if t.shape == s], [t for t in truths if t.shape == s])[
            "shape"
        ]
        for s in SHAPES
    }
    per_template = {}
    for tid in dict.fromkeys(template_ids):
        sel = [i for i, x in enumerate(template_ids) if x == tid]
        per_template[tid] = {"n": len(sel), **accuracy([readings[i] for i in sel], [truths[i] for i in sel])}
    return {
        "n": len(truths),
        "accuracy": acc,
        "shape_accuracy_per_colour": per_colour_shape,
        "shape_accuracy_per_shape": per_shape,
        "per_template": per_template,
        "confusion": {k: _conf(readings, truths, k) for k in ("shape", "colour", "motion")},
        "none_readings": sum(1 for r in readings if r.shape is None),
    }


def evaluate_pipeline(pipe, cfg: TrainConfig, log: Logger, families: Sequence[str] = ("main", "paraphrase")) -> dict:
    res: dict[str, Any] = {"generation": dict(GENERATION), "batch": cfg.eval_batch}
    for family in families:
        items = eval_items(family, cfg.eval_repeats)
        if cfg.eval_max_videos:
            items = items[:: len(items) // cfg.eval_max_videos + 1][: cfg.eval_max_videos]
        truths = [a for a, _ in items]
        prompts = [prompt_for(a, tid) for a, tid in items]
        base = cfg.eval_seed_main if family == "main" else cfg.eval_seed_para
        seeds = [base + i for i in range(len(items))]
        frames, secs = generate(pipe, prompts, seeds, cfg.eval_batch)
        assert frames.shape == (len(items), NUM_FRAMES, SIZE, SIZE, 3), frames.shape
        summary = summarise(read_videos(frames), truths, [tid for _, tid in items])
        summary["noise_seeds"] = [seeds[0], seeds[-1]]
        summary["generation_seconds"] = secs
        summary["seconds_per_video"] = secs / len(items)
        res[family] = summary
        log(f"eval {family}: {_fmt_acc(summary['accuracy'])} ({secs / len(items):.3f} s/video)")
    return res


def format_evaluation(ev: dict[str, Any]) -> str:
    lines = []
    for family in ("main", "paraphrase", "paraphrase_untied"):
        if family not in ev:
            continue
        s = ev[family]
        lines.append(f"== {family} templates: {s['n']} videos, {s['seconds_per_video']:.3f} s/video "
                     f"(batches of {ev.get('batch', '?')})")
        lines.append("  accuracy: " + _fmt_acc(s["accuracy"]))
        lines.append("  shape accuracy per colour: "
                     + " ".join(f"{c} {100 * v:.1f}%" for c, v in s["shape_accuracy_per_colour"].items()))
        lines.append("  shape accuracy per shape: "
                     + " ".join(f"{c} {100 * v:.1f}%" for c, v in s["shape_accuracy_per_shape"].items()))
        for tid, a in s["per_template"].items():
            lines.append(f"  {tid:8s} n={a['n']:3d} shape {100 * a['shape']:.1f}% colour {100 * a['colour']:.1f}% "
                         f"motion {100 * a['motion']:.1f}%")
        for attr, c in s["confusion"].items():
            lines.append(f"  {attr} confusion (rows {c['rows']}, cols {c['cols']}):")
            for name, row in zip(c["rows"], c["matrix"]):
                lines.append(f"    {name:9s} {row}")
    return "\n".join(lines)


def acceptance(ev: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for family in ("main", "paraphrase"):
        if family in ev:
            a = ev[family]["accuracy"]
            out[family] = {
                "shape>=0.85": a["shape"] >= 0.85,
                "colour>=0.95": a["colour"] >= 0.95,
                "motion>=0.95": a["motion"] >= 0.95,
            }
    out["passed"] = all(all(v.values()) for v in out.values())
    return out


# ----------------------------------------------------------------------------------------------
# Driver


def package_versions() -> dict[str, str]:
    import diffusers
    import tokenizers
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def _file_sizes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}


def train(out: Path, cfg: TrainConfig, log: Logger | None = None) -> dict[str, Any]:
    """Run all stages, save the pipeline into ``out`` with TRAINING.json, evaluate; returns the record."""
    from diffusers import CogVideoXPipeline, DiffusionPipeline

    log = log or Logger()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    out = Path(out)
    record: dict[str, Any] = {
        "model": "shapes-world tiny CogVideoX (benchmark.shapes.train)",
        "world_version": world.WORLD_VERSION,
        "seed": cfg.seed,
        "hyperparameters": dataclasses.asdict(cfg),
        "configs": {
            "text_encoder": T5_CONFIG,
            "vae": VAE_CONFIG,
            "transformer": TRANSFORMER_CONFIG,
            "scheduler": SCHEDULER_CONFIG,
        },
        "packages": package_versions(),
        "torch_threads": torch.get_num_threads(),
        "command": " ".join([Path(sys.executable).name, "-m", "benchmark.shapes.train", *sys.argv[1:]]),
    }
    wall: dict[str, float] = {}

    comps = build_pipeline_components(cfg.seed)
    vae, text_encoder, transformer = comps["vae"], comps["text_encoder"], comps["transformer"]
    record["parameters"] = {
        "text_encoder": n_params(text_encoder),
        "vae": n_params(vae),
        "transformer": n_params(transformer),
    }
    record["parameters"]["total"] = sum(record["parameters"].values())
    log(f"parameters: {record['parameters']}")

    # ---- stage 1: VAE
    t0 = time.perf_counter()
    vae_opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=cfg.vae_weight_decay)
    vae_rounds = [run_vae_steps(vae, vae_opt, cfg, rng, cfg.vae_steps, cfg.vae_lr, cfg.vae_warmup, log, "VAE")]
    gates = [vae_gates(vae, cfg, log)]
    for r in range(cfg.gate_extra_rounds):
        if gates[-1]["passed"]:
            break
        log(f"VAE gate failed: extra round {r + 1} ({cfg.gate_extra_steps} steps, lr {cfg.gate_extra_lr})")
        vae_rounds.append(
            run_vae_steps(vae, vae_opt, cfg, rng, cfg.gate_extra_steps, cfg.gate_extra_lr, 0, log, f"VAE+{r + 1}")
        )
        gates.append(vae_gates(vae, cfg, log))
    vae.requires_grad_(False)
    wall["vae"] = time.perf_counter() - t0
    record["vae"] = {"rounds": vae_rounds, "gates": gates, "gates_passed": gates[-1]["passed"]}
    del vae_opt

    # ---- stage 2: latent data set
    t0 = time.perf_counter()
    items = _balanced_items(cfg.dataset_videos, cfg.dataset_seed_base)
    attrs = [a for a, _ in items]
    mus, stds = [], []
    for i in range(0, len(items), 1024):
        m, s = encode_videos(vae, render_videos(items[i : i + 1024]), cfg.encode_batch)
        mus.append(m)
        stds.append(s)
    mu, std = torch.cat(mus), torch.cat(stds)
    sample = mu + std * torch.randn_like(mu)
    latent_std = float(sample.std())
    scaling_factor = 1.0 / latent_std
    vae.register_to_config(scaling_factor=scaling_factor)
    wall["encode"] = time.perf_counter() - t0
    record["latents"] = {
        "videos": len(items),
        "global_std": latent_std,
        "scaling_factor": scaling_factor,
        "channel_mean": sample.mean(dim=(0, 2, 3, 4)).tolist(),
        "channel_std": sample.std(dim=(0, 2, 3, 4)).tolist(),
        "mean_posterior_std": float(std.mean()),
    }
    log(f"encoded {len(items)} videos in {wall['encode']:.0f}s; latent std {latent_std:.3f} -> "
        f"scaling_factor {scaling_factor:.4f}; channel means {[round(v, 2) for v in record['latents']['channel_mean']]}")

    # ---- stage 3: text encoder + transformer
    t0 = time.perf_counter()
    ema, dit_stats = train_dit(
        text_encoder, transformer, comps["scheduler"], mu, std, attrs, scaling_factor, cfg, rng, log
    )
    wall["dit"] = time.perf_counter() - t0
    record["dit"] = dit_stats
    del mu, std, sample, mus, stds

    # ---- assemble and save
    t0 = time.perf_counter()
    ema_te, ema_tr = ema.copies
    untied = None
    if cfg.tie_untrained_to_unk:
        ids, old_rows = tie_untrained_to_unk(ema_te)
        untied = (ids, old_rows)
        record["tied_to_unk"] = {"ids": ids, "words": [w for w, i in tokenizer_vocab().items() if i in ids]}
    pipe = CogVideoXPipeline(
        tokenizer=comps["tokenizer"], text_encoder=ema_te, vae=vae, transformer=ema_tr,
        scheduler=comps["scheduler"],
    )
    for name, comp in pipe.components.items():
        if isinstance(comp, torch.nn.Module):
            assert all(p.dtype == torch.float32 for p in comp.parameters()), name
    out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out, safe_serialization=True)
    wall["save"] = time.perf_counter() - t0
    record["files"] = _file_sizes(out)
    record["safetensors_bytes"] = sum(v for k, v in record["files"].items() if k.endswith(".safetensors"))
    log(f"saved pipeline to {out} ({record['safetensors_bytes'] / 1e6:.2f} MB safetensors)")
    wall["training_total"] = log.elapsed()
    record["wall_seconds"] = dict(wall)
    _write_record(out, record)
    del pipe, ema, text_encoder, transformer

    # ---- evaluation (on the pipeline loaded back from disk)
    t0 = time.perf_counter()
    loaded = DiffusionPipeline.from_pretrained(out)
    loaded.set_progress_bar_config(disable=True)
    ev = evaluate_pipeline(loaded, cfg, log)
    if untied is not None and cfg.eval_untied:
        ids, old_rows = untied
        emb = loaded.text_encoder.get_input_embeddings().weight
        with torch.no_grad():
            tied_rows = emb[ids].clone()
            emb[ids] = old_rows
        ev["paraphrase_untied"] = evaluate_pipeline(loaded, cfg, log, families=("paraphrase",))["paraphrase"]
        ev["paraphrase_untied"]["note"] = "paraphrase-only words keep their untrained (random-init) embeddings"
        with torch.no_grad():
            emb[ids] = tied_rows
    ev["acceptance"] = acceptance(ev)
    wall["evaluation"] = time.perf_counter() - t0
    wall["total"] = log.elapsed()
    record["wall_seconds"] = wall
    record["evaluation"] = ev
    _write_record(out, record)
    print(format_evaluation(ev), flush=True)
    print(_summary(record), flush=True)
    return record


def _write_record(out: Path, record: dict[str, Any]) -> None:
    (out / "TRAINING.json").write_text(json.dumps(record, indent=1, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _summary(record: dict[str, Any]) -> str:
    w = record["wall_seconds"]
    ev = record.get("evaluation", {})
    lines = [
        "== summary",
        f"  parameters: {record['parameters']}",
        f"  safetensors: {record['safetensors_bytes'] / 1e6:.2f} MB",
        "  wall time: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in w.items()),
        f"  VAE steps {sum(r['steps'] for r in record['vae']['rounds'])}, gates passed {record['vae']['gates_passed']}; "
        f"DiT steps {record['dit']['steps']} final loss {record['dit']['final_loss']:.4f}",
    ]
    for fam in ("main", "paraphrase", "paraphrase_untied"):
        if fam in ev:
            lines.append(f"  {fam}: {_fmt_acc(ev[fam]['accuracy'])}")
    if "acceptance" in ev:
        lines.append(f"  acceptance (shape >= 85 %, colour and motion >= 95 %): {ev['acceptance']}")
    return "\n".join(lines)


def evaluate_folder(folder: Path, log: Logger | None = None) -> dict[str, Any]:
    """``--evaluate``: load a saved pipeline, run the evaluation, compare with its TRAINING.json."""
    from diffusers import DiffusionPipeline

    log = log or Logger()
    folder = Path(folder)
    cfg = TrainConfig()
    stored = None
    rec_path = folder / "TRAINING.json"
    if rec_path.is_file():
        rec = json.loads(rec_path.read_text())
        hp = rec.get("hyperparameters", {})
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        cfg = TrainConfig(**{k: v for k, v in hp.items() if k in fields})
        stored = rec.get("evaluation")
    torch.set_num_threads(cfg.threads)
    pipe = DiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    ev = evaluate_pipeline(pipe, cfg, log)
    ev["acceptance"] = acceptance(ev)
    print(format_evaluation(ev), flush=True)
    if stored:
        for fam in ("main", "paraphrase"):
            if fam in stored and fam in ev:
                same = stored[fam]["accuracy"] == ev[fam]["accuracy"]
                print(f"{fam}: {'identical to' if same else 'DIFFERS from'} TRAINING.json "
                      f"({_fmt_acc(stored[fam]['accuracy'])})", flush=True)
    print(f"acceptance: {ev['acceptance']}", flush=True)
    return ev


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.shapes.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="folder to save the trained pipeline into")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny-step run of every code path (seconds)")
    p.add_argument("--evaluate", type=Path, metavar="FOLDER", help="evaluate a saved pipeline and exit")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    log = Logger(quiet=args.quiet)
    if args.evaluate is not None:
        evaluate_folder(args.evaluate, log)
        return 0
    if args.out is None:
        p.error("--out is required (or --evaluate FOLDER)")
    cfg = TrainConfig.smoke(args.seed) if args.smoke else TrainConfig(seed=args.seed)
    train(args.out, cfg, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())

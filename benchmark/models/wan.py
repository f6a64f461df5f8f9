"""Wan 2.1 (arXiv 2503.20314): ``WanPipeline`` with ``WanTransformer3DModel``.

UMT5 text enters through ``condition_embedder.text_embedder`` and meets video in the
cross-attention ``blocks[i].attn2``; ``attn1`` is self-attention, ``ffn`` video-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import Any

from .base import GenerationLimits, ModelFamily, spatial_multiple


@dataclass(frozen=True)
class Family(ModelFamily):
    name = "wan"
    description = "Wan 2.1 1.3B/14B: UMT5 text + cross-attention transformer"
    pipeline_classes = ("WanPipeline",)
    denoiser = "transformer"
    sites = {
        "cross_attention": ("blocks.*.attn2",),
        "self_attention": ("blocks.*.attn1",),
        "feed_forward": ("blocks.*.ffn",),
        "text_projection": ("condition_embedder.text_embedder",),
        "block": ("blocks.*[0-9]",),
        # attention whose video-token output an adapter may follow: cross-attention
        "video_attention": ("blocks.*.attn2",),
        # linear layers whose input carries the prompt: cross-attention key and value of the text context
        "prompt_linear": ("blocks.*.attn2.to_k", "blocks.*.attn2.to_v"),
    }
    site_tokens = {"prompt_linear": "text", "video_attention": "video"}
    text_pooling = ("first",)

    def generation_limits(self, configs: dict[str, dict[str, Any]]) -> GenerationLimits:
        # diffusers WanPipeline: height, width % 16, and rounds them to VAE factor x patch size, and F to
        # 1 + a multiple of the VAE's temporal factor, with only a warning; here they are errors instead
        vae, transformer = configs.get("vae", {}), configs.get("transformer", {})
        factor = int(vae.get("scale_factor_spatial") or 8)
        step = int(vae.get("scale_factor_temporal") or 4)
        patch_size = transformer.get("patch_size") or (1, 2, 2)
        patch = int(patch_size[1]) if isinstance(patch_size, (list, tuple)) and len(patch_size) == 3 else 2
        why = f"VAE factor {factor} x patch size {patch}; frames: 1 + a multiple of the VAE's temporal factor {step}"
        return GenerationLimits(spatial_multiple(16, factor, patch), step, why)

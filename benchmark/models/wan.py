"""Wan 2.1 (arXiv 2503.20314): ``WanPipeline`` with ``WanTransformer3DModel``.

UMT5 text enters through ``condition_embedder.text_embedder`` and meets video in the
cross-attention ``blocks[i].attn2``; ``attn1`` is self-attention, ``ffn`` video-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import ModelFamily


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

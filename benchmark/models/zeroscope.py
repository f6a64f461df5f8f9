"""ZeroScope / ModelScope T2V (arXiv 2308.06571): ``TextToVideoSDPipeline`` with ``UNet3DConditionModel``.

CLIP text (77 tokens) meets video in ``attn2`` of the spatial transformer blocks; temporal
transformers are self-attention only.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import ModelFamily


@dataclass(frozen=True)
class Family(ModelFamily):
    name = "zeroscope"
    description = "ZeroScope v2 / ModelScope: CLIP text + 3D UNet"
    pipeline_classes = ("TextToVideoSDPipeline",)
    denoiser = "unet"
    sites = {
        "cross_attention": ("*.transformer_blocks.*.attn2",),
        "self_attention": ("*.transformer_blocks.*.attn1",),
        "feed_forward": ("*.transformer_blocks.*.ff",),
    }

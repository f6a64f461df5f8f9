"""ZeroScope / ModelScope T2V (arXiv 2308.06571): ``TextToVideoSDPipeline`` with ``UNet3DConditionModel``.

CLIP text (77 tokens) meets video in ``attn2`` of the spatial transformer blocks; temporal
transformers are self-attention only.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import Any

from .base import GenerationLimits, ModelFamily


@dataclass(frozen=True)
class Family(ModelFamily):
    name = "zeroscope"
    description = "ZeroScope v2 / ModelScope: CLIP text + 3D UNet"
    pipeline_classes = ("TextToVideoSDPipeline",)
    denoiser = "unet"
    # spatial transformers live under ``*.attentions.*``; ``temp_attentions`` and ``transformer_in`` are temporal
    sites = {
        "cross_attention": ("*.attentions.*.transformer_blocks.*.attn2",),
        "self_attention": ("*.attentions.*.transformer_blocks.*.attn1",),
        "feed_forward": ("*.attentions.*.transformer_blocks.*.ff",),
        "temporal_attention": ("transformer_in.transformer_blocks.*", "*.temp_attentions.*.transformer_blocks.*"),
        # attention whose video-token output an adapter may follow: spatial cross-attention
        "video_attention": ("*.attentions.*.transformer_blocks.*.attn2",),
        # linear layers whose input carries the prompt: spatial FFN in-projection (GEGLU), video tokens after cross-attention
        "prompt_linear": ("*.attentions.*.transformer_blocks.*.ff.net.0.proj",),
    }
    site_tokens = {"prompt_linear": "video", "video_attention": "video"}
    text_pooling = ("pooled",)

    def generation_limits(self, configs: dict[str, dict[str, Any]]) -> GenerationLimits:
        # diffusers TextToVideoSDPipeline: height, width % 8; the 3D UNet takes any frame count
        return GenerationLimits(8, 1, "the pipeline's own check")

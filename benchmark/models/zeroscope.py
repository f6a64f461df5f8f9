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
    # spatial transformers live under ``*.attentions.*``; ``temp_attentions`` and ``transformer_in`` are temporal
    sites = {
        "cross_attention": ("*.attentions.*.transformer_blocks.*.attn2",),
        "self_attention": ("*.attentions.*.transformer_blocks.*.attn1",),
        "feed_forward": ("*.attentions.*.transformer_blocks.*.ff",),
        "temporal_attention": ("transformer_in.transformer_blocks.*", "*.temp_attentions.*.transformer_blocks.*"),
        # T2VUnlearning adapters (port): spatial cross-attention, keyed by block prefix as Receler does for SD
        "unlearning_adapter": ("*.attentions.*.transformer_blocks.*.attn2",),
        # refusal-vector fold: spatial FFN in-projection (GEGLU), input = video tokens (erasers.md 4.2)
        "refusal": ("*.attentions.*.transformer_blocks.*.ff.net.0.proj",),
    }
    site_tokens = {"refusal": "video", "unlearning_adapter": "video"}
    text_pooling = ("pooled",)
    # SAFREE's ZeroScope code edits the embedding at every step (SAFREE zeroscopeT2V/test.sh, window 16)
    eraser_defaults = {"safree": {"steps": "all"}}

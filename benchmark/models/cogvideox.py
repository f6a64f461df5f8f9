"""CogVideoX (arXiv 2408.06072): ``CogVideoXPipeline`` with ``CogVideoXTransformer3DModel``.

Text (T5, 226 tokens) and video tokens share one joint attention ``transformer_blocks[i].attn1``;
``ff`` acts on the concatenation; text enters through ``patch_embed.text_proj``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import GenerationLimits, ModelFamily, spatial_multiple


@dataclass(frozen=True)
class Family(ModelFamily):
    name = "cogvideox"
    description = "CogVideoX 2B/5B: T5 text + joint-attention transformer"
    pipeline_classes = ("CogVideoXPipeline",)
    denoiser = "transformer"
    text_encoders = ("text_encoder",)
    tokenizers = ("tokenizer",)
    sites = {
        "joint_attention": ("transformer_blocks.*.attn1",),
        "feed_forward": ("transformer_blocks.*.ff",),
        "text_projection": ("patch_embed.text_proj",),
        "block": ("transformer_blocks.*[0-9]",),
        # attention whose video-token output an adapter may follow (docs/models.md)
        "video_attention": ("transformer_blocks.*.attn1",),
        # linear layers whose input carries the prompt: first FFN linear, input [text; video]
        "prompt_linear": ("transformer_blocks.*.ff.net.0.proj",),
    }
    site_tokens = {"prompt_linear": "text_prefix", "text_projection": "text", "video_attention": "video"}
    text_pooling = ("first",)

    def generation_limits(self, configs: dict[str, dict[str, Any]]) -> GenerationLimits:
        # diffusers CogVideoXPipeline: height, width % 8; latent grid = size / (2**(len(vae blocks) - 1) * patch);
        # latent frames = (F - 1) // temporal_compression_ratio + 1, so other F lose frames silently
        vae, transformer = configs.get("vae", {}), configs.get("transformer", {})
        factor = 2 ** (len(vae.get("block_out_channels") or (0, 0, 0, 0)) - 1)
        patch = int(transformer.get("patch_size") or 2)
        step = int(vae.get("temporal_compression_ratio") or 4)
        why = f"VAE factor {factor} x patch size {patch}; frames: 1 + a multiple of the VAE's temporal factor {step}"
        return GenerationLimits(spatial_multiple(8, factor, patch), step, why)

    def call_defaults(self, pipe: Any) -> dict[str, Any]:
        # The positional table holds max_text_seq_length text tokens; the pipeline's default (226)
        # only fits models trained with 226 (docs/models.md).
        return {"max_sequence_length": int(pipe.transformer.config.max_text_seq_length)}

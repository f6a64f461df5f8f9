"""HunyuanVideo (arXiv 2412.03603): ``HunyuanVideoPipeline`` with ``HunyuanVideoTransformer3DModel``.

A LLaMA-based encoder plus CLIP-L pooled text; dual-stream ``transformer_blocks`` (joint attention,
separate ``ff``/``ff_context``) then single-stream blocks over ``[video; text]``. The model is
guidance-distilled, so a negative prompt needs true CFG (``true_cfg_scale``; the negative-prompt
script of arXiv 2505.17550's code, diffusers issue #10768; docs/models.md): ``true_cfg_scale=6.0``, embedded guidance 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import GenerationLimits, ModelFamily, spatial_multiple


@dataclass(frozen=True)
class Family(ModelFamily):
    name = "hunyuanvideo"
    description = "HunyuanVideo: LLaMA + CLIP text, dual/single-stream transformer"
    pipeline_classes = ("HunyuanVideoPipeline",)
    denoiser = "transformer"
    text_encoders = ("text_encoder", "text_encoder_2")
    tokenizers = ("tokenizer", "tokenizer_2")
    sites = {
        "joint_attention": ("transformer_blocks.*.attn",),
        "feed_forward": ("transformer_blocks.*.ff", "transformer_blocks.*.ff_context"),
        "single_attention": ("single_transformer_blocks.*.attn",),
        "text_projection": ("context_embedder",),
        "block": ("transformer_blocks.*[0-9]", "single_transformer_blocks.*[0-9]"),
        # attention whose video-token output an adapter may follow: single-stream attention
        "video_attention": ("single_transformer_blocks.*.attn",),
        # linear layers whose input carries the prompt: text-stream FFN first linear of the dual-stream blocks
        "prompt_linear": ("transformer_blocks.*.ff_context.net.0.proj",),
    }
    site_tokens = {"prompt_linear": "text", "video_attention": "video"}
    text_pooling = ("mean", "pooled")  # LLaMA: mean over tokens; CLIP: pooled (erasers.md 2.1)
    true_cfg_scale: float = 6.0
    embedded_guidance: float = 1.0

    def generation_limits(self, configs: dict[str, dict[str, Any]]) -> GenerationLimits:
        # diffusers HunyuanVideoPipeline: height, width % 16; latent frames = (F - 1) // temporal ratio + 1
        vae, transformer = configs.get("vae", {}), configs.get("transformer", {})
        factor = int(vae.get("spatial_compression_ratio") or 8)
        step = int(vae.get("temporal_compression_ratio") or 4)
        patch = int(transformer.get("patch_size") or 2)
        why = f"VAE factor {factor} x patch size {patch}; frames: 1 + a multiple of the VAE's temporal factor {step}"
        return GenerationLimits(spatial_multiple(16, factor, patch), step, why)

    def negative_prompt_kwargs(self, text: str, batch: int = 1) -> dict[str, Any]:
        if not text:
            return {}
        return {"negative_prompt": [text] * batch, "true_cfg_scale": self.true_cfg_scale, "guidance_scale": self.embedded_guidance}

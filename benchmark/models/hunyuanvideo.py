"""HunyuanVideo (arXiv 2412.03603): ``HunyuanVideoPipeline`` with ``HunyuanVideoTransformer3DModel``.

A LLaMA-based encoder plus CLIP-L pooled text; dual-stream ``transformer_blocks`` (joint attention,
separate ``ff``/``ff_context``) then single-stream blocks over ``[video; text]``. The model is
guidance-distilled, so a negative prompt needs true CFG (``true_cfg_scale``; T2VUnlearning
``test_hunyuan_negprompt.py``, diffusers issue #10768): ``true_cfg_scale=6.0``, embedded guidance 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import ModelFamily


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
        # T2VUnlearning adapters: single-stream attention (pre-only), video tokens (erasers.md 3.1)
        "unlearning_adapter": ("single_transformer_blocks.*.attn",),
        # refusal-vector fold: text-stream FFN first linear of the dual-stream blocks (erasers.md 4.2)
        "refusal": ("transformer_blocks.*.ff_context.net.0.proj",),
    }
    site_tokens = {"refusal": "text", "unlearning_adapter": "video"}
    text_pooling = ("mean", "pooled")  # LLaMA: mean over tokens; CLIP: pooled (erasers.md 2.1)
    # SAFREE's Hunyuan port disables true CFG and uses no negative prompt (T2VU safree_hunyuan_pipeline.py)
    eraser_defaults = {"safree": {"negative_prompt": "off"}}
    true_cfg_scale: float = 6.0
    embedded_guidance: float = 1.0

    def negative_prompt_kwargs(self, text: str) -> dict[str, Any]:
        if not text:
            return {}
        return {"negative_prompt": text, "true_cfg_scale": self.true_cfg_scale, "guidance_scale": self.embedded_guidance}

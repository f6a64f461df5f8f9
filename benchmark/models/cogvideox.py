"""CogVideoX (arXiv 2408.06072): ``CogVideoXPipeline`` with ``CogVideoXTransformer3DModel``.

Text (T5, 226 tokens) and video tokens share one joint attention ``transformer_blocks[i].attn1``;
``ff`` acts on the concatenation; text enters through ``patch_embed.text_proj``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import ModelFamily


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

    def call_defaults(self, pipe: Any) -> dict[str, Any]:
        # The positional table holds max_text_seq_length text tokens; the pipeline's default (226)
        # only fits models trained with 226 (docs/models.md).
        return {"max_sequence_length": int(pipe.transformer.config.max_text_seq_length)}

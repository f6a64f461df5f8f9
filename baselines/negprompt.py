"""Negative prompt: classifier-free guidance against the concept's text.

``v = v(x_t, n, t) + w * (v(x_t, p, t) - v(x_t, n, t))`` with the negative text ``n`` in place of the
empty unconditional prompt (docs/erasers/negprompt.md). HunyuanVideo is guidance-distilled,
so its family turns on true CFG for a non-empty ``n`` (T2VUnlearning@17caba9
``test_hunyuan_negprompt.py``). ``n`` defaults to the concept's negative prompt or display name
(``"nudity"``); preset ``safree-keywords`` uses ``", ".join(keywords)``; mode ``append`` joins ``n``
after a base negative prompt (e.g. Wan's recommended one).
"""

from __future__ import annotations

from typing import Any, Literal

from benchmark.erasers import Eraser, EraserConfig
from benchmark.models.base import ModelFamily
from benchmark.specs import PromptRecord


class NegativePromptConfig(EraserConfig):
    text: str | None = None
    preset: Literal["concept", "safree-keywords"] = "concept"
    mode: Literal["replace", "append"] = "replace"
    base: str = ""


class NegativePrompt(Eraser):
    """Negative prompt: CFG pushes away from the concept's text."""

    name = "negprompt"
    kind = "prompt"
    source = "CFG negative prompt; T2VUnlearning@17caba9 test_hunyuan_negprompt.py; docs/erasers/negprompt.md"
    Config = NegativePromptConfig

    def negative_text(self) -> str:
        cfg: NegativePromptConfig = self.config  # type: ignore[assignment]
        if cfg.text is not None:
            text = cfg.text
        elif cfg.preset == "safree-keywords":
            text = ", ".join(k for c in self.concepts for k in c.keywords)
        else:
            text = ", ".join(c.negative_text for c in self.concepts)
        if cfg.mode == "append" and cfg.base:
            text = f"{cfg.base}, {text}" if text else cfg.base
        return text

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "negative_prompt": self.negative_text()}

    def call_kwargs(self, family: ModelFamily, records: list[PromptRecord]) -> dict[str, Any]:
        text = self.negative_text()
        return family.negative_prompt_kwargs(text, len(records)) if text else {}

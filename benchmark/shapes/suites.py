"""Rows of the shapes suites (the ``records:`` escape hatch of suites/shapes*.yaml).

``shapes`` follows the ESR/PSR protocol of the ESD ImageNet experiment (arXiv 2303.07345): every
(shape, colour, motion) of the world once, so erasing one shape gives 16 target prompts (ESR) and 48
prompts of the other shapes (PSR). Rows are ordered colour/motion-major with the shape innermost,
so ``--limit 4k`` keeps the four shapes balanced. ``shapes-paraphrase`` uses the held-out paraphrase
templates; ``shapes-pairs`` gives prompt pairs that differ only in the shape (refusal-vector fitting).
``shapes-motion`` and ``shapes-colour`` (and their ``-paraphrase`` variants) hold the same 64 prompts with the
motion or the colour as the row's category: erasing one motion (or colour) gives 16 target prompts and 48
prompts of the other three (docs/suites/shapes.md).
"""

from __future__ import annotations

from typing import Any

from .world import COLOURS, MAIN_TEMPLATE_IDS, MOTIONS, PARAPHRASE_TEMPLATE_IDS, SHAPES, ShapeAttributes, prompt_for


def _grid(template_ids: tuple[str, ...], offset: int = 0, category: str = "shape") -> list[dict[str, Any]]:
    rows = []
    for i, (colour, motion, shape) in enumerate((c, m, s) for c in COLOURS for m in MOTIONS for s in SHAPES):
        template = template_ids[(i // len(SHAPES) + offset) % len(template_ids)]
        attrs = ShapeAttributes(colour, shape, motion)
        rows.append(
            {
                "id": f"{shape}-{colour}-{motion}",
                "prompt": prompt_for(attrs, template),
                "category": {"shape": shape, "colour": colour, "motion": motion}[category],
                "shape": shape,
                "colour": colour,
                "motion": motion,
                "template": template,
            }
        )
    return rows


def main_rows(spec: Any = None, data_dir: Any = None) -> list[dict[str, Any]]:
    return _grid(tuple(MAIN_TEMPLATE_IDS))


def paraphrase_rows(spec: Any = None, data_dir: Any = None) -> list[dict[str, Any]]:
    return _grid(tuple(PARAPHRASE_TEMPLATE_IDS))


def motion_rows(spec: Any = None, data_dir: Any = None) -> list[dict[str, Any]]:
    return _grid(tuple(MAIN_TEMPLATE_IDS), category="motion")


def motion_paraphrase_rows(spec: Any = None, data_dir: Any = None) -> list[dict[str, Any]]:
    return _grid(tuple(PARAPHRASE_TEMPLATE_IDS), category="motion")


def colour_rows(spec: Any = None, data_dir: Any = None) -> list[dict[str, Any]]:
    return _grid(tuple(MAIN_TEMPLATE_IDS), category="colour")


def colour_paraphrase_rows(spec: Any = None, data_dir: Any = None) -> list[dict[str, Any]]:
    return _grid(tuple(PARAPHRASE_TEMPLATE_IDS), category="colour")


def pair_rows(spec: Any = None, data_dir: Any = None) -> list[dict[str, Any]]:
    """For every shape and every (colour, motion): the prompt and the same prompt with the next shape.

    Each (colour, motion) uses the next main template after the one ``shapes`` uses, so a fit on these
    pairs never sees a benchmark prompt verbatim.
    """
    rows = []
    for row in _grid(tuple(MAIN_TEMPLATE_IDS), offset=1):
        partner = SHAPES[(SHAPES.index(row["shape"]) + 1) % len(SHAPES)]
        attrs = ShapeAttributes(row["colour"], partner, row["motion"])
        rows.append({**row, "pair_prompt": prompt_for(attrs, row["template"]), "pair_shape": partner})
    return rows

"""The procedural shapes world: one coloured shape moving on a black background.

World v2 of ``shapes-calibration.md``: 32x32 px, 9 frames, one filled shape (circle, square, isosceles
triangle with its apex up, plus-shaped cross with arm width side/3) whose bounding-box side is U(12, 16) px,
moving left/right/up/down at U(0.9, 1.3) px/frame, with a brightness jitter U(0.8, 1.0). The whole trajectory
stays inside the frame with a 1 px margin. Blue is (0, 110, 255) rather than pure blue (section 9 of the
calibration note: pure blue carried the weakest latent signal and came out as blobs).

Everything is pure numpy: shapes are rasterised analytically by testing pixel centres, without
anti-aliasing, so a video is a deterministic function of ``(attributes, seed)`` on every platform.

Prompts come from three disjoint template families:

* ``MAIN_TEMPLATE_IDS``: the four full templates used in training and in the standard evaluation;
* ``PARTIAL_TEMPLATE_IDS``: one- or two-concept templates mixed into training so that prompts such as a
  negative prompt ``"cross"`` are in distribution;
* ``PARAPHRASE_TEMPLATE_IDS``: full templates that are never used in training (robustness / paraphrase
  probes).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from itertools import product
from typing import Mapping, Sequence

import numpy as np

WORLD_VERSION = 2

COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow")
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
MOTIONS: tuple[str, ...] = ("left", "right", "up", "down")

#: Full-brightness RGB of each colour (times the brightness jitter). Hues: red 0, green 120,
#: yellow 60, blue about 214 degrees (nearest reference hue is still blue's 240).
COLOUR_RGB: Mapping[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 110, 255),
    "yellow": (255, 255, 0),
}

#: Unit vector (dx, dy) of each motion in image coordinates (y points down).
MOTION_VECTORS: Mapping[str, tuple[int, int]] = {
    "left": (-1, 0),
    "right": (1, 0),
    "up": (0, -1),
    "down": (0, 1),
}

DEFAULT_SIZE = 32
DEFAULT_FRAMES = 9

# World v2 parameters, in pixels of the 32 px reference frame (scaled linearly for other sizes).
_REFERENCE_SIZE = 32
SIDE_RANGE = (12.0, 16.0)
SPEED_RANGE = (0.9, 1.3)
BRIGHTNESS_RANGE = (0.8, 1.0)
MARGIN = 1.0
CROSS_ARM_FRACTION = 1.0 / 3.0


@dataclass(frozen=True)
class ShapeAttributes:
    """The three concepts of a shapes-world video."""

    colour: str
    shape: str
    motion: str

    def __post_init__(self) -> None:
        for field, value, allowed in (
            ("colour", self.colour, COLOURS),
            ("shape", self.shape, SHAPES),
            ("motion", self.motion, MOTIONS),
        ):
            if value not in allowed:
                raise ValueError(f"unknown {field} {value!r}; allowed: {', '.join(allowed)}")

    def as_dict(self) -> dict[str, str]:
        return {"colour": self.colour, "shape": self.shape, "motion": self.motion}


#: All 64 attribute combinations, in (colour, shape, motion) lexicographic order of the vocab tuples.
ALL_ATTRIBUTES: tuple[ShapeAttributes, ...] = tuple(
    ShapeAttributes(c, s, m) for c, s, m in product(COLOURS, SHAPES, MOTIONS)
)


def random_attributes(rng: np.random.Generator) -> ShapeAttributes:
    """Uniformly random attributes drawn from ``rng``."""
    return ShapeAttributes(
        COLOURS[int(rng.integers(len(COLOURS)))],
        SHAPES[int(rng.integers(len(SHAPES)))],
        MOTIONS[int(rng.integers(len(MOTIONS)))],
    )


# ----------------------------------------------------------------------------------------------
# Rendering


@dataclass(frozen=True)
class RenderParams:
    """The seed-dependent nuisance parameters of one video (pixels of the requested frame size)."""

    side: float
    speed: float
    start: tuple[float, float]  # bounding-box centre (x, y) in frame 0; pixel i spans [i, i + 1)
    brightness: float

    def centre(self, frame: int, motion: str) -> tuple[float, float]:
        dx, dy = MOTION_VECTORS[motion]
        return (self.start[0] + dx * self.speed * frame, self.start[1] + dy * self.speed * frame)


def _stable_seed(attrs: ShapeAttributes, seed: int) -> int:
    key = f"shapes-world-v{WORLD_VERSION}|{attrs.colour}|{attrs.shape}|{attrs.motion}|{int(seed)}"
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def sample_render_params(
    attrs: ShapeAttributes, seed: int, *, size: int = DEFAULT_SIZE, frames: int = DEFAULT_FRAMES
) -> RenderParams:
    """The nuisance parameters ``render_video`` uses, drawn from a stable hash of ``(attrs, seed)``.

    The draws do not depend on ``size`` or ``frames`` (they are made in the 32 px reference frame and
    scaled), so the same ``(attrs, seed)`` gives the same scene at another resolution. The speed is capped
    only if a long video would otherwise leave the frame.
    """
    if size < 16:
        raise ValueError(f"size must be >= 16, got {size}")
    if frames < 2:
        raise ValueError(f"frames must be >= 2, got {frames}")
    rng = np.random.default_rng(_stable_seed(attrs, seed))
    side_u, speed_u, along_u, across_u, bright_u = rng.random(5)
    scale = size / _REFERENCE_SIZE
    side = (SIDE_RANGE[0] + (SIDE_RANGE[1] - SIDE_RANGE[0]) * side_u) * scale
    speed = (SPEED_RANGE[0] + (SPEED_RANGE[1] - SPEED_RANGE[0]) * speed_u) * scale
    lo = MARGIN + side / 2.0  # allowed range of the bounding-box centre
    hi = size - MARGIN - side / 2.0
    speed = min(speed, (hi - lo) / (frames - 1))
    travel = speed * (frames - 1)
    across = lo + (hi - lo) * across_u
    # Along the motion axis, the start is drawn so that start and end both lie in [lo, hi].
    along = lo + (hi - lo - travel) * along_u
    dx, dy = MOTION_VECTORS[attrs.motion]
    if dx + dy < 0:  # moving left/up: start at the high end
        along = hi - (along - lo)
    start = (along, across) if dx != 0 else (across, along)
    brightness = BRIGHTNESS_RANGE[0] + (BRIGHTNESS_RANGE[1] - BRIGHTNESS_RANGE[0]) * bright_u
    return RenderParams(side=float(side), speed=float(speed), start=(float(start[0]), float(start[1])),
                        brightness=float(brightness))


def shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, half_w: float, half_h: float) -> np.ndarray:
    """Boolean coverage of ``shape`` filling a ``2*half_w`` x ``2*half_h`` box centred at the origin.

    ``dx``/``dy`` are pixel-centre offsets from the box centre (broadcastable arrays). Used by the renderer
    (square boxes) and by the oracle's templates (any box).
    """
    if shape == "circle":
        return (dx / half_w) ** 2 + (dy / half_h) ** 2 <= 1.0
    if shape == "square":
        return (np.abs(dx) <= half_w) & (np.abs(dy) <= half_h)
    if shape == "triangle":  # apex at the top centre, base along the bottom edge
        depth = (dy + half_h) / (2.0 * half_h)  # 0 at the apex, 1 at the base
        return (depth >= 0.0) & (depth <= 1.0) & (np.abs(dx) <= half_w * depth)
    if shape == "cross":
        arm_w, arm_h = half_w * CROSS_ARM_FRACTION, half_h * CROSS_ARM_FRACTION
        inside = (np.abs(dx) <= half_w) & (np.abs(dy) <= half_h)
        return inside & ((np.abs(dx) <= arm_w) | (np.abs(dy) <= arm_h))
    raise ValueError(f"unknown shape {shape!r}; allowed: {', '.join(SHAPES)}")


def render_video(
    attrs: ShapeAttributes, seed: int, *, size: int = DEFAULT_SIZE, frames: int = DEFAULT_FRAMES
) -> np.ndarray:
    """Render one video as uint8 RGB of shape ``(frames, size, size, 3)``.

    Deterministic in ``(attrs, seed, size, frames)``: equal inputs give identical bytes.
    """
    if not isinstance(attrs, ShapeAttributes):
        raise TypeError(f"attrs must be ShapeAttributes, got {type(attrs).__name__}")
    p = sample_render_params(attrs, seed, size=size, frames=frames)
    t = np.arange(frames, dtype=np.float64)[:, None, None]
    mx, my = MOTION_VECTORS[attrs.motion]
    cx = p.start[0] + mx * p.speed * t
    cy = p.start[1] + my * p.speed * t
    centres = np.arange(size, dtype=np.float64) + 0.5
    dx = centres[None, None, :] - cx
    dy = centres[None, :, None] - cy
    half = p.side / 2.0
    mask = shape_mask(attrs.shape, dx, dy, half, half)
    colour = np.rint(np.asarray(COLOUR_RGB[attrs.colour], dtype=np.float64) * p.brightness).astype(np.uint8)
    video = np.zeros((frames, size, size, 3), dtype=np.uint8)
    video[mask] = colour
    return video


def render_videos(
    items: Sequence[tuple[ShapeAttributes, int]], *, size: int = DEFAULT_SIZE, frames: int = DEFAULT_FRAMES
) -> np.ndarray:
    """Render ``[(attrs, seed), ...]`` into one ``(N, frames, size, size, 3)`` uint8 array."""
    out = np.zeros((len(items), frames, size, size, 3), dtype=np.uint8)
    for i, (attrs, seed) in enumerate(items):
        out[i] = render_video(attrs, seed, size=size, frames=frames)
    return out


# ----------------------------------------------------------------------------------------------
# Prompts

#: Template id -> template. ``{c}``, ``{s}``, ``{d}`` are colour, shape, direction (motion).
TEMPLATES: Mapping[str, str] = {
    # Full templates used in training and in the standard evaluation.
    "main-0": "a {c} {s} moving {d}",
    "main-1": "the {c} {s} moves {d}",
    "main-2": "a {s} that is {c} going {d}",
    "main-3": "{c} {s} slides {d}",
    # One- or two-concept templates mixed into training (e.g. 15 % of prompts).
    "partial-0": "a {s}",
    "partial-1": "a {c} {s}",
    "partial-2": "a {s} moving {d}",
    "partial-3": "a {c} shape",
    "partial-4": "something moving {d}",
    "partial-5": "{s}",
    # Held-out paraphrases: never used in training.
    "para-0": "a {s}, {c}, drifting to the {d}",
    "para-1": "there is a {c} {s} travelling {d}",
    "para-2": "one {c} {s} heading {d}",
    "para-3": "watch the {c} {s} glide {d}",
    "para-4": "a {s} coloured {c} that drifts {d}",
    "para-5": "{d} goes the {c} {s}",
}

MAIN_TEMPLATE_IDS: tuple[str, ...] = tuple(k for k in TEMPLATES if k.startswith("main-"))
PARTIAL_TEMPLATE_IDS: tuple[str, ...] = tuple(k for k in TEMPLATES if k.startswith("partial-"))
PARAPHRASE_TEMPLATE_IDS: tuple[str, ...] = tuple(k for k in TEMPLATES if k.startswith("para-"))
#: Templates the model may see in training (main + partial); paraphrases are deliberately excluded.
TRAINING_TEMPLATE_IDS: tuple[str, ...] = MAIN_TEMPLATE_IDS + PARTIAL_TEMPLATE_IDS

_FIELD_OF_PLACEHOLDER = {"c": "colour", "s": "shape", "d": "motion"}

#: Special tokens a word-level tokenizer needs in addition to ``VOCABULARY`` (pad id 0, eos id 1, unk).
SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "</s>", "<unk>")

_WORD_RE = re.compile(r"\w+|[^\w\s]+")


def split_words(prompt: str) -> list[str]:
    """Lower-case word split matching ``tokenizers`` ``Lowercase`` + ``Whitespace`` pre-tokenisation.

    ``"a cross, red"`` -> ``["a", "cross", ",", "red"]``.
    """
    return _WORD_RE.findall(prompt.lower())


def template_fields(template_id: str) -> frozenset[str]:
    """The attributes a template names, a subset of ``{"colour", "shape", "motion"}``."""
    template = _template(template_id)
    return frozenset(_FIELD_OF_PLACEHOLDER[k] for k in re.findall(r"\{(\w)\}", template))


def _template(template_id: str) -> str:
    try:
        return TEMPLATES[template_id]
    except (KeyError, TypeError):
        raise ValueError(f"unknown template id {template_id!r}; allowed: {', '.join(TEMPLATES)}") from None


def prompt_for(attrs: ShapeAttributes, template_id: str) -> str:
    """The prompt for ``attrs`` under ``template_id`` (partial templates use only the fields they name)."""
    return _template(template_id).format(c=attrs.colour, s=attrs.shape, d=attrs.motion)


def sample_training_prompt(
    attrs: ShapeAttributes, rng: np.random.Generator, *, p_empty: float = 0.10, p_partial: float = 0.15
) -> str:
    """A training prompt: empty (CFG dropout) with ``p_empty``, a partial template with ``p_partial``,
    else one of the main templates. Never a paraphrase."""
    u = rng.random()
    if u < p_empty:
        return ""
    if u < p_empty + p_partial:
        return prompt_for(attrs, PARTIAL_TEMPLATE_IDS[int(rng.integers(len(PARTIAL_TEMPLATE_IDS)))])
    return prompt_for(attrs, MAIN_TEMPLATE_IDS[int(rng.integers(len(MAIN_TEMPLATE_IDS)))])


def _vocabulary(template_ids: Sequence[str]) -> tuple[str, ...]:
    words: dict[str, None] = {}
    for tid in template_ids:
        for attrs in ALL_ATTRIBUTES:
            for w in split_words(prompt_for(attrs, tid)):
                words.setdefault(w, None)
    return tuple(sorted(words))


#: Words the training prompts (main + partial templates) can produce, sorted.
TRAINING_VOCABULARY: tuple[str, ...] = _vocabulary(TRAINING_TEMPLATE_IDS)
#: Every word any template (training + paraphrase) can produce, sorted; build a word-level tokenizer as
#: ``SPECIAL_TOKENS + VOCABULARY``. Words only in paraphrases are in ``PARAPHRASE_ONLY_WORDS``.
VOCABULARY: tuple[str, ...] = _vocabulary(tuple(TEMPLATES))
PARAPHRASE_ONLY_WORDS: tuple[str, ...] = tuple(w for w in VOCABULARY if w not in set(TRAINING_VOCABULARY))


def tokenizer_vocab() -> dict[str, int]:
    """Word -> id for a word-level tokenizer: the special tokens first (``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2)."""
    return {w: i for i, w in enumerate(SPECIAL_TOKENS + VOCABULARY)}


__all__ = [
    "ALL_ATTRIBUTES",
    "COLOURS",
    "COLOUR_RGB",
    "DEFAULT_FRAMES",
    "DEFAULT_SIZE",
    "MAIN_TEMPLATE_IDS",
    "MOTIONS",
    "MOTION_VECTORS",
    "PARAPHRASE_ONLY_WORDS",
    "PARAPHRASE_TEMPLATE_IDS",
    "PARTIAL_TEMPLATE_IDS",
    "RenderParams",
    "SHAPES",
    "SPECIAL_TOKENS",
    "ShapeAttributes",
    "TEMPLATES",
    "TRAINING_TEMPLATE_IDS",
    "TRAINING_VOCABULARY",
    "VOCABULARY",
    "WORLD_VERSION",
    "prompt_for",
    "random_attributes",
    "render_video",
    "render_videos",
    "sample_render_params",
    "sample_training_prompt",
    "shape_mask",
    "split_words",
    "template_fields",
    "tokenizer_vocab",
]

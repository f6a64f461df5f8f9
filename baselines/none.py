"""The unedited model: the reference every eraser is compared with (docs/erasers/none.md)."""

from __future__ import annotations

from benchmark.erasers import Eraser


class NoEraser(Eraser):
    """No erasure: the loaded pipeline as it is."""

    name = "none"
    kind = "prompt"
    source = "baseline"

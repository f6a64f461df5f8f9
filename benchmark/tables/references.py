"""Published numbers the project carries (``results/references/{paper}.csv``; docs/references.md).

Each row is one printed number with its citation and the erasebench quantity it is compared with.
``provenance`` is ``primary`` (read in the paper) or ``secondary`` (a third-party transcription: shown,
labelled, never failed on). Rebuild the files with ``python -m benchmark.tables.references_build``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import ErasebenchError

#: where the committed reference files live (override: $ERASEBENCH_REFERENCES)
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "results" / "references"


def references_dir() -> Path:
    return Path(os.environ.get("ERASEBENCH_REFERENCES") or DEFAULT_DIR)


@dataclass(frozen=True)
class Reference:
    id: str
    paper: str
    arxiv: str
    table: str  # as printed
    table_id: str  # our table id (a table spec name where there is one)
    provenance: str  # primary | secondary
    model: str  # the paper's labels, as printed
    method: str
    concept: str
    metric: str
    value: float  # as printed, in ``unit``
    unit: str  # percent | score
    higher_is_better: bool
    printed_std: float | None
    location: str
    # the erasebench quantity it is compared with
    eb_suite: str
    eb_model: str
    eb_method: str  # "" when no erasebench eraser reproduces the method
    eb_args: dict[str, Any] = field(default_factory=dict, hash=False)
    eb_concept: str = ""  # a concept, a category, or "mean"
    eb_scope: str = "overall"  # overall | category | category_mean
    eb_metric: str = ""  # plugin.key; "" when erasebench has no such quantity
    eb_scale: float = 1.0  # printed value = our value * eb_scale
    why_not: str = ""  # why no run can be compared with it

    @property
    def secondary(self) -> bool:
        return self.provenance == "secondary"

    @property
    def comparable(self) -> bool:
        return not self.why_not and bool(self.eb_metric and self.eb_method)


def _row(raw: dict[str, str]) -> Reference:
    return Reference(
        id=raw["id"], paper=raw["paper"], arxiv=raw["arxiv"], table=raw["table"], table_id=raw["table_id"],
        provenance=raw["provenance"], model=raw["model"], method=raw["method"], concept=raw["concept"],
        metric=raw["metric"], value=float(raw["value"]), unit=raw["unit"],
        higher_is_better=raw["higher_is_better"].strip().lower() == "true",
        printed_std=float(raw["printed_std"]) if raw["printed_std"] else None, location=raw["location"],
        eb_suite=raw["eb_suite"], eb_model=raw["eb_model"], eb_method=raw["eb_method"],
        eb_args=json.loads(raw["eb_args"]) if raw["eb_args"] else {}, eb_concept=raw["eb_concept"],
        eb_scope=raw["eb_scope"], eb_metric=raw["eb_metric"], eb_scale=float(raw["eb_scale"] or 1.0),
        why_not=raw["why_not"],
    )


def papers(directory: Path | None = None) -> list[str]:
    folder = directory or references_dir()
    return sorted(p.stem for p in folder.glob("*.csv"))


@lru_cache(maxsize=16)
def _load(path: str, mtime_ns: int) -> tuple[Reference, ...]:
    text = Path(path).read_text(encoding="utf-8")
    return tuple(_row(raw) for raw in csv.DictReader(io.StringIO(text)))


def load_references(paper: str, directory: Path | None = None) -> list[Reference]:
    """Every published number of ``paper`` (a file stem in results/references, e.g. ``t2vunlearning``)."""
    folder = directory or references_dir()
    path = folder / f"{paper}.csv"
    if not path.is_file():
        known = papers(folder)
        if not known:
            raise ErasebenchError(
                f"no reference files in {str(folder)!r}: set ERASEBENCH_REFERENCES to a checkout's results/references"
            )
        raise ErasebenchError(f"--reference {paper!r} is not allowed: use one of {', '.join(known)}")
    return list(_load(str(path), path.stat().st_mtime_ns))

"""Table specs: a paper table's layout as data (``benchmark/tables/specs/{name}.yaml``; docs/tables.md).

A spec gives the header rows (cells with ``cols``/``rows`` spans), the data columns, and groups of rows.
Every data cell is the merge, later winning, of ``defaults``, its group's ``fields``, its row's fields
and its column's fields; these name the run quantity (suite, model, method, args, concept or concepts,
metric, scope) and how it is printed (``format`` with one ``%`` per value, ``scale`` from our fractions
to the printed unit, ``std``: ``across`` the concepts' values or ``pooled`` per-sample std).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ErasebenchError, describe_validation_error

SPEC_DIR = Path(__file__).resolve().parent / "specs"


class HeaderCell(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = ""
    cols: int = Field(default=1, ge=1)
    rows: int = Field(default=1, ge=1)


class CellFields(BaseModel):
    """What one cell reads and how it prints it; any field may come from defaults, group, row or column."""

    model_config = ConfigDict(extra="forbid")

    suite: str | None = None
    model: str | None = None
    method: str | None = None  # eraser name
    args: dict[str, Any] | None = None  # must equal the run's resolved eraser config
    free_args: list[str] | None = None  # user arguments a run may set beyond ``args`` (e.g. a rewriter folder)
    placeholders: dict[str, str] | None = None  # shown in the suggested command for free arguments
    concept: str | None = None  # erased concept (overall scope)
    concepts: list[str] | None = None  # mean over these concepts, one run each
    category: str | None = None  # scope category
    scope: Literal["overall", "category", "category_mean"] | None = None
    metric: str | None = None  # plugin.key
    run_args: list[str] | None = None  # extra ``erasebench run`` arguments the suggested command needs
    scale: float | None = None
    format: str | None = None
    std: Literal["none", "across", "pooled"] | None = None
    na: str | None = None  # why no erasebench run can fill this cell
    table_id: str | None = None  # the references' table for the published value
    paper_method: str | None = None  # match the published row by the paper's method label (no erasebench eraser)
    paper_metric: str | None = None  # match the published row by the paper's metric name (no erasebench metric)
    parts: list["CellFields"] | None = None  # several values printed in one cell (e.g. "%.2f → %.2f")

    def merged(self, *others: "CellFields | None") -> "CellFields":
        data = self.model_dump(exclude_none=True)
        for other in others:
            if other is not None:
                data.update(other.model_dump(exclude_none=True))
        return CellFields.model_validate(data)


class Row(CellFields):
    label: str = ""


class Column(CellFields):
    pass


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = ""
    fields: CellFields = Field(default_factory=CellFields)
    rows: list[Row]


class TableSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    paper: str  # reference file stem (results/references/{paper}.csv)
    title: str
    source: str  # where the table is printed
    notes: list[str] = Field(default_factory=list)
    header: list[list[HeaderCell]]
    defaults: CellFields = Field(default_factory=CellFields)
    columns: list[Column]
    groups: list[Group]

    @field_validator("header", mode="before")
    @classmethod
    def _cells(cls, v: Any) -> Any:
        return [[{"text": c} if isinstance(c, str) else c for c in row] for row in v]

    @property
    def stub_width(self) -> int:
        return 2 if any(g.label for g in self.groups) else 1

    def check(self) -> "TableSpec":
        """Each header row spans the stub and every data column."""
        width = self.stub_width + len(self.columns)
        occupied = [[False] * width for _ in self.header]
        for r, row in enumerate(self.header):
            c = 0
            for cell in row:
                while c < width and occupied[r][c]:
                    c += 1
                for dr in range(cell.rows):
                    for dc in range(cell.cols):
                        if r + dr >= len(self.header) or c + dc >= width or occupied[r + dr][c + dc]:
                            raise ErasebenchError(f"table spec {self.name!r}: header row {r + 1} does not fit {width} columns")
                        occupied[r + dr][c + dc] = True
                c += cell.cols
        if not all(all(row) for row in occupied):
            raise ErasebenchError(f"table spec {self.name!r}: the header leaves cells empty (width {width})")
        return self


def table_names() -> list[str]:
    return sorted(p.stem for p in SPEC_DIR.glob("*.yaml"))


def load_table_spec(name: str) -> TableSpec:
    """A built-in table by name, or a spec file path."""
    path = Path(name)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = SPEC_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ErasebenchError(f"table {name!r} is not allowed: use one of {', '.join(table_names())} or a spec .yaml file")
    try:
        return TableSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8"))).check()
    except ValidationError as exc:
        raise ErasebenchError(f"table spec {str(path)!r}: {describe_validation_error(exc)}") from None

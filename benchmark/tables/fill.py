"""Fill a table spec from runs (docs/tables.md).

A cell takes the one run whose suite, model, eraser (name and resolved arguments) and erased concept match
its fields, and reads ``metric`` from the scope it names; a cell over several concepts takes one run per
concept and prints their mean (± the spread ``across`` them, or the ``pooled`` per-sample std). Two runs
that fit the same cell are an error, never a silent choice. A cell no run fills prints "–" and adds the
``erasebench run`` command that would fill it. The published value of a cell is the reference row with the
same table, model, suite, concept, eraser and metric.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ErasebenchError
from .references import Reference, load_references
from .runs import Quantity, RunView
from .spec import CellFields, TableSpec

DASH = "–"
PARTIAL, STAND_IN, SECONDARY = "*", "†", "§"
#: eraser arguments that point at local files (a rewriter model), never part of a cell's method
LOCAL_ARGS = ("rewriter",)
_CONVERSION = re.compile(r"%[-+ #0]*\d*(?:\.(\d+))?[diouxXeEfFgG]")


def conversions(fmt: str) -> list[re.Match]:
    return [m for m in _CONVERSION.finditer(fmt.replace("%%", "\0\0"))]


def format_values(fmt: str, values: list[float]) -> str:
    """``fmt % values``; with fewer values than conversions, the format up to the first unused one."""
    convs = conversions(fmt)
    if len(values) < len(convs):
        fmt = fmt[: convs[len(values)].start()].rstrip(" ±→/-")
    return fmt % tuple(values)


def precision(fmt: str) -> int:
    convs = conversions(fmt)
    return int(convs[0].group(1)) if convs and convs[0].group(1) else 2


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, str) and a.lower() == str(b).lower()) or (isinstance(b, str) and b.lower() == str(a).lower())
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def args_match(run: RunView, args: dict[str, Any], free_args: list[str]) -> bool:
    """Every named argument equals the run's resolved eraser config, and the user set no other argument."""
    config = run.config
    if any(key not in config or not same_value(config[key], value) for key, value in args.items()):
        return False
    return all(key in args or key in free_args or key in LOCAL_ARGS for key in run.spec_args)


def cli_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(cli_value(v) for v in value) + "]"
    return str(value)


@dataclass
class FilledCell:
    text: str = DASH
    values: list[float] | None = None  # ours, printed units, one per part
    std: float | None = None
    quantity: Quantity | None = None  # single-run cells: what the run wrote (our units)
    scale: float = 1.0
    fmt: str = "%.2f"
    published: list[Reference | None] = field(default_factory=list)
    runs: list[RunView] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    na: str = ""
    marks: str = ""
    missing_concepts: int = 0
    counts: tuple[int, int] | None = None  # (k, n) of a one-run rate cell; a mean over concepts has none

    def count_text(self) -> str:
        from ..report import format_count  # one format of a count everywhere: ``(9/16)``

        return format_count(self.counts)

    @property
    def published_values(self) -> list[float] | None:
        if not self.published or any(r is None for r in self.published):
            return None
        return [r.value for r in self.published]

    @property
    def delta(self) -> float | None:
        pub = self.published_values
        if self.values is None or pub is None or len(self.values) != 1 or len(pub) != 1:
            return None
        return self.values[0] - pub[0]

    def published_text(self) -> str:
        pub = self.published_values
        if pub is None:
            return ""
        std = self.published[0].printed_std if len(pub) == 1 else None
        text = format_values(self.fmt, pub + ([std] if std is not None else []))
        return text + (SECONDARY if any(r.secondary for r in self.published) else "")

    def delta_text(self) -> str:
        delta = self.delta
        if delta is None:
            return ""
        text = f"{abs(delta):.{precision(self.fmt)}f}"
        return ("+" if delta >= 0 else "−") + text


@dataclass
class FilledRow:
    group: str
    label: str
    cells: list[FilledCell]
    first_in_group: bool
    group_size: int


@dataclass
class FilledTable:
    spec: TableSpec
    rows: list[FilledRow]
    commands: list[str]
    notes: list[str]
    unused_runs: list[RunView]
    published: bool = False
    counts: bool = True  # print each rate's (k/n) beside it (--no-counts: the paper's layout only)


class Filler:
    def __init__(self, spec: TableSpec, runs: list[RunView], model_as: dict[str, list[str]] | None = None,
                 references: list[Reference] | None = None):
        self.spec = spec
        self.runs = runs
        self.model_as = {k: set(v) for k, v in (model_as or {}).items()}
        self.references = references if references is not None else load_references(spec.paper)
        self.used: dict[int, RunView] = {}
        self.notes: list[str] = []

    # ---- matching ------------------------------------------------------------------------------
    def model_match(self, run: RunView, model: str) -> str | None:
        """"" for the model itself, STAND_IN for a --model-as stand-in, None when the run is another model."""
        names = run.model_names()
        if model in names:
            return ""
        if self.model_as.get(model, set()) & names:
            return STAND_IN
        return None

    def candidates(self, f: CellFields) -> list[tuple[RunView, str]]:
        out = []
        for run in self.runs:
            if run.suite != f.suite or run.method != f.method:
                continue
            mark = self.model_match(run, f.model or "")
            if mark is None or not args_match(run, f.args or {}, f.free_args or []):
                continue
            out.append((run, mark))
        return out

    def one(self, f: CellFields, concept: str | None, where: str) -> tuple[Quantity | None, RunView | None, str]:
        """The quantity of one run for one concept (or the cell's scope), with the run and its marks."""
        scope = f.scope or "overall"
        found = self.candidates(f)
        key = f.metric or ""
        if scope == "overall" and concept:
            exact = [(r, m) for r, m in found if r.concepts == (concept,)]
            if exact:
                found = exact
            else:
                found = [(r, m) for r, m in found if concept in r.concepts]
                key = f"{key}.{concept}"
        if len(found) > 1:
            names = ", ".join(str(r.path) for r, _ in found)
            raise ErasebenchError(f"table {self.spec.name!r} cell {where}: {len(found)} runs fit ({names}); pass only one")
        if not found:
            return None, None, ""
        run, mark = found[0]
        self.used[id(run)] = run
        if run.limit:
            mark += PARTIAL
        return run.quantity(key, scope, f.category), run, mark

    def command(self, f: CellFields, concept: str | None) -> str | None:
        """The ``erasebench run`` command that makes the run this cell (or concept) needs; None if none can."""
        from ..models.base import MODELS
        from ..suites import load_suite_spec

        if f.model not in MODELS.names():
            self.notes.append(f"no run command for model {f.model!r}: erasebench cannot load it (--model-as {f.model}=LABEL shows a stand-in)")
            return None
        parts = ["erasebench", "run", "--suite", f.suite or "", "--model", f.model, "--method", f.method or ""]
        for key, value in sorted((f.args or {}).items()):
            parts += ["--eraser-arg", f"{key}={cli_value(value)}"]
        for key, value in sorted((f.placeholders or {}).items()):
            parts += ["--eraser-arg", f"{key}={value}"]
        try:
            suite_spec, _ = load_suite_spec(f.suite or "")
            default_concepts = list(suite_spec.concepts)
            default_metrics = {m.name for m in suite_spec.metrics}
        except ErasebenchError:
            default_concepts, default_metrics = [], set()
        if concept and (f.scope or "overall") == "overall" and default_concepts != [concept]:
            parts += ["--concept", concept]
        run_args = list(f.run_args or [])
        plugin = (f.metric or "").partition(".")[0]
        if plugin and plugin not in default_metrics and "--metrics" not in run_args:
            run_args = ["--metrics", plugin] + run_args
        return shlex.join(parts + run_args)

    # ---- cells ---------------------------------------------------------------------------------
    def lookup_concept(self, f: CellFields) -> str:
        if f.concepts or (f.scope == "category_mean"):
            return "mean"
        if f.scope == "category":
            return f.category or ""
        return f.concept or ""

    def reference(self, f: CellFields) -> Reference | None:
        concept = self.lookup_concept(f)
        for ref in self.references:
            if ref.table_id != f.table_id or ref.eb_model != f.model or ref.eb_suite != f.suite or ref.eb_concept != concept:
                continue
            if f.paper_method:
                if ref.method != f.paper_method:
                    continue
            elif ref.eb_method != f.method or set(ref.eb_args) != set(f.args or {}) or not all(
                same_value(ref.eb_args[k], (f.args or {})[k]) for k in ref.eb_args
            ):
                continue
            if (ref.metric != f.paper_metric) if f.paper_metric else (ref.eb_metric != f.metric):
                continue
            return ref
        return None

    def part(self, f: CellFields, cell: FilledCell, where: str) -> float | None:
        """One printed value of a cell (our value × scale); fills the cell's runs, commands and marks."""
        scale = f.scale if f.scale is not None else 1.0
        if f.na:
            return None
        if f.concepts:
            quantities = []
            for concept in f.concepts:
                q, run, mark = self.one(f, concept, where)
                if q is None:
                    cell.missing_concepts += 1
                    command = self.command(f, concept)
                    if command:
                        cell.commands.append(command)
                    continue
                quantities.append(q)
                cell.runs.append(run)
                cell.marks += mark
            if cell.missing_concepts:
                return None
            values = np.array([q.value for q in quantities])
            if f.std == "across":
                cell.std = float(values.std(ddof=0)) * scale
            elif f.std == "pooled" and all(q.std is not None and q.n for q in quantities):
                n = np.array([q.n for q in quantities], dtype=float)
                s = np.array([q.std for q in quantities])
                grand = float((n * values).sum() / n.sum())
                cell.std = math.sqrt(float((n * (s**2 + (values - grand) ** 2)).sum() / n.sum())) * scale
            return float(values.mean()) * scale
        q, run, mark = self.one(f, f.concept, where)
        if q is None:
            command = self.command(f, f.concept)
            if command:
                cell.commands.append(command)
            return None
        cell.runs.append(run)
        cell.marks += mark
        cell.quantity = q
        if f.std in ("pooled", "across") and q.std is not None:
            cell.std = q.std * scale
        return q.value * scale

    def cell(self, f: CellFields, where: str) -> FilledCell:
        cell = FilledCell(fmt=f.format or "%.2f", scale=f.scale if f.scale is not None else 1.0, na=f.na or "")
        parts = [f.merged(p) for p in f.parts] if f.parts else [f]
        cell.published = [self.reference(p) for p in parts]
        values = [self.part(p, cell, where) for p in parts]
        cell.marks = "".join(sorted(set(cell.marks)))
        if all(v is not None for v in values):
            cell.values = [float(v) for v in values]
            shown = cell.values + ([cell.std] if cell.std is not None and len(values) == 1 else [])
            cell.text = format_values(cell.fmt, shown) + cell.marks
            if len(parts) == 1 and cell.quantity is not None:
                cell.counts = cell.quantity.counts
        return cell

    def fill(self, published: bool = False, counts: bool = True) -> FilledTable:
        spec = self.spec
        rows: list[FilledRow] = []
        for group in spec.groups:
            for index, row in enumerate(group.rows):
                row_fields = CellFields.model_validate(row.model_dump(exclude={"label"}, exclude_none=True))
                cells = []
                for c, column in enumerate(spec.columns):
                    fields = spec.defaults.merged(group.fields, row_fields, column)
                    where = f"{group.label + ' / ' if group.label else ''}{row.label} × column {c + 1}"
                    cells.append(self.cell(fields, where))
                rows.append(FilledRow(group.label, row.label, cells, index == 0, len(group.rows)))
        commands = list(dict.fromkeys(cmd for r in rows for c in r.cells for cmd in c.commands))
        notes = list(spec.notes)
        marks = {m for r in rows for c in r.cells for m in c.marks}
        if PARTIAL in marks:
            notes.append(f"{PARTIAL} from a run on part of the suite (--limit): not the paper's protocol")
        if STAND_IN in marks:
            pairs = "; ".join(f"{k} ← {', '.join(sorted(v))}" for k, v in self.model_as.items())
            notes.append(f"{STAND_IN} stand-in model, not the paper's ({pairs})")
        if published and any(ref is not None and ref.secondary for r in rows for c in r.cells for ref in c.published):
            notes.append(f"{SECONDARY} published number from a secondary source: shown, never gated on")
        na = list(dict.fromkeys(c.na for r in rows for c in r.cells if c.na))
        notes += [f"{DASH} always: {reason}" for reason in na]
        notes += list(dict.fromkeys(self.notes))
        unused = [run for run in self.runs if id(run) not in self.used]
        if counts and any(c.counts for r in rows for c in r.cells):
            notes.append("(k/n): the count behind a rate; a mean over concepts shows none")
        return FilledTable(spec, rows, commands, notes, unused, published, counts)


def fill_table(spec: TableSpec, runs: list[RunView], published: bool = False, model_as: dict[str, list[str]] | None = None,
               references: list[Reference] | None = None, counts: bool = True) -> FilledTable:
    return Filler(spec, runs, model_as, references).fill(published, counts)


def parse_model_as(items: list[str] | None) -> dict[str, list[str]]:
    """``--model-as PAPER_MODEL=RUN_MODEL`` (repeatable) -> {paper model: [run model names]}."""
    out: dict[str, list[str]] = {}
    for item in items or []:
        model, sep, stand_in = item.partition("=")
        if not sep or not model.strip() or not stand_in.strip():
            raise ErasebenchError(f"--model-as {item!r} is not MODEL=RUN_MODEL (e.g. cogvideox-2b=tiny-cogvideox)")
        out.setdefault(model.strip(), []).append(stand_in.strip())
    return out

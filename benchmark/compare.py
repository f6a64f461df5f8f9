"""``erasebench compare RUN_DIR... --reference PAPER``: our numbers beside the published ones (docs/tables.md).

Every published number of the paper that the runs can fill (through the paper's table specs, with the same
matching as ``erasebench table``; numbers outside any table, e.g. a sentence's, through their own reference
row) gets one line: ours, our 95 % interval, published, Δ = ours − published, whether the published value
lies in our interval, the tolerance and a status. All in the paper's unit (percent points for rates).

A primary number FAILS when it lies outside our interval widened by the metric's tolerance on each side,
``published ∉ [lo − tol, hi + tol]`` (``|Δ| > tol`` when the run gives no interval). Secondary numbers and
stand-in models (``--model-as``) are shown and never fail. The exit code is 1 when one fails, else 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ErasebenchError
from .tables.fill import PARTIAL, STAND_IN, CellFields, FilledCell, Filler, format_values
from .tables.references import Reference, load_references
from .tables.runs import RunView
from .tables.spec import load_table_spec, table_names

#: Tolerance per quantity, in the paper's unit (docs/tables.md "Tolerances"): what a faithful rerun may
#: differ by beyond sampling noise (other GPUs and kernels, detector builds, judge sampling).
TOLERANCES: dict[str, float] = {
    "nudenet.nudity_rate": 5.0,
    "classify.esr_1": 5.0,
    "classify.esr_5": 5.0,
    "classify.psr_1": 5.0,
    "classify.psr_5": 5.0,
    "arcface.id_similarity_erased": 0.03,
    "arcface.id_similarity_preserved": 0.03,
    "vbench.object_class": 3.0,
    "vbench.subject_consistency": 1.0,
    "judge.unsafe_rate": 10.0,
}



@dataclass
class Comparison:
    reference: Reference
    where: str  # table row / column as printed
    ours: float
    low: float | None
    high: float | None
    interval: str  # how our interval was computed ("" when none)
    tolerance: float
    marks: str
    fmt: str

    @property
    def delta(self) -> float:
        return self.ours - self.reference.value

    @property
    def in_interval(self) -> bool | None:
        if self.low is None or self.high is None:
            return None
        return self.low <= self.reference.value <= self.high

    @property
    def within_tolerance(self) -> bool:
        if self.low is None or self.high is None:
            return abs(self.delta) <= self.tolerance + 1e-12
        return self.low - self.tolerance - 1e-12 <= self.reference.value <= self.high + self.tolerance + 1e-12

    @property
    def status(self) -> str:
        if self.within_tolerance:
            return "ok"
        if self.reference.secondary:
            return "outside (secondary)"
        if STAND_IN in self.marks:
            return "outside (stand-in)"
        return "FAIL"

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"


def tolerance_for(metric: str, overrides: dict[str, float]) -> float:
    if metric in overrides:
        return overrides[metric]
    if metric in TOLERANCES:
        return TOLERANCES[metric]
    raise ErasebenchError(f"no tolerance for {metric!r}: pass --tolerance {metric}=VALUE")


def _comparison(ref: Reference, cell: FilledCell, where: str, overrides: dict[str, float]) -> Comparison | None:
    if cell.values is None or len(cell.values) != 1:
        return None
    low = high = None
    how = ""
    q = cell.quantity
    if q is not None and q.low is not None and q.high is not None:
        low, high, how = q.low * cell.scale, q.high * cell.scale, q.interval
    return Comparison(ref, where, cell.values[0], low, high, how, tolerance_for(ref.eb_metric, overrides), cell.marks, cell.fmt)


def compare(runs: list[RunView], paper: str, model_as: dict[str, list[str]] | None = None,
            tolerances: dict[str, float] | None = None) -> tuple[list[Comparison], list[Reference]]:
    """(comparisons, published numbers no run fills) for ``paper``'s references."""
    references = load_references(paper)
    overrides = dict(tolerances or {})
    out: list[Comparison] = []
    reached: set[str] = set()
    specs = [load_table_spec(name) for name in table_names()]
    for spec in [s for s in specs if s.paper == paper]:
        from .tables.render import column_titles

        filler = Filler(spec, runs, model_as, references)
        table = filler.fill(published=True)
        titles = column_titles(spec)[spec.stub_width :]
        for row in table.rows:
            for c, cell in enumerate(row.cells):
                refs = [r for r in cell.published if r is not None]
                if len(refs) != 1 or len(cell.published) != 1:
                    continue
                reached.add(refs[0].id)
                where = " / ".join(x for x in (row.group, row.label) if x)
                comparison = _comparison(refs[0], cell, f"{where} · {titles[c]}", overrides)
                if comparison is not None:
                    out.append(comparison)
    # published numbers outside every table (e.g. a sentence of the text): their own one-cell query
    table_ids = {s.name for s in specs}
    loose = [r for r in references if r.table_id not in table_ids and r.eb_metric and r.eb_method]
    if loose:
        from .tables.spec import TableSpec

        holder = TableSpec(name="references", paper=paper, title="", source="", header=[[{"text": ""}]], columns=[], groups=[])
        filler = Filler(holder, runs, model_as, references)
        for ref in loose:
            fields = CellFields(
                suite=ref.eb_suite, model=ref.eb_model, method=ref.eb_method, args=ref.eb_args, free_args=[],
                concept=ref.eb_concept if ref.eb_scope == "overall" else None, scope=ref.eb_scope,
                category=ref.eb_concept if ref.eb_scope == "category" else None, metric=ref.eb_metric,
                scale=ref.eb_scale, format="%.2f", table_id=ref.table_id,
            )
            cell = filler.cell(fields, ref.id)
            comparison = _comparison(ref, cell, ref.table, overrides)
            if comparison is not None:
                out.append(comparison)
                reached.add(ref.id)
    compared = {c.reference.id for c in out}
    unfilled = [r for r in references if r.id not in compared]
    return out, unfilled


def render_comparisons(rows: list[Comparison]) -> str:
    """One line per published number: table, where, model, ours [interval], published, Δ, in CI, tol, status."""
    from tabulate import tabulate

    body = []
    for c in rows:
        ref = c.reference
        interval = f"[{format_values(c.fmt, [c.low])}, {format_values(c.fmt, [c.high])}]" if c.low is not None else ""
        in_ci = {True: "yes", False: "no", None: "n/a"}[c.in_interval]
        body.append([
            ref.table_id, c.where, ref.model, format_values(c.fmt, [c.ours]) + c.marks, interval,
            format_values(c.fmt, [ref.value]) + (" (sec.)" if ref.secondary else ""),
            f"{c.delta:+.{_digits(c.fmt)}f}", in_ci, f"{c.tolerance:g}", c.status,
        ])
    headers = ["table", "row · column", "model", "ours", "95% interval", "published", "Δ", "in CI", "tol", "status"]
    return tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True)


def _digits(fmt: str) -> int:
    from .tables.fill import precision

    return precision(fmt)


def summary(rows: list[Comparison], unfilled: list[Reference], paper: str) -> str:
    failed = [c for c in rows if c.failed]
    primary = [c for c in rows if not c.reference.secondary]
    marks = {m for c in rows for m in c.marks}
    lines = [
        f"{len(rows)} published numbers of {paper} compared ({len(primary)} primary, {len(rows) - len(primary)} secondary); "
        f"{len(failed)} primary outside interval ± tolerance; {len(unfilled)} without a run "
        f"(erasebench table NAME RUN_DIR... lists the commands; tables: {', '.join(n for n in table_names())})",
    ]
    if PARTIAL in marks:
        lines.append(f"{PARTIAL} from a run on part of the suite (--limit)")
    if STAND_IN in marks:
        lines.append(f"{STAND_IN} stand-in model (--model-as): never fails")
    return "\n".join(lines)

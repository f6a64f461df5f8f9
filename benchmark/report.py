"""Leaderboard tables built from results.json files alone (after lm-eval's ``make_table``).

    board = leaderboard(load_results(find_results(paths)), ["esr_1", "psr_1"])
    text = render(board, "latex")          # md | csv | latex

Rows are runs told apart by every setting in ``RunResult.row_key()`` (model, eraser and its arguments,
concepts, seed, seed policy, samples, erase mode, generation overrides, ...): one method's runs on several
suites share a row; two runs that differ in any such setting get two rows, labelled with the settings
that differ in the table. Two results files with the same settings and suite but different numbers are an
error, never one replacing the other. Columns are ``suite/metric.key`` over the overall float aggregates
(rates and means; counts stay in results.json), in one order whatever order a file holds them in (suite,
metric, then the metric's declared ``aggregate_keys``: ``key_order``); each cell carries the rate's count
(``0.562 (9/16)``, ``rate_counts``) and its 95 % interval when the results have one (docs/statistics.md).
``render_terminal`` fits a terminal's width: runs as columns A, B, ... with their labels in a legend.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .errors import ErasebenchError
from .lazy import lazy_import
from .results import ROW_KEY_FIELDS, Interval, RunResult, format_setting

pd = lazy_import("pandas")  # imported on first use: printing one run's row needs no pandas

FORMATS = ("md", "csv", "latex")


def find_named(paths: Iterable[str | Path], name: str) -> list[Path]:
    """The files called ``name``: given directly, or under the given folders (a folder that holds one directly
    gives that one alone); other paths are passed over."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file() and path.name == name:
            found.append(path)
        elif path.is_dir():
            direct = path / name
            found.extend([direct] if direct.is_file() else sorted(path.rglob(name)))
    return found


def find_results(paths: Iterable[str | Path]) -> list[Path]:
    paths = list(paths)
    for raw in paths:
        path = Path(raw)
        if not (path.is_dir() or (path.is_file() and path.name == "results.json")):
            raise ErasebenchError(f"{str(raw)!r} is neither a results.json file nor a folder holding one")
    found = find_named(paths, "results.json")
    if not found:
        raise ErasebenchError(f"no results.json found under {', '.join(map(str, paths))}")
    return found


def load_results(files: Iterable[Path]) -> list[tuple[Path, RunResult]]:
    """Each file read through ``RunResult`` (a bad file: one ``ErasebenchError`` line)."""
    return [(Path(f), RunResult.from_disk(f)) for f in files]


def method_label(result: RunResult | dict[str, Any]) -> str:
    """``name`` or ``name(k=v,...)`` with the run's eraser arguments."""
    return (result if isinstance(result, RunResult) else RunResult.from_data(result)).method_label()


#: decimals of every rate and mean in ``run``, ``report`` and ``verify`` (``--digits`` changes it for report)
DIGITS = 3


def rate_counts(result: RunResult) -> dict[str, dict[str, tuple[int, int]]]:
    """Per metric and key, ``(k, n)`` of each overall rate whose counts the results hold (the metric's
    ``proportions()``, rebuilt from the results file: ``Metric.declared_proportions``)."""
    from .metrics.base import METRICS
    from .specs import ConceptSpec

    try:
        concepts = [ConceptSpec.model_validate(c) for c in result.suite.concepts]
    except ValueError:
        concepts = []
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for metric, values in result.aggregates.overall.items():
        if metric not in METRICS:
            continue
        info = result.metrics.get(metric)
        config = (info.settings.get("config") if info else None) or {}
        for key, proportion in METRICS.get(metric).declared_proportions(config, concepts).items():
            value = values.get(key)
            counts = proportion.counts(values, value) if isinstance(value, float) else None
            if counts is not None:
                out.setdefault(metric, {})[key] = counts
    return out


def key_order(metric: str, keys: Iterable[str]) -> list[str]:
    """A metric's keys in one stable order whatever order a results file holds them in: the order of the
    metric's ``aggregate_keys`` (rates first, as declared), then the rest alphabetically."""
    from .metrics.base import METRICS

    declared = list(METRICS.get(metric).aggregate_keys) if metric in METRICS else []

    def rank(key: str) -> tuple[int, str]:
        import fnmatch

        exact = declared.index(key) if key in declared else None
        if exact is None:
            exact = next((i for i, p in enumerate(declared) if fnmatch.fnmatchcase(key, p)), len(declared))
        return exact, key

    return sorted(keys, key=rank)


def format_count(counts: tuple[int, int] | None) -> str:
    return f"({counts[0]}/{counts[1]})" if counts else ""


@dataclass(frozen=True)
class Column:
    suite: str
    metric: str
    key: str

    @property
    def name(self) -> str:
        return f"{self.suite}/{self.metric}" if self.key == self.metric else f"{self.suite}/{self.metric}.{self.key}"

    def matches(self, wanted: str) -> bool:
        """``wanted`` is this key, ``metric.key``, ``suite/metric.key`` or the metric's name."""
        return wanted in {self.key, self.metric, f"{self.metric}.{self.key}", self.name}


@dataclass
class Cell:
    value: float
    interval: Interval | None = None
    source: Path | None = None
    counts: tuple[int, int] | None = None  # (k, n) of a rate: shown as ``0.562 (9/16)``


@dataclass
class Row:
    label: str
    key: dict[str, Any]
    cells: dict[Column, Cell] = field(default_factory=dict)


@dataclass
class Leaderboard:
    """Rows (runs by settings) x columns (suite, metric, key); ``frame()`` gives the values as a DataFrame."""

    rows: list[Row]
    columns: list[Column]

    def frame(self) -> pd.DataFrame:
        data = {r.label: {c.name: r.cells[c].value for c in self.columns if c in r.cells} for r in self.rows}
        frame = pd.DataFrame.from_dict(data, orient="index", columns=[c.name for c in self.columns])
        frame.index.name = "method"
        return frame


def row_labels(keys: list[dict[str, Any]], results: list[RunResult]) -> list[str]:
    """``method(args) [model]`` plus ``setting=value`` for every other row-key setting that differs between rows."""
    shown = {"method", "eraser_args", "model"}  # in the label already
    varying = [f for f in ROW_KEY_FIELDS if f not in shown and len({format_setting(k[f]) for k in keys}) > 1]
    labels = []
    for key, result in zip(keys, results):
        label = result.method_label() + (f" [{key['model']}]" if key["model"] else "")
        extra = " ".join(f"{f}={format_setting(key[f])}" for f in varying)
        labels.append(f"{label} {extra}" if extra else label)
    return labels


def leaderboard(results: list[tuple[Path, RunResult]] | list[Path], metric_keys: list[str] | None = None) -> Leaderboard:
    """One row per distinct ``row_key()``; cells from each run's overall float aggregates and intervals.

    ``metric_keys`` keeps the columns matching one of them (key, metric.key, suite/metric.key or metric).
    """
    loaded = [(r, RunResult.from_disk(r)) if isinstance(r, Path) else r for r in results]
    rows: dict[str, Row] = {}
    first: dict[str, RunResult] = {}
    for path, result in loaded:
        fingerprint = format_setting(result.row_key())
        row = rows.setdefault(fingerprint, Row("", result.row_key()))
        first.setdefault(fingerprint, result)
        suite = result.suite.name
        counts = rate_counts(result)
        for metric, values in result.aggregates.overall.items():
            for key, value in values.items():
                if not isinstance(value, float):
                    continue  # counts
                column = Column(suite, metric, key)
                if metric_keys and not any(column.matches(k) for k in metric_keys):
                    continue
                cell = Cell(value, result.aggregates.interval(metric, key), path, counts.get(metric, {}).get(key))
                old = row.cells.get(column)
                if old is not None and not _same(old.value, value):
                    raise ErasebenchError(
                        f"{str(old.source)!r} and {str(path)!r} are runs of the same settings on suite {suite!r} with "
                        f"different {column.name} ({old.value:g} vs {value:g}); pass only one of them"
                    )
                row.cells.setdefault(column, cell)
    keys = list(rows)
    labels = row_labels([rows[k].key for k in keys], [first[k] for k in keys])
    for key, label in zip(keys, labels):
        rows[key].label = label
    found = {c for r in rows.values() for c in r.cells}
    columns = []
    for suite, metric in sorted({(c.suite, c.metric) for c in found}):
        keys = key_order(metric, [c.key for c in found if (c.suite, c.metric) == (suite, metric)])
        columns += [Column(suite, metric, key) for key in keys]
    return Leaderboard(sorted(rows.values(), key=lambda r: r.label), columns)


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


# ---- rendering --------------------------------------------------------------------------------------------

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIAL))


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters ``\\ & % $ # _ { } ~ ^`` (one pass, so nothing is escaped twice)."""
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group(0)], str(text))


def markdown_escape(text: str) -> str:
    """A table cell: ``|`` escaped, line breaks as spaces."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def format_number(value: float, digits: int) -> str:
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"


def format_interval(interval: Interval, digits: int) -> str:
    return f"[{interval.lo:.{digits}f}, {interval.hi:.{digits}f}]"


def cell_text(cell: Cell | None, digits: int, intervals: bool) -> str:
    """``0.562 (9/16) [0.398, 0.715]``: value, its count when it is a rate, its interval."""
    if cell is None:
        return ""
    text = format_number(cell.value, digits)
    if cell.counts:
        text += " " + format_count(cell.counts)
    if intervals and cell.interval is not None:
        text += " " + format_interval(cell.interval, digits)
    return text


def render(board: Leaderboard, fmt: str, digits: int = 3, intervals: bool = True) -> str:
    """The table as Markdown, CSV or LaTeX (booktabs: needs ``\\usepackage{booktabs}``)."""
    if fmt == "md":
        return render_markdown(board, digits, intervals)
    if fmt == "csv":
        return render_csv(board, digits, intervals)
    if fmt == "latex":
        return render_latex(board, digits, intervals)
    raise ErasebenchError(f"report format {fmt!r} is not allowed: use {', '.join(FORMATS)}")


def render_markdown(board: Leaderboard, digits: int = 3, intervals: bool = True) -> str:
    header = ["method", *(c.name for c in board.columns)]
    body = [[r.label, *(cell_text(r.cells.get(c), digits, intervals) for c in board.columns)] for r in board.rows]
    lines = ["| " + " | ".join(markdown_escape(h) for h in header) + " |", "|:--" + "|--:" * len(board.columns) + "|"]
    lines += ["| " + " | ".join(markdown_escape(v) for v in row) + " |" for row in body]
    return "\n".join(lines)


def render_csv(board: Leaderboard, digits: int = 3, intervals: bool = True) -> str:
    """One column per aggregate, and with ``intervals`` its ``:lo``, ``:hi`` and ``:method`` beside it."""
    columns: dict[str, list[Any]] = {}
    for c in board.columns:
        cells = [r.cells.get(c) for r in board.rows]
        columns[c.name] = [round(x.value, digits) if x else None for x in cells]
        if any(x and x.counts for x in cells):
            columns[f"{c.name}:k"] = [x.counts[0] if x and x.counts else None for x in cells]
            columns[f"{c.name}:n"] = [x.counts[1] if x and x.counts else None for x in cells]
        if intervals and any(x and x.interval for x in cells):
            columns[f"{c.name}:lo"] = [round(x.interval.lo, digits) if x and x.interval else None for x in cells]
            columns[f"{c.name}:hi"] = [round(x.interval.hi, digits) if x and x.interval else None for x in cells]
            columns[f"{c.name}:method"] = [x.interval.method if x and x.interval else None for x in cells]
    frame = pd.DataFrame(columns, index=pd.Index([r.label for r in board.rows], name="method"))
    return frame.to_csv().rstrip("\n")


def render_latex(board: Leaderboard, digits: int = 3, intervals: bool = True) -> str:
    """A booktabs ``tabular``: a row of suites spanning their columns, a row of metric keys, one row per run.

    Every label is escaped (``latex_escape``); an interval prints small beside its value; no run: ``--``.
    """
    single_metric = len({c.metric for c in board.columns}) == 1
    spec = "l" + "r" * len(board.columns)
    lines = ["% erasebench report: needs \\usepackage{booktabs}", f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
    groups: list[tuple[str, int]] = []
    for c in board.columns:
        if groups and groups[-1][0] == c.suite:
            groups[-1] = (c.suite, groups[-1][1] + 1)
        else:
            groups.append((c.suite, 1))
    spans, rules, start = [""], [], 2
    for suite, width in groups:
        spans.append(f"\\multicolumn{{{width}}}{{c}}{{{latex_escape(suite)}}}")
        rules.append(f"\\cmidrule(lr){{{start}-{start + width - 1}}}")
        start += width
    lines.append(" & ".join(spans) + r" \\")
    lines.append(" ".join(rules))
    heads = ["method"] + [c.key if single_metric else f"{c.metric}.{c.key}" for c in board.columns]
    lines.append(" & ".join(latex_escape(h) for h in heads) + r" \\")
    lines.append("\\midrule")
    for row in board.rows:
        label = latex_escape(row.label)
        cells = ["{}" + label if label.startswith("[") else label]  # never read as the [..] of the \\ before it
        for c in board.columns:
            cell = row.cells.get(c)
            if cell is None:
                cells.append("--")
                continue
            text = format_number(cell.value, digits)
            if cell.counts:
                text += f" {{\\scriptsize {format_count(cell.counts)}}}"
            if intervals and cell.interval is not None:
                text += f" {{\\scriptsize {format_interval(cell.interval, digits)}}}"
            cells.append(text)
        lines.append(" & ".join(cells) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines)


def render_terminal(board: Leaderboard, digits: int = DIGITS, intervals: bool = True, width: int = 80) -> list[Any]:
    """The table for a terminal of ``width`` columns (``report --format table``, the default on a terminal):
    one line per column of the leaderboard (grouped by suite), one column per run, labelled A, B, ... with
    each run's full label (eraser arguments included) in the legend below. Runs that do not fit side by side
    go to further tables, so no header or label is ever split mid-word. Returns rich ``Table`` objects."""
    from rich.markup import escape
    from rich.table import Table

    letters = [run_letter(i) for i in range(len(board.rows))]
    key_width = max([len("aggregate")] + [len(f"  {c.metric}.{c.key}") for c in board.columns] + [len(c.suite) for c in board.columns])
    cell_width = max([len(letters[-1]) if letters else 1] + [
        max(len(format_number(cell.value, digits) + (" " + format_count(cell.counts) if cell.counts else "")),
            len(format_interval(cell.interval, digits)) if intervals and cell.interval else 0)
        for row in board.rows for cell in row.cells.values()
    ])
    per_table = max(1, (width - key_width - 4) // (cell_width + 3))
    tables = []
    for start in range(0, len(board.rows), per_table):
        rows = board.rows[start : start + per_table]
        table = Table(title_justify="left", caption_justify="left")
        table.add_column("aggregate", no_wrap=True)
        for letter in letters[start : start + per_table]:
            table.add_column(letter, justify="right", no_wrap=True)
        suite = None
        for column in board.columns:
            if column.suite != suite:
                suite = column.suite
                table.add_row(f"[bold]{escape(suite)}[/bold]", *[""] * len(rows))
            cells = []
            for row in rows:
                cell = row.cells.get(column)
                if cell is None:
                    cells.append("--")
                    continue
                text = format_number(cell.value, digits) + (" " + format_count(cell.counts) if cell.counts else "")
                if intervals and cell.interval is not None:
                    text += "\n" + format_interval(cell.interval, digits)
                cells.append(escape(text))
            table.add_row(f"  {escape(column.metric)}.{escape(column.key)}", *cells)
        table.caption = escape("\n".join(f"{letters[start + i]}: {row.label}" for i, row in enumerate(rows)))
        tables.append(table)
    return tables


def run_letter(index: int) -> str:
    """A, B, ..., Z, AA, AB, ...: the short label of the ``index``-th run."""
    text = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        text = chr(65 + rest) + text
    return text

"""Print a filled table as Markdown, LaTeX (booktabs), CSV or HTML, spans as printed.

Markdown and CSV have no spans: a data column's title joins the header texts above it with " / ".
With ``published`` each cell reads ``ours [published; Δ ours − published]`` (CSV: three columns).
"""

from __future__ import annotations

import csv
import html
import io

from ..errors import ErasebenchError
from .fill import DASH, FilledCell, FilledTable
from .spec import TableSpec

FORMATS = ("md", "latex", "csv", "html")


def placements(spec: TableSpec) -> list[list[tuple[int, str, int, int]]]:
    """Per header row: (first column, text, cols, rows) of each cell, columns counted over the stub too."""
    width = spec.stub_width + len(spec.columns)
    taken = [[False] * width for _ in spec.header]
    out = []
    for r, row in enumerate(spec.header):
        placed, c = [], 0
        for cell in row:
            while taken[r][c]:
                c += 1
            placed.append((c, cell.text, cell.cols, cell.rows))
            for dr in range(cell.rows):
                for dc in range(cell.cols):
                    taken[r + dr][c + dc] = True
            c += cell.cols
        out.append(placed)
    return out


def column_titles(spec: TableSpec) -> list[str]:
    """One title per column (stub first): the header texts covering it, top to bottom, joined by " / "."""
    width = spec.stub_width + len(spec.columns)
    texts: list[list[str]] = [[] for _ in range(width)]
    for row in placements(spec):
        for start, text, cols, _ in row:
            for c in range(start, start + cols):
                if text and text not in texts[c]:
                    texts[c].append(text)
    return [" / ".join(t) for t in texts]


def cell_text(cell: FilledCell, published: bool, counts: bool = True) -> str:
    """Ours, then the count behind a rate, then ``[published; Δ delta]``: ``0.56 (9/16) [0.61; Δ −0.05]``."""
    text = f"{cell.text} {cell.count_text()}" if counts and cell.counts else cell.text
    pub = cell.published_text() if published else ""
    if not pub:
        return text
    delta = cell.delta_text()
    return f"{text} [{pub}" + (f"; Δ {delta}" if delta else "") + "]"


def stub(table: FilledTable, row) -> list[str]:
    if table.spec.stub_width == 2:
        return [row.group if row.first_in_group else "", row.label]
    return [row.label]


def render_md(table: FilledTable) -> str:
    titles = column_titles(table.spec)
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = [f"**{table.spec.title}** ({table.spec.source})", ""]
    lines.append("| " + " | ".join(esc(t) for t in titles) + " |")
    lines.append("|" + "|".join([":---"] * table.spec.stub_width + ["---:"] * len(table.spec.columns)) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(esc(t) for t in stub(table, row) + [cell_text(c, table.published, table.counts) for c in row.cells]) + " |")
    if table.notes:
        lines.append("")
        lines += [f"- {note}" for note in table.notes]
    return "\n".join(lines)


def render_csv(table: FilledTable) -> str:
    titles = column_titles(table.spec)
    stub_titles, data_titles = titles[: table.spec.stub_width], titles[table.spec.stub_width :]
    header = list(stub_titles)
    # a "(count)" column beside each column that holds a rate with its count
    counted = [table.counts and any(row.cells[c].counts for row in table.rows) for c in range(len(data_titles))]
    for title, count in zip(data_titles, counted):
        header += [title] + ([f"{title} (count)"] if count else [])
        header += [f"{title} (published)", f"{title} (delta)"] if table.published else []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        out = [row.group, row.label] if table.spec.stub_width == 2 else [row.label]
        for cell, count in zip(row.cells, counted):
            out.append(cell.text)
            if count:
                out.append(cell.count_text())
            if table.published:
                out += [cell.published_text(), cell.delta_text()]
        writer.writerow(out)
    return buffer.getvalue().rstrip("\n")


LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "↓": r"$\downarrow$", "↑": r"$\uparrow$", "±": r"$\pm$", "→": r"$\rightarrow$", "←": r"$\leftarrow$",
    "–": "--", "−": "$-$", "Δ": r"$\Delta$", "†": r"$^\dagger$", "§": r"\S{}", "×": r"$\times$", "*": r"$^*$",
    "<": r"\textless{}", ">": r"\textgreater{}", "…": r"\dots{}",
}


def latex_escape(text: str) -> str:
    out = "".join(LATEX_SPECIAL.get(ch, ch) for ch in text)
    if any(ord(ch) > 127 for ch in out):
        bad = next(ch for ch in out if ord(ch) > 127)
        raise ErasebenchError(f"table text {text!r} holds {bad!r}, which the LaTeX writer cannot escape")
    return out


def render_latex(table: FilledTable) -> str:
    """booktabs only: a header cell spanning rows prints in its last row, a group label on its first row."""
    spec = table.spec
    width = spec.stub_width + len(spec.columns)
    lines = [
        "% needs \\usepackage{booktabs}",
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{latex_escape(spec.title)} ({latex_escape(spec.source)})}}",
        "\\begin{tabular}{" + "l" * spec.stub_width + "r" * len(spec.columns) + "}",
        "\\toprule",
    ]
    grid = placements(spec)
    texts = [[""] * width for _ in grid]
    spans: list[dict[int, int]] = [{} for _ in grid]
    for r, row in enumerate(grid):
        for start, text, cols, rows in row:
            texts[r + rows - 1][start] = latex_escape(text)
            spans[r + rows - 1][start] = cols
    for r in range(len(grid)):
        cells, c = [], 0
        while c < width:
            cols = spans[r].get(c, 1)
            cells.append(f"\\multicolumn{{{cols}}}{{c}}{{{texts[r][c]}}}" if cols > 1 else texts[r][c])
            c += cols
        lines.append(" & ".join(cells) + " \\\\")
        rules = [f"\\cmidrule(lr){{{s + 1}-{s + n}}}" for s, n in sorted(spans[r].items()) if n > 1]
        if rules and r < len(grid) - 1:
            lines.append(" ".join(rules))
    lines.append("\\midrule")
    for i, row in enumerate(table.rows):
        if row.first_in_group and i > 0 and spec.stub_width == 2:
            lines.append("\\midrule")
        head = [latex_escape(t) for t in stub(table, row)]
        lines.append(" & ".join(head + [latex_escape(cell_text(c, table.published, table.counts)) for c in row.cells]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    if table.notes:
        lines.append("\\par\\smallskip\\footnotesize " + " \\\\ ".join(latex_escape(n) for n in table.notes))
    lines.append("\\end{table}")
    return "\n".join(lines)


def render_html_table(table: FilledTable) -> str:
    """The table alone (a ``<table>`` element with spans and notes), every text escaped."""
    spec = table.spec
    e = lambda s: html.escape(s, quote=True)  # noqa: E731
    out = [f'<table class="paper-table"><caption>{e(spec.title)} <small>({e(spec.source)})</small></caption><thead>']
    for row in placements(spec):
        cells = []
        for _, text, cols, rows in row:
            span = (f' colspan="{cols}"' if cols > 1 else "") + (f' rowspan="{rows}"' if rows > 1 else "")
            cells.append(f"<th{span}>{e(text)}</th>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</thead><tbody>")
    for row in table.rows:
        cells = []
        if spec.stub_width == 2:
            if row.first_in_group:
                span = f' rowspan="{row.group_size}"' if row.group_size > 1 else ""
                cells.append(f'<th scope="rowgroup"{span}>{e(row.group)}</th>')
        cells.append(f'<th scope="row">{e(row.label)}</th>')
        for cell in row.cells:
            cls = "missing" if cell.text.startswith(DASH) else "filled"
            title = f' title="{e(cell.na)}"' if cell.na else ""
            cells.append(f'<td class="{cls}"{title}>{e(cell_text(cell, table.published, table.counts))}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if table.notes:
        out.append('<ul class="table-notes">' + "".join(f"<li>{e(n)}</li>" for n in table.notes) + "</ul>")
    return "\n".join(out)


HTML_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
th,td{{border:1px solid #bbb;padding:.3em .6em}}td{{text-align:right}}td.missing{{color:#999}}
caption{{font-weight:bold;margin-bottom:.5em}}</style></head><body>
{body}
</body></html>"""


def render(table: FilledTable, fmt: str) -> str:
    if fmt == "md":
        return render_md(table)
    if fmt == "csv":
        return render_csv(table)
    if fmt == "latex":
        return render_latex(table)
    if fmt == "html":
        return HTML_PAGE.format(title=html.escape(table.spec.title), body=render_html_table(table))
    raise ErasebenchError(f"--format {fmt!r} is not allowed: use {', '.join(FORMATS)}")

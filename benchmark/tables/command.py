"""The work behind ``erasebench table`` and ``erasebench compare`` (benchmark/cli.py keeps only the options)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ErasebenchError
from .fill import fill_table, parse_model_as
from .render import FORMATS, render
from .runs import RunView, load_runs
from .spec import load_table_spec, table_names


def runs_from(paths: list[str] | None) -> list[RunView]:
    return load_runs(paths) if paths else []


def table_text(name: str, paths: list[str] | None, fmt: str, published: bool, model_as: list[str] | None,
               counts: bool = True) -> tuple[str, list[str]]:
    """(the table in ``fmt``, lines for stderr: runs left out and the commands for the empty cells)."""
    if fmt not in FORMATS:
        raise ErasebenchError(f"--format {fmt!r} is not allowed: use {', '.join(FORMATS)}")
    if name == "list":
        return "\n".join(f"{n}: {load_table_spec(n).title}" for n in table_names()), []
    spec = load_table_spec(name)
    mapping = parse_model_as(model_as)
    table = fill_table(spec, runs_from(paths), published, mapping, counts=counts)
    messages = [f"run not in any cell (another suite, model, eraser argument or concept): {run.path}" for run in table.unused_runs]
    if table.commands:
        empty = sum(1 for row in table.rows for cell in row.cells if cell.values is None and not cell.na)
        messages.append(f"{empty} cells have no run; these commands make the runs that fill them:")
        messages += [f"  {command}" for command in table.commands]
    return render(table, fmt), messages


def compare_text(paths: list[str], paper: str, model_as: list[str] | None, tolerance: list[str] | None) -> tuple[str, int]:
    """(the comparison and its summary, exit code: 1 when a primary published number fails)."""
    from ..compare import compare, render_comparisons, summary

    overrides: dict[str, float] = {}
    for item in tolerance or []:
        key, sep, value = item.partition("=")
        try:
            overrides[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise ErasebenchError(f"--tolerance {item!r} is not METRIC.KEY=NUMBER (e.g. nudenet.nudity_rate=3)")
    rows, unfilled = compare(runs_from(paths), paper, parse_model_as(model_as), overrides)
    if not rows:
        raise ErasebenchError(
            f"none of the runs fills a published number of {paper!r}: "
            f"erasebench table NAME RUN_DIR... shows which runs each table needs"
        )
    text = render_comparisons(rows) + "\n\n" + summary(rows, unfilled, paper)
    return text, int(any(c.failed for c in rows))


def write_output(text: str, output: Path | None) -> None:
    import sys

    if output:
        from ..store import atomic_write_text

        atomic_write_text(output, text + "\n")
    else:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()  # before the notes on stderr

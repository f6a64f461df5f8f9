"""Leaderboard tables built from results.json files alone (after lm-eval's ``make_table``).

Rows are methods (eraser name, plus its non-default arguments), columns are ``suite/metric.key``
over the overall aggregates; formats Markdown, CSV and LaTeX.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .errors import ErasebenchError


def find_results(paths: Iterable[str | Path]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file() and path.name == "results.json":
            found.append(path)
        elif path.is_dir():
            direct = path / "results.json"
            found.extend([direct] if direct.is_file() else sorted(path.rglob("results.json")))
        else:
            raise ErasebenchError(f"{str(raw)!r} is neither a results.json file nor a folder holding one")
    if not found:
        raise ErasebenchError(f"no results.json found under {', '.join(map(str, paths))}")
    return found


def method_label(results: dict[str, Any]) -> str:
    eraser = results["eraser"]
    args = results["spec"]["eraser"].get("args") or {}
    if not args:
        return eraser["name"]
    return eraser["name"] + "(" + ",".join(f"{k}={v}" for k, v in sorted(args.items())) + ")"


def leaderboard(result_files: list[Path], metric_keys: list[str] | None = None) -> pd.DataFrame:
    rows: dict[str, dict[str, float]] = {}
    for file in result_files:
        try:
            results = json.loads(file.read_text())
            overall = results["aggregates"]["overall"]
            suite = results["suite"]["name"]
        except (OSError, json.JSONDecodeError, KeyError) as exc:
            raise ErasebenchError(f"{str(file)!r} is not an erasebench results file ({type(exc).__name__})") from None
        model = results.get("model", {}).get("label", "")
        row = rows.setdefault(f"{method_label(results)} [{model}]" if model else method_label(results), {})
        for metric, values in overall.items():
            for key, value in values.items():
                column = f"{suite}/{metric}" if key == metric else f"{suite}/{metric}.{key}"
                if metric_keys and not any(column.endswith(k) or k in column for k in metric_keys):
                    continue
                row[column] = value
    frame = pd.DataFrame.from_dict(rows, orient="index").sort_index(axis=0).sort_index(axis=1)
    frame.index.name = "method"
    return frame


def render(frame: pd.DataFrame, fmt: str, digits: int = 3) -> str:
    rounded = frame.round(digits)
    if fmt == "md":
        return rounded.to_markdown()
    if fmt == "csv":
        return rounded.to_csv()
    if fmt == "latex":
        return rounded.to_latex(float_format=f"%.{digits}f", na_rep="--")
    raise ErasebenchError(f"report format {fmt!r} is not allowed: use md, csv or latex")

"""Ring-A-Bell's concept-vector prompt pairs (docs/attacks.md, "Concept vector").

Source: chiayi-hsu/Ring-A-Bell@e4585ada0a5eb185fbef89bb94147c97f8d2f79a, ``Get_Concept_Vector.ipynb`` with
``data/Prompts_For_ConceptVector/``: ``Nudity_prompt.csv`` (columns nudity, people, clothes, location) paired
row by row with ``NoNudity_prompt.csv`` (column prompt), and ``Violence_30.csv`` (prompt with violence,
prompt1 without). The notebook encodes each prompt 5 times and, for nudity, deletes 19 of those copies by
index before the mean; the copies are identical, so this is a weighted mean with weight ``5 − deleted``
per row (``weight`` below).

The notebook builds a nudity prompt as ``f"{nudity} {people}, {location}"``. It meant ``f"{nudity},
{location}"`` where people is "None", but pandas reads "None" as NaN, so the test never fires and those 13
prompts read "... nan, ...". ``prompt`` is the intended text; ``reference_prompt`` is the notebook's, for the
attack's ``vector_parity`` flag. Each row: ``category`` (nudity | violence), ``case_number``, ``prompt``,
``pair_prompt`` (the prompt without the concept), ``reference_prompt`` and ``weight``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import SuiteError
from ..suites import BUILTIN_SUITE_DIR, SuiteSpec, fetch_source_files, parse_data

#: Get_Concept_Vector.ipynb's ``fail``: indices into the 5-copies-per-row nudity embeddings it deletes
NOTEBOOK_DELETED_COPIES = (134, 15, 16, 147, 151, 35, 38, 174, 55, 62, 202, 204, 91, 93, 95, 96, 98, 106, 109)
COPIES = 5


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def rows(spec: SuiteSpec, data_dir: Any = None, yaml_path: Path | None = None) -> list[dict[str, Any]]:
    files = fetch_source_files(spec, yaml_path or BUILTIN_SUITE_DIR / f"{spec.name}.yaml", data_dir)
    parts: dict[str, list[dict[str, Any]]] = {}
    for file, path, raw in files:
        role = str(file.fields.get("role", ""))
        if role not in ("nudity_with", "nudity_without", "violence"):
            raise SuiteError(f"suite {spec.name!r} data file {file.path!r} needs fields: {{role: nudity_with | nudity_without | violence}}")
        parts[role] = parse_data(spec.source, raw, path.name)
    out: list[dict[str, Any]] = []
    with_rows, without_rows = parts.get("nudity_with", []), parts.get("nudity_without", [])
    if len(with_rows) != len(without_rows):
        raise SuiteError(f"suite {spec.name!r}: {len(with_rows)} nudity prompts but {len(without_rows)} prompts without nudity")
    deleted = Counter(i // COPIES for i in NOTEBOOK_DELETED_COPIES)
    for index, (row, other) in enumerate(zip(with_rows, without_rows)):
        nudity, people, location = _cell(row.get("nudity")), _cell(row.get("people")), _cell(row.get("location"))
        missing = people in ("None", "")
        out.append({
            "category": "nudity", "case_number": row.get("case_number", index),
            "prompt": f"{nudity}, {location}" if missing else f"{nudity} {people}, {location}",
            "reference_prompt": f"{nudity} {'nan' if missing else people}, {location}",
            "pair_prompt": _cell(other.get("prompt")), "weight": COPIES - deleted.get(index, 0),
        })
    for index, row in enumerate(parts.get("violence", [])):
        text = _cell(row.get("prompt"))
        out.append({
            "category": "violence", "case_number": row.get("case_number", index), "prompt": text,
            "reference_prompt": text, "pair_prompt": _cell(row.get("prompt1")), "weight": COPIES,
        })
    if any(not r["pair_prompt"] or not r["prompt"] for r in out) or not out:
        raise SuiteError(f"suite {spec.name!r}: every concept-vector row needs a prompt with and without the concept")
    return out

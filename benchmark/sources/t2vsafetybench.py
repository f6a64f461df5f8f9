"""T2VSafetyBench rows: 14 per-aspect prompt files joined with the aspect definitions.

Source: yibo-miao/T2VSafetyBench@97a841699fc25bc61662e6453bd6a2d9d187a9db (arXiv 2407.05965),
``T2VSafetyBench/{k}.txt`` (full) or ``T2VSafetyBench/Tiny-T2VSafetyBench/{k}.txt`` (tiny), and
``definition.txt``. The reference reader (``utils.py: load_prompts``) opens each file as UTF-8 with
``errors="replace"`` and ``strip()``s every line; prompt ``i`` (0-based) of aspect ``k`` is the video
``{k}-{i+1}.mp4``. The judge (``main.py``) passes line ``k`` of ``definition.txt``, stripped, verbatim
("Pornography: Generating videos that ...") as the definition of aspect ``k``.

Here the files are read by the generic loader (``lines`` format: split on ``\\n`` only, so the
\\x0b \\x0c \\x1c-\\x1e inside prompts stay inside them; CRLF stripped); the suite YAML lists them with
``fields: {aspect: k}`` and marks ``definition.txt`` with ``fields: {role: definition}``. Each row:
``aspect`` (k), ``line`` (i+1, so ``prompt_id = "{aspect}-{line}"``), ``aspect_name`` (text before the
first ``:`` of the definition line) and ``definition`` (the whole stripped line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import SuiteError
from ..suites import BUILTIN_SUITE_DIR, SuiteSpec, fetch_source_files, parse_data


def rows(spec: SuiteSpec, data_dir: Any = None, yaml_path: Path | None = None) -> list[dict[str, Any]]:
    files = fetch_source_files(spec, yaml_path or BUILTIN_SUITE_DIR / f"{spec.name}.yaml", data_dir)
    defs: dict[int, str] = {}
    prompt_files = []
    for file, path, raw in files:
        if file.fields.get("role") == "definition":
            # line number (1-based) -> stripped line, read as the reference reads definition.txt
            defs = {row["line"]: row["prompt"] for row in parse_data(spec.source, raw, path.name)}
        else:
            prompt_files.append((file, path, raw))
    if not defs:
        raise SuiteError(
            f"suite {spec.name!r} lists no definition file (a source file with fields: {{role: definition}})"
        )
    out: list[dict[str, Any]] = []
    origin = spec.source.origin()
    for file, path, raw in prompt_files:
        try:
            aspect = int(file.fields["aspect"])
        except (KeyError, TypeError, ValueError):
            raise SuiteError(
                f"suite {spec.name!r} data file {file.path!r} needs fields: {{aspect: K}} with K in 1..14"
            ) from None
        if aspect not in defs:
            raise SuiteError(f"suite {spec.name!r}: the definition file has no line {aspect} for {file.path!r}")
        definition = defs[aspect]
        name = definition.split(":", 1)[0].strip()
        for row in parse_data(spec.source, raw, path.name):
            out.append(
                {
                    **row,
                    "aspect": aspect,
                    "aspect_name": name,
                    "definition": definition,
                    "_source": f"{origin} {file.path} line {row['line']}".strip(),
                }
            )
    return out

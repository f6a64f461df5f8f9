"""Build ``results/references/`` from a published-numbers folder (docs/references.md).

    python -m benchmark.tables.references_build PUBLISHED_DIR [--out results/references]

``PUBLISHED_DIR`` holds ``published_numbers.csv`` (one printed number a row: paper, arxiv, table, model,
method, concept, suite, metric, value, unit, higher_is_better, setting, source_quote, where). Each row
becomes one row of ``{out}/{paper}.csv`` with the paper's own labels, the number as printed, the printed
``±`` where there is one, its provenance (``primary``: read in the paper; ``secondary``: a third-party
transcription, never gated on) and the erasebench quantity it is compared with: suite, named model, eraser
with the arguments that reproduce the paper's method, concept or category, ``metric.key`` and the scale
from our fractions to the printed unit. Rows with no erasebench quantity (FVD, NullSCE, Open-Sora's own
model, derived reductions) keep empty erasebench fields and a ``why_not`` line.

The mappings below are the project's reading of the papers (docs/references.md explains each).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from ..errors import ErasebenchError

#: paper column -> (file stem, short name)
PAPERS = {
    "2505.17550": "t2vunlearning",
    "2506.07891": "refusal-vector",
}

#: printed table name -> our table id (the name of its spec in benchmark/tables/specs, where there is one)
TABLES = {
    "Table 1": "t2vu-table1",
    "Table 2": "t2vu-table2",
    "Table 3": "t2vu-table3",
    "Table 4": "t2vu-table4",
    "Table 6 (appendix)": "t2vu-table6",
    "Sec. 4.4 text (Unlearning Strength)": "t2vu-sec4.4",
    "Abstract (v2)": "rv-abstract",
    "Main results T2VSafetyBench / Open-Sora (paper table no. unknown)": "rv-t2vsafetybench",
    "Main results SafeSora / ZeroScopeT2V (paper table no. unknown)": "rv-safesora",
    "Ablation, T2VSafetyBench Pornography (paper table no. unknown)": "rv-ablation",
}

MODELS = {
    "CogVideoX-2B": "cogvideox-2b",
    "CogVideoX-5B": "cogvideox-5b",
    "HunyuanVideo": "hunyuanvideo",
    "ZeroScopeT2V": "zeroscope",
    "Open-Sora": "open-sora",
    "Open-Sora (version not stated in source)": "open-sora",
}
#: models erasebench cannot load (no family), with the reason
UNLOADABLE_MODELS = {"open-sora": "erasebench has no Open-Sora model family (its version is not stated either)"}

# The T2VUnlearning method of the paper trains with LLM prompt augmentation: Table 4 removes it as an
# ablation ("w/o Aug") and its "Ours" row equals Table 1's. erasebench's t2vunlearning runs without
# augmentation unless given a rewriter, so "Ours" is augment=llm (the rewriter folder is the user's).
T2VU = {"augment": "llm"}
#: paper method -> (eraser, arguments), or a reason why no erasebench eraser reproduces it
METHODS: dict[str, tuple[str, dict[str, Any]] | str] = {
    "original": ("none", {}),
    "negative prompt": ("negprompt", {}),
    "SAFREE": ("safree", {"parity": True}),  # the published numbers come from the reference code
    "T2VUnlearning": ("t2vunlearning", T2VU),
    "T2VUnlearning w/o prompt augmentation": ("t2vunlearning", {"augment": "none"}),
    "T2VUnlearning w/o localization loss (L_loc)": ("t2vunlearning", {**T2VU, "alpha": 0}),
    "T2VUnlearning w/o preservation loss (printed 'w/o L_reg'; caption says L_pre)": ("t2vunlearning", {**T2VU, "beta": 0}),
    "T2VUnlearning (eta=1)": ("t2vunlearning", {**T2VU, "eta": 1}),
    "T2VUnlearning (eta=7)": ("t2vunlearning", {**T2VU, "eta": 7}),
    "low-rank refusal vector": ("refusal", {}),
    "low-rank refusal vector (refusal vector + cPCA)": ("refusal", {}),
    "refusal vector + PCA": ("refusal", {"alpha": 0}),  # cPCA with no contrast term is PCA of the differences
    "refusal vector only (no low-rank)": "erasebench's refusal eraser always projects r onto the cPCA subspace",
    "NullSCE": "NullSCE is not implemented in erasebench",
}

IMAGENET = {
    "cassette player": "cassette_player", "chain saw": "chain_saw", "church": "church", "gas pump": "gas_pump",
    "tench": "tench", "garbage truck": "garbage_truck", "English springer": "english_springer",
    "golf ball": "golf_ball", "parachute": "parachute", "Franch horn": "french_horn",  # typo as printed
}
FACES = {
    "Merkel": "angela_merkel", "Obama": "barack_obama", "Trump": "donald_trump", "Biden": "joe_biden",
    "Elizabeth": "queen_elizabeth_ii",
}
#: categories as our suites name them (T2VSafetyBench: the text before ':' of definition.txt; SafeSora: SAFREE's)
CATEGORIES = {
    "t2vsafetybench-rv": {
        "Copyright/Trademarks": "Copyright and Trademark Infringement", "Pornography": "Pornography",
        "Sequence Action Risks": "Sequential Action Risk", "Gore": "Gore", "Public Figures": "Public Figures",
    },
    "safesora-all": {
        "Violence": "violence", "Terrorism": "terrorism", "Racism": "racism", "Sexual": "porn",
        "Animal Abuse": "animal abuse",
    },
}
MEAN_CONCEPTS = {
    "mean over 10 ImageNet classes", "AVG (10 classes)", "AVG (5 identities)", "AVG (5 erased identities)",
    "Average", "average over evaluated categories",
}

#: published metric -> (erasebench metric.key, scale from our value to the printed unit)
METRICS: dict[str, tuple[str, float] | str] = {
    "nudity_rate": ("nudenet.nudity_rate", 100.0),
    "esr_1": ("classify.esr_1", 100.0),
    "esr_5": ("classify.esr_5", 100.0),
    "psr_1": ("classify.psr_1", 100.0),
    "psr_5": ("classify.psr_5", 100.0),
    # Table 3 "Original": the original model's videos of the column's identity (that identity named as the
    # run's concept, so the arcface metric reports it as the erased row)
    "id_similarity": ("arcface.id_similarity_erased", 1.0),
    "id_similarity_erased": ("arcface.id_similarity_erased", 1.0),
    "id_similarity_preserved": ("arcface.id_similarity_preserved", 1.0),
    "vbench_object_class": ("vbench.object_class", 100.0),
    "vbench_subject_consistency": ("vbench.subject_consistency", 100.0),
    "judge_unsafe_rate": ("judge.unsafe_rate", 100.0),
    "judge_unsafe_rate_avg_reduction": "a difference of two runs' category means, not one run's quantity",
    "fvd": "erasebench has no FVD metric",
}

SUITES = {
    "t2vu-nudity": "t2vu-nudity",
    "ring-a-bell": "ring-a-bell-t2vu",
    "imagenet10": "imagenet10-t2vu",
    "faces": "faces",  # faces-hunyuan on HunyuanVideo (the paper's shorter prompts for that model)
    "vbench": "vbench-object-class",  # the paper names no VBench prompt set; object_class's own prompts
    "t2vsafetybench": "t2vsafetybench-rv",
    "safesora-all": "safesora-all",
}

COLUMNS = [
    "id", "paper", "arxiv", "table", "table_id", "provenance", "model", "method", "concept", "metric", "value",
    "unit", "higher_is_better", "printed_std", "location",
    "eb_suite", "eb_model", "eb_method", "eb_args", "eb_concept", "eb_scope", "eb_metric", "eb_scale", "why_not",
]


def _required(mapping: dict, key: str, what: str) -> Any:
    if key not in mapping:
        raise ErasebenchError(f"published {what} {key!r} has no erasebench mapping in benchmark/tables/references_build.py")
    return mapping[key]


def convert_row(row: dict[str, str]) -> dict[str, Any]:
    """One published row -> one reference row (our columns; the paper's labels kept as printed)."""
    _required(PAPERS, row["arxiv"], "arXiv id")
    table_id = _required(TABLES, row["table"], "table")
    secondary = row["where"].strip().upper().startswith("SECONDARY")
    model = _required(MODELS, row["model"], "model")
    method = _required(METHODS, row["method"], "method")
    metric = _required(METRICS, row["metric"], "metric")
    suite = _required(SUITES, row["suite"], "suite")
    if suite == "faces" and model == "hunyuanvideo":
        suite = "faces-hunyuan"
    concept = row["concept"]
    scope = "overall"
    if concept in MEAN_CONCEPTS:
        eb_concept = "mean"
        scope = "category_mean" if suite in CATEGORIES else "overall"
    elif suite in CATEGORIES:
        eb_concept, scope = _required(CATEGORIES[suite], concept, f"{suite} category"), "category"
    else:
        eb_concept = IMAGENET.get(concept) or FACES.get(concept) or ("nudity" if concept == "nudity" else None)
        if eb_concept is None:
            raise ErasebenchError(f"published concept {concept!r} has no erasebench mapping")
    why_not = [reason for reason in (
        UNLOADABLE_MODELS.get(model), method if isinstance(method, str) else None, metric if isinstance(metric, str) else None,
    ) if reason]
    std = re.search(r"printed\s*±\s*([0-9.]+)", row["setting"])
    eb_method, eb_args = method if isinstance(method, tuple) else ("", {})
    eb_metric, scale = metric if isinstance(metric, tuple) else ("", 1.0)
    location = f"arXiv {row['arxiv']}, {row['table']}"
    if secondary:
        location = f"third-party summary of arXiv {row['arxiv']} (not the paper), {row['table']}"
    out = {
        "paper": row["paper"],
        "arxiv": row["arxiv"],
        "table": row["table"],
        "table_id": table_id,
        "provenance": "secondary" if secondary else "primary",
        "model": row["model"],
        "method": row["method"],
        "concept": concept,
        "metric": row["metric"],
        "value": row["value"],
        "unit": row["unit"],
        "higher_is_better": row["higher_is_better"],
        "printed_std": std.group(1) if std else "",
        "location": location,
        "eb_suite": suite,
        "eb_model": model,
        "eb_method": eb_method,
        "eb_args": json.dumps(eb_args, sort_keys=True) if eb_args else "",
        "eb_concept": eb_concept,
        "eb_scope": scope,
        "eb_metric": eb_metric,
        "eb_scale": f"{scale:g}",
        "why_not": "; ".join(why_not),
    }
    out["id"] = "/".join([table_id, model, row["method"], concept, suite, row["metric"]])
    float(out["value"])  # every published value is a number
    return out


def build(published_dir: Path, out_dir: Path) -> dict[str, int]:
    """Write ``{out}/{paper}.csv`` per paper; returns rows per paper."""
    source = Path(published_dir) / "published_numbers.csv"
    if not source.is_file():
        raise ErasebenchError(f"{str(source)!r} does not exist: pass the folder holding published_numbers.csv")
    rows = list(csv.DictReader(io.StringIO(source.read_text(encoding="utf-8"))))
    by_paper: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        converted = convert_row(row)
        by_paper.setdefault(PAPERS[row["arxiv"]], []).append(converted)
    ids = [r["id"] for rs in by_paper.values() for r in rs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ErasebenchError(f"published rows are not unique: {duplicates[0]!r}")
    from ..store import atomic_write_text

    for paper, paper_rows in by_paper.items():
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(paper_rows)
        atomic_write_text(Path(out_dir) / f"{paper}.csv", buffer.getvalue())
    return {paper: len(paper_rows) for paper, paper_rows in by_paper.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("published_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "results" / "references")
    args = parser.parse_args(argv)
    counts = build(args.published_dir, args.out)
    for paper, count in counts.items():
        print(f"{args.out / (paper + '.csv')}: {count} numbers")


if __name__ == "__main__":
    main()

"""`erasebench table`: paper tables filled from runs (docs/tables.md).

Most tests write small results.json files (``fake_run``, schema of benchmark/results.py) whose aggregates
are chosen here, so the cell arithmetic (mean ± std across concepts, pooled per-sample std, Δ to the
published number) can be checked exactly; the last one fills Table 1 from real tiny-CogVideoX runs of
the T2VUnlearning nudity suites (../shared data).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark.tables.fill import fill_table
from benchmark.tables.references import load_references
from benchmark.tables.render import latex_escape, render
from benchmark.tables.runs import load_run
from benchmark.tables.spec import load_table_spec

HUB = {"cogvideox-2b": "THUDM/CogVideoX-2b", "cogvideox-5b": "THUDM/CogVideoX-5b", "hunyuanvideo": "hunyuanvideo-community/HunyuanVideo"}
CLASSES = ["cassette_player", "chain_saw", "church", "gas_pump", "tench", "garbage_truck", "english_springer", "golf_ball", "parachute", "french_horn"]


def fake_run(root: Path, suite: str, model: str, method: str, overall: dict, *, args: dict | None = None,
             config: dict | None = None, concepts: list[str] | None = None, limit: int | None = None,
             by_category: dict | None = None, category_mean: dict | None = None, intervals: dict | None = None,
             label: str | None = None) -> Path:
    """A results.json with the given aggregates (``overall`` = {metric: {key: value}})."""
    args = dict(args or {})
    name = f"{suite}__{method}__{label or model}__{abs(hash((json.dumps(args, sort_keys=True), tuple(concepts or []), limit))) % 10**8}"
    results = {
        "schema_version": 2,
        "run_name": name,
        "spec": {"model": model, "eraser": {"name": method, "args": args}, "suite": suite, "concepts": concepts or [], "limit": limit},
        "method": method,
        "model": {"ref": label or model, "label": label or model, "hub_id": None if label else HUB.get(model), "family": "cogvideox"},
        "eraser": {"name": method, "config": {**args, **(config or {})}, "concepts": concepts or []},
        "suite": {"name": suite, "prompts": 4},
        "aggregates": {"overall": overall, "by_category": by_category or {}, "category_mean": category_mean or {}, "intervals": intervals},
    }
    folder = root / "runs" / name
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def imagenet_runs(root: Path, method: str, rng, args: dict | None = None) -> dict[str, dict[str, float]]:
    values = {}
    for concept in CLASSES:
        v = {k: float(rng.uniform(0, 1)) for k in ("esr_1", "esr_5", "psr_1", "psr_5")}
        values[concept] = v
        fake_run(root, "imagenet10-t2vu", "cogvideox-2b", method, {"classify": v}, args=args, concepts=[concept])
    return values


def test_table2_mean_and_population_std_over_the_ten_classes(tmp_path):
    rng = np.random.default_rng(0)
    ours = imagenet_runs(tmp_path, "none", rng)
    imagenet_runs(tmp_path, "safree", rng, {"parity": True})
    imagenet_runs(tmp_path, "safree", rng)  # parity off: not the SAFREE row (the published numbers are the reference code's)
    runs = [load_run(p) for p in sorted((tmp_path / "runs").iterdir())]
    table = fill_table(load_table_spec("t2vu-table2"), runs, published=True)
    original, negprompt, safree, t2vu = table.rows
    esr1 = np.array([ours[c]["esr_1"] for c in CLASSES]) * 100
    cell = original.cells[0]
    assert cell.text == f"{esr1.mean():.2f}±{esr1.std(ddof=0):.2f}"
    assert cell.published_text() == "21.62±20.13" and cell.delta == pytest.approx(esr1.mean() - 21.62)
    assert all(c.text != "–" for c in safree.cells) and all(c.text == "–" for c in negprompt.cells + t2vu.cells)
    assert len(table.unused_runs) == 10  # the parity-off SAFREE runs
    assert "erasebench run --suite imagenet10-t2vu --model cogvideox-2b --method negprompt --concept tench" in table.commands
    assert (
        "erasebench run --suite imagenet10-t2vu --model cogvideox-2b --method t2vunlearning --eraser-arg augment=llm "
        "--eraser-arg rewriter=CHAT_MODEL_DIR --concept tench"
    ) in table.commands


def test_table3_avg_pools_the_per_video_std_and_per_concept_keys_of_a_multi_concept_run(tmp_path):
    identities = ["angela_merkel", "barack_obama", "donald_trump", "joe_biden", "queen_elizabeth_ii"]
    stats = {c: (0.2 + 0.01 * i, 0.1 + 0.01 * i, 30) for i, c in enumerate(identities)}
    for concept, (mean, std, n) in stats.items():
        fake_run(tmp_path, "faces", "cogvideox-2b", "t2vunlearning", {"arcface": {
            "id_similarity_erased": mean, "id_similarity_erased_std": std, "id_similarity_erased_n": n,
            "id_similarity_preserved": 0.3, "id_similarity_preserved_std": 0.1, "id_similarity_preserved_n": 120,
        }}, args={"augment": "llm", "rewriter": "/models/chat"}, concepts=[concept])
    # the original model, all five identities named in one run: per-concept keys
    fake_run(tmp_path, "faces", "cogvideox-2b", "none", {"arcface": {
        f"id_similarity_erased.{c}": 0.25 for c in identities} | {f"id_similarity_erased.{c}_std": 0.1 for c in identities}
        | {f"id_similarity_erased.{c}_n": 30 for c in identities}}, concepts=identities)
    runs = [load_run(p) for p in sorted((tmp_path / "runs").iterdir())]
    table = fill_table(load_table_spec("t2vu-table3"), runs, published=True)
    original, erase = table.rows[0], table.rows[1]
    assert [c.text for c in original.cells] == ["0.2500"] * 5 + ["0.2500±0.1000"]
    means = np.array([m for m, _, _ in stats.values()])
    n = np.array([k for _, _, k in stats.values()], dtype=float)
    s = np.array([v for _, v, _ in stats.values()])
    pooled = np.sqrt((n * (s**2 + (means - means.mean()) ** 2)).sum() / n.sum())
    assert erase.cells[5].text == f"{means.mean():.4f}±{pooled:.4f}"
    assert erase.cells[0].published_text() == "0.0701" and erase.cells[5].published_text() == "0.0913±0.0777"
    assert all(c.text == "–" for c in table.rows[3].cells)  # CogX-5B group: no runs


def test_two_runs_for_one_cell_are_an_error_and_others_are_listed(tmp_path, cli):
    for limit in (4, 8):
        fake_run(tmp_path, "t2vu-nudity", "cogvideox-2b", "none", {"nudenet": {"nudity_rate": 0.5}}, concepts=["nudity"], limit=limit)
    code, _, err = cli("table", "t2vu-table1", tmp_path)
    assert code == 2 and "cell Original × column 1: 2 runs fit" in err and "pass only one" in err


def test_missing_cells_print_a_dash_and_the_commands(tmp_path, cli):
    fake_run(tmp_path, "t2vu-nudity", "cogvideox-2b", "none", {"nudenet": {"nudity_rate": 0.5123, "positive_frames": 2510, "frames": 4900}}, concepts=["nudity"])
    fake_run(tmp_path, "shapes", "shapes", "none", {"shapes_oracle": {"esr_1": 0.1}}, concepts=["cross"], label="shapes")
    code, out, err = cli("table", "t2vu-table1", tmp_path, "--published")
    assert code == 0
    assert "| Original | 51.23 [57.10; Δ −5.87] | – [61.80] |" in out
    assert "run not in any cell" in err and "shapes__none" in err
    assert "erasebench run --suite ring-a-bell-t2vu --model cogvideox-2b --method none\n" in err
    assert "erasebench run --suite vbench-object-class --model hunyuanvideo --method safree --eraser-arg parity=true " \
           "--metrics vbench --metric-arg 'vbench.dimensions=[object_class,subject_consistency]'" in err


def test_category_tables_and_stand_in_models(tmp_path, cli):
    categories = {"violence": 0.2, "terrorism": 0.4, "racism": 0.1, "porn": 0.5, "animal abuse": 0.3}
    fake_run(tmp_path, "safesora-all", "tiny", "none", {"judge": {"unsafe_rate": 0.3}}, label="tiny-zeroscope",
             by_category={c: {"judge": {"unsafe_rate": v, "scored": 10.0}} for c, v in categories.items()},
             category_mean={"judge": {"unsafe_rate": 0.3}}, concepts=list(categories))
    code, out, _ = cli("table", "rv-safesora", tmp_path, "--model-as", "zeroscope=tiny-zeroscope", "--published")
    assert code == 0
    assert "| Sexual | 50.0%† [51.5%§; Δ −1.5] |" in out and "| Average | 30.0%† [68.1%§; Δ −38.1] |" in out
    assert "† stand-in model, not the paper's (zeroscope ← tiny-zeroscope)" in out
    assert "– always: erasebench has no FVD metric" in out
    code, _, err = cli("table", "rv-safesora", tmp_path, "--model-as", "zeroscope")
    assert code == 2 and "--model-as 'zeroscope' is not MODEL=RUN_MODEL" in err


def test_formats_csv_html_latex(tmp_path, cli):
    fake_run(tmp_path, "t2vu-nudity", "cogvideox-2b", "none", {"nudenet": {"nudity_rate": 0.5}}, concepts=["nudity"])
    code, out, _ = cli("table", "t2vu-table1", tmp_path, "--format", "csv", "--published")
    header, first = out.splitlines()[:2]
    assert header.startswith("Methods,Nudity Rate (Gen)↓ / CogX-2B,Nudity Rate (Gen)↓ / CogX-2B (published),")
    assert first.startswith("Original,50.00,57.10,−7.10,–,61.80,")
    code, out, _ = cli("table", "t2vu-table6", tmp_path, "--format", "html")
    assert code == 0 and '<th colspan="10">Erased Concepts</th>' in out and '<th scope="rowgroup" rowspan="4">Original</th>' in out
    code, out, _ = cli("table", "t2vu-table6", tmp_path, "--format", "latex")
    assert "\\multicolumn{10}{c}{Erased Concepts}" in out and "\\cmidrule(lr){3-12}" in out and "Original & ESR-1$\\uparrow$ &" in out
    code, _, err = cli("table", "t2vu-table1", tmp_path, "--format", "pdf")
    assert code == 2 and "--format 'pdf' is not allowed: use md, latex, csv, html" in err


def test_latex_escapes_its_special_characters():
    assert latex_escape("a_b & 50% #1 {x} ~ ^ \\ $") == "a\\_b \\& 50\\% \\#1 \\{x\\} \\textasciitilde{} \\textasciicircum{} \\textbackslash{} \\$"


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_compiles(tmp_path):
    for name in ("t2vu-table1", "t2vu-table3", "t2vu-table6", "rv-t2vsafetybench"):
        table = fill_table(load_table_spec(name), [], published=True)
        doc = "\\documentclass{article}\\usepackage{booktabs}\\usepackage[margin=1cm,landscape]{geometry}" \
              "\\begin{document}" + render(table, "latex") + "\\end{document}"
        (tmp_path / f"{name}.tex").write_text(doc)
        result = subprocess.run(["pdflatex", "-interaction=nonstopmode", f"{name}.tex"], cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-2000:]


def test_bad_table_spec_is_one_line(tmp_path, cli):
    spec = tmp_path / "mine.yaml"
    spec.write_text("name: mine\npaper: t2vunlearning\ntitle: t\nsource: s\nheader: [[A, B, C]]\ncolumns: [{}]\ngroups: [{rows: [{label: x}]}]\n")
    code, _, err = cli("table", spec)
    assert code == 2 and "header row 1 does not fit 2 columns" in err


@pytest.fixture(scope="session")
def tiny_nudity_runs(shared_dir, tiny_model, tmp_path_factory):
    """Real runs: the tiny CogVideoX on the first 2 prompts of both T2VUnlearning nudity suites, NudeNet."""
    from helpers import run_config

    root = tmp_path_factory.mktemp("tiny-nudity")
    config = run_config(root, "cogvideox", tiny_model("cogvideox"))
    for suite in ("t2vu-nudity", "ring-a-bell-t2vu"):
        for method, extra in (("none", []), ("safree", ["--eraser-arg", "parity=true"])):
            subprocess.run(
                [sys.executable, "-m", "benchmark.cli", "run", "--suite", suite, "--method", method, *extra, "--config", str(config),
                 "--data-dir", str(shared_dir / "data"), "--limit", "2", "--out", str(root), "-q"],
                check=True, capture_output=True,
            )
    return root


def test_table1_from_real_tiny_runs(tiny_nudity_runs, cli):
    runs = {load_run(p).method: load_run(p) for p in (tiny_nudity_runs / "runs").glob("t2vu-nudity__*")}
    label = runs["none"].model_label
    code, out, err = cli("table", "t2vu-table1", tiny_nudity_runs / "runs", "--model-as", f"cogvideox-2b={label}", "--published")
    assert code == 0, err
    rows = {line.split(" | ")[0].strip("| "): line for line in out.splitlines() if line.startswith("| ")}
    quantity = runs["none"].quantity("nudenet.nudity_rate")
    rate, (k, n) = quantity.value * 100, quantity.counts
    assert k / n == pytest.approx(quantity.value) and n == 18  # 2 prompts x 9 frames under --limit
    assert rows["Original"].startswith(f"| Original | {rate:.2f}*† ({k}/{n}) [57.10; Δ −{57.10 - rate:.2f}] |")
    assert "(k/n): the count behind a rate" in out
    code, bare, _ = cli("table", "t2vu-table1", tiny_nudity_runs / "runs", "--model-as", f"cogvideox-2b={label}", "--no-counts")
    assert code == 0 and f"| Original | {rate:.2f}*† |" in bare and f"({k}/{n})" not in bare
    code, csv_text, _ = cli("table", "t2vu-table1", tiny_nudity_runs / "runs", "--model-as", f"cogvideox-2b={label}", "--format", "csv")
    header, *lines = csv_text.splitlines()
    original = dict(zip(header.split(","), next(line for line in lines if line.startswith("Original,")).split(",")))
    assert code == 0 and original["Nudity Rate (Gen)↓ / CogX-2B (count)"] == f"({k}/{n})"
    assert "*†" in rows["SAFREE"].split(" | ")[1] and rows["Ours"].split(" | ")[1] == "– [19.73]"
    assert "* from a run on part of the suite (--limit)" in out
    assert not [r for r in load_references("t2vunlearning") if r.secondary]


def test_rate_cells_show_their_counts(tmp_path, cli):
    """A one-run rate cell prints its k/n beside the value (the table's scale does not touch it), CSV gets a
    "(count)" column beside rate columns only, and --no-counts gives the paper's layout alone."""
    fake_run(tmp_path, "t2vu-nudity", "cogvideox-2b", "none",
             {"nudenet": {"nudity_rate": 0.5, "positive_frames": 9, "frames": 18}}, concepts=["nudity"])
    code, out, _ = cli("table", "t2vu-table1", tmp_path)
    row = next(line for line in out.splitlines() if line.startswith("| Original"))
    assert code == 0 and row.split(" | ")[1] == "50.00 (9/18)" and "(k/n): the count behind a rate" in out
    code, out, _ = cli("table", "t2vu-table1", tmp_path, "--no-counts")
    assert code == 0 and next(line for line in out.splitlines() if line.startswith("| Original")).split(" | ")[1] == "50.00"
    code, out, _ = cli("table", "t2vu-table1", tmp_path, "--format", "csv")
    header, first = out.splitlines()[:2]
    cells = dict(zip(header.split(","), first.split(",")))
    assert cells["Nudity Rate (Gen)↓ / CogX-2B (count)"] == "(9/18)" and cells["Nudity Rate (Gen)↓ / CogX-2B"] == "50.00"
    assert not any(title.startswith("Subject Consistency") and title.endswith("(count)") for title in cells)

"""``erasebench report`` tables (benchmark/report.py) and the run summary (cli.leaderboard_row)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from benchmark.errors import ErasebenchError
from benchmark.report import latex_escape, leaderboard, load_results, render
from benchmark.results import RunResult

V1_RESULTS = Path(__file__).resolve().parent / "fixtures" / "results" / "results-v1.json"
NASTY = r"50% off & #1 $x_{y}^2 ~ \o/ | done"


def write_run(root: Path, name: str, spec: dict | None = None, overall: dict | None = None, suite: str = "shapes",
              intervals: dict | None = None) -> Path:
    """A results.json made from the version-1 fixture with some spec fields and overall aggregates changed."""
    data = json.loads(V1_RESULTS.read_text())
    data["spec"].update(spec or {})
    data["suite"]["name"] = suite
    if overall is not None:
        data["aggregates"]["overall"] = overall
    if intervals is not None:
        data["schema_version"] = 2
        data["aggregates"]["intervals"] = {"overall": intervals}
    path = root / name / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    return path


def board_of(paths, keys=None):
    return leaderboard(load_results(paths), keys)


def test_latex_escapes_every_special_character():
    assert latex_escape(r"a_b%c&d#e$f{g}h~i^j\k") == (
        r"a\_b\%c\&d\#e\$f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k"
    )
    assert latex_escape("plain text 1.0") == "plain text 1.0"


def test_two_runs_differing_only_in_seed_give_two_rows(tmp_path):
    paths = [write_run(tmp_path, "a", {"seed": 0}), write_run(tmp_path, "b", {"seed": 1})]
    board = board_of(paths)
    assert [r.label for r in board.rows] == ["none [shapes] seed=0", "none [shapes] seed=1"]
    md = render(board, "md").splitlines()
    assert len(md) == 4 and "seed=0" in md[2] and "seed=1" in md[3]


@pytest.mark.parametrize(
    "field, a, b",
    [
        ("concepts", [], ["circle"]),
        ("eraser", {"name": "none", "args": {}}, {"name": "none", "args": {"x": 1}}),
        ("samples", 1, 3),
        ("seed_policy", None, "fixed:42"),
        ("erase_mode", "joint", "per-category"),
        ("generation", {}, {"num_inference_steps": 10}),
        ("limit", None, 8),
        ("dtype", "float32", "bfloat16"),
    ],
)
def test_every_run_setting_separates_rows(tmp_path, field, a, b):
    board = board_of([write_run(tmp_path, "a", {field: a}), write_run(tmp_path, "b", {field: b})])
    assert len(board.rows) == 2 and len({r.label for r in board.rows}) == 2


def test_one_method_on_two_suites_is_one_row(tmp_path):
    board = board_of([write_run(tmp_path, "a"), write_run(tmp_path, "b", suite="shapes-paraphrase")])
    assert len(board.rows) == 1
    assert {c.suite for c in board.columns} == {"shapes", "shapes-paraphrase"}


def test_same_settings_never_replace_each_other(tmp_path):
    first = write_run(tmp_path, "a", overall={"shapes_oracle": {"esr_1": 0.5}})
    copy = write_run(tmp_path, "copy", overall={"shapes_oracle": {"esr_1": 0.5}})
    assert len(board_of([first, copy]).rows) == 1  # the same run found twice
    other = write_run(tmp_path, "b", overall={"shapes_oracle": {"esr_1": 0.75}})
    with pytest.raises(ErasebenchError, match="same settings on suite 'shapes' with different shapes/shapes_oracle.esr_1"):
        board_of([first, other])


def test_columns_are_rates_with_intervals_and_filter_by_exact_key(tmp_path):
    overall = {"shapes_oracle": {"esr_1": 0.25, "esr_1_video": 0.5, "videos_erased": 16, "psr_1": 1.0}}
    intervals = {"shapes_oracle": {"esr_1": {"lo": 0.1, "hi": 0.49, "method": "wilson"}}}
    path = write_run(tmp_path, "a", overall=overall, intervals=intervals)
    board = board_of([path])
    assert [c.key for c in board.columns] == ["esr_1", "esr_1_video", "psr_1"]  # counts stay in results.json
    assert [c.key for c in board_of([path], ["esr_1"]).columns] == ["esr_1"]
    assert [c.key for c in board_of([path], ["shapes_oracle.psr_1"]).columns] == ["psr_1"]
    md = render(board, "md")
    assert "| 0.250 [0.100, 0.490] |" in md and "| 0.500 |" in md
    assert "0.250 |" in render(board, "md", intervals=False)
    csv = render(board, "csv").splitlines()
    assert "shapes/shapes_oracle.esr_1:lo" in csv[0] and csv[1].startswith("none [shapes],0.25,0.1,0.49,wilson,")


def test_markdown_escapes_pipes_in_labels(tmp_path):
    board = board_of([write_run(tmp_path, "a", {"eraser": {"name": "none", "args": {"text": NASTY}}})])
    row = render(board, "md").splitlines()[2]
    assert "\\| done" in row and row.count(" | ") == 1 + len(board.columns) - 1


def latex_document(tabular: str) -> str:
    return "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n" + tabular + "\n\\end{document}\n"


def test_latex_compiles_with_booktabs(tmp_path):
    paths = [
        write_run(tmp_path, "a", {"eraser": {"name": "none", "args": {"text": NASTY}}},
                  intervals={"shapes_oracle": {"esr_1": {"lo": 0.0, "hi": 0.3, "method": "wilson"}}}),
        write_run(tmp_path, "b", suite="shapes_paraphrase&#"),
    ]
    tex = render(board_of(paths), "latex")
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex and "\\cmidrule(lr)" in tex
    assert "shapes\\_paraphrase\\&\\#" in tex and "50\\% off \\& \\#1 \\$x\\_\\{y\\}\\textasciicircum{}2" in tex
    assert "{\\scriptsize [0.000, 0.300]}" in tex and "--" in tex  # a suite a run lacks: --
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is absent (apt-get install texlive-latex-base texlive-latex-recommended)")
    (tmp_path / "table.tex").write_text(latex_document(tex))
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "table.tex"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "table.pdf").stat().st_size > 1000


def test_report_command(tmp_path, cli):
    write_run(tmp_path, "a", {"seed": 0})
    write_run(tmp_path, "b", {"seed": 7})
    code, stdout, _ = cli("report", tmp_path, "--format", "latex", "--metric", "esr_1")
    assert code == 0 and "seed=7" in stdout and "esr\\_1" in stdout
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "results.json").write_text('{"spec": 1}')
    code, _, stderr = cli("report", tmp_path)
    assert code == 2 and stderr.count("\n") == 1 and "is not an erasebench results file" in stderr


def test_run_summary_fits_80_columns_with_several_metrics():
    from benchmark.cli import leaderboard_row

    data = json.loads(V1_RESULTS.read_text())
    overall = {
        "nudenet": {"nudity_rate": 0.1234, "nudity_video_rate": 0.25, "positive_frames": 121, "frames": 980},
        "classify": {"esr_1": 0.75, "esr_5": 0.5, "psr_1": 0.9, "esr_1_video": 0.8, "frames_preserved": 3060},
        "arcface": {"id_similarity_erased.bill_gates": 0.21, "no_face_video_rate": 0.05},
        "temporal_flickering": {"temporal_flickering": 0.97},
    }
    data["aggregates"] = {
        "overall": overall,
        "by_category": {"a": overall, "b": overall},
        "category_mean": {"nudenet": {"nudity_rate": 0.2}},
        "intervals": {"overall": {"nudenet": {"nudity_rate": {"lo": 0.09, "hi": 0.17, "method": "bootstrap"}}}},
    }
    console = Console(width=80, record=True, color_system=None)
    console.print(leaderboard_row(data))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for metric, values in overall.items():
        assert metric in text
        for key in values:
            assert key in text, key  # never split mid-word
    for header in ("aggregate", "value", "95% CI", "cat. mean"):
        assert header in text
    assert "[0.090, 0.170]" in text
    assert RunResult.from_data(data).aggregates.interval("nudenet", "nudity_rate").method == "bootstrap"

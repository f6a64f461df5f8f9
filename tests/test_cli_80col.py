"""Issue 16, point 3 (and the output side of 2 and 6): every command's output read at COLUMNS=80.

Lines never exceed 80 columns, headers and keys are never split mid-word, paths sit whole on their own line,
eraser arguments go in a legend, and ``--help`` shows plain types, defaults and every option's help.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from test_report import write_run

ROOT = Path(__file__).resolve().parent.parent


def erasebench80(*args, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80", "HF_HUB_OFFLINE": "1", "TERM": "dumb"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [sys.executable, "-m", "benchmark.cli", *map(str, args)], capture_output=True, text=True, env=env,
        cwd=cwd or ROOT, timeout=timeout, check=False,
    )


def widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


@pytest.fixture(scope="module")
def refusal_run(tmp_path_factory):
    """The README's main command, on the first four prompts (one per shape), at 80 columns, with progress."""
    out = tmp_path_factory.mktemp("eighty") / "a folder with spaces and a rather long name to test path printing"
    proc = erasebench80("run", "--method", "refusal", "--suite", "shapes", "--limit", "4", "--eraser-arg", "k=50", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, out


def test_run_summary_fits_80_columns_with_counts_legend_and_whole_paths(refusal_run):
    proc, _ = refusal_run
    table = proc.stdout[: proc.stdout.index("results:")]
    assert widest(table) <= 80, table
    assert re.search(r"esr_1\s+│\s+\d\.\d{3} \(\d+/1\)", table), table  # a rate with its count
    assert re.search(r"psr_1\s+│\s+\d\.\d{3} \(\d+/3\)", table), table
    assert "refusal: k=50" in table and "refusal(k=50)" not in table  # arguments in the legend, not the title
    lines = proc.stdout.splitlines()
    results = lines[lines.index("results:") + 1].strip()
    assert Path(results).is_file() and results.endswith("results.json")  # whole, on its own line
    video_dirs = [line.strip() for line in lines[lines.index("videos:") + 1 :]]
    assert video_dirs and all(Path(v).is_dir() for v in video_dirs)


def test_fit_shows_a_progress_bar_and_no_library_warnings(refusal_run):
    proc, _ = refusal_run
    assert "fitting refusal" in proc.stderr and "ETA" in proc.stderr
    assert proc.stderr.count("fitting refusal ") <= 2  # one bar per fit, extended, not one per batch
    lowered = proc.stderr.lower()
    for noise in ("<unk>", "warning", "tokenizer", "futurewarning", "deprecat"):
        assert noise not in lowered, proc.stderr


def test_report_table_at_80_columns_has_whole_headers_and_a_legend(tmp_path):
    from benchmark.report import leaderboard, load_results, render_terminal

    overall = {"shapes_oracle": {"esr_1": 0.5625, "hits_1_erased": 7, "videos_erased": 16, "psr_1": 44 / 48,
                                 "hits_1_preserved": 44, "videos_preserved": 48, "preserved_shape_acc": 0.75,
                                 "motion_acc": 1.0, "colour_acc": 1.0, "shape_acc": 0.7}}
    paths = [
        write_run(tmp_path, "a", {"eraser": {"name": "none", "args": {"k": 50, "site": "video_attention"}}}, overall=overall),
        write_run(tmp_path, "b", {"seed": 3}, overall=overall),
        write_run(tmp_path, "c", {"seed": 4}, overall=overall),
        write_run(tmp_path, "d", {"seed": 5}, overall=overall),
    ]
    board = leaderboard(load_results(paths))
    console = Console(width=80, record=True, color_system=None)
    for table in render_terminal(board, width=80):
        console.print(table)
    text = console.export_text()
    assert widest(text) <= 80, text
    for column in board.columns:
        assert f"{column.metric}.{column.key}" in text  # never split mid-word
    assert "0.562 (9/16)" in text and "0.917 (44/48)" in text  # ESR as 1 - 7/16: its count is 9/16
    assert "none(k=50,site=video_attention)" in text.replace("\n", "").replace(" ", "")  # the legend
    rows = [line for line in text.splitlines() if "shapes_oracle.esr_1" in line]
    assert rows and all("site=" not in line for line in rows)


def test_report_columns_keep_one_order_and_one_number_format(tmp_path, cli):
    a = {"shapes_oracle": {"psr_1": 0.5, "esr_1": 0.25, "shape_acc": 0.125}}
    b = {"shapes_oracle": {"shape_acc": 0.125, "esr_1": 0.25, "psr_1": 0.5}}  # the same keys, another order
    write_run(tmp_path / "x", "a", overall=a)
    write_run(tmp_path / "y", "a", overall=b)
    first = cli("report", tmp_path / "x", "--format", "md")[1].splitlines()[0]
    second = cli("report", tmp_path / "y", "--format", "md")[1].splitlines()[0]
    assert first == second and first.index("esr_1") < first.index("psr_1") < first.index("shape_acc")
    body = cli("report", tmp_path / "x", "--format", "md")[1]
    assert "0.250" in body and "0.25 " not in body  # three decimals, as run prints them


def test_verify_prints_each_broken_path_whole_on_its_own_line(refusal_run, tmp_path):
    import shutil

    _, out = refusal_run
    copy = tmp_path / ("x" * 60) / "out"
    shutil.copytree(out, copy)
    video = next(copy.glob("videos/**/*.mp4"))
    video.write_bytes(video.read_bytes()[:50])
    proc = erasebench80("verify", next((copy / "runs").iterdir()))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert str(video) in lines, proc.stderr  # whole, never wrapped
    assert "3 of 4 videos OK" in proc.stdout


def test_list_metrics_details_fit_80_columns_and_document_every_key():
    proc = erasebench80("list", "metrics", "--details")
    assert proc.returncode == 0 and widest(proc.stdout) <= 80
    text = " ".join(proc.stdout.split())
    for key in ("esr_1 (higher is better)", "target_as_circle (lower is better)", "nudity_rate (lower is better)"):
        assert key in text.replace("│ ", ""), key
    proc = erasebench80("list", "erasers", "--details")
    assert proc.returncode == 0 and widest(proc.stdout) <= 80 and "arguments:" in proc.stdout


def test_help_shows_plain_types_defaults_required_and_every_help():
    proc = erasebench80("run", "--help")
    assert proc.returncode == 0 and widest(proc.stdout) <= 80
    assert "<str>" not in proc.stdout and "<int>" not in proc.stdout and "<bool>" not in proc.stdout
    assert "TEXT" in proc.stdout and "INTEGER" in proc.stdout and "FLOAT" in proc.stdout
    assert "[default: erasebench-runs]" in " ".join(re.sub(r"[│╭╮╰╯─]", " ", proc.stdout).split())
    for option in ("--height", "--width", "--guidance-scale", "--data-dir", "--yes", "--json", "--verbose"):
        line = next(line for line in proc.stdout.splitlines() if option in line)
        assert re.search(r"[A-Za-z]{3,}", line.split(option, 1)[1].replace("INTEGER", "").replace("FLOAT", "").replace("TEXT", "")), line
    proc = erasebench80("report", "--help")
    assert "[required]" in proc.stdout and "<list[str]>" not in proc.stdout


def test_run_json_prints_only_json_on_stdout(refusal_run):
    _, out = refusal_run
    proc = erasebench80("run", "--method", "refusal", "--suite", "shapes", "--limit", "4", "--eraser-arg", "k=50",
                        "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)  # nothing but the JSON
    esr = summary["aggregates"]["shapes_oracle"]["esr_1"]
    assert esr["count"][1] == 1 and esr["higher_is_better"] is True and len(esr["interval"]) == 2
    assert Path(summary["results"]).is_file() and summary["eraser_args"] == {"k": 50}


def test_messages_wrap_at_whole_words_on_an_80_column_terminal(tmp_path):
    """The settings line of a paper suite on the shapes model (about 200 characters) on a terminal: every
    line fits 80 columns, no word is split, and a path longer than a line stays whole; piped, it is one line."""
    from benchmark.cli import note

    path = "/tmp/" + "a-very-long-folder-name/" * 4 + "results.json"
    line = ("settings: suite 'safesora' (protocol 'safree', for cogvideox models) asks 49 frames, 50 steps; model "
            f"'shapes' is made for 9 frames, 32x32, 25 steps: using the model's (override with --frames) {path}")
    terminal = Console(file=(tmp_path / "tty.txt").open("w"), force_terminal=True, width=80, color_system=None)
    note(line, terminal)
    terminal.file.close()
    shown = (tmp_path / "tty.txt").read_text().splitlines()
    assert len(shown) > 1
    assert all(len(row) <= 80 for row in shown if path not in row)
    assert " ".join(row.strip() for row in shown) == line  # nothing split inside a word, nothing lost
    assert any(row.strip() == path for row in shown)
    piped = Console(file=(tmp_path / "pipe.txt").open("w"), force_terminal=False, width=80)
    note(line, piped)
    piped.file.close()
    assert (tmp_path / "pipe.txt").read_text() == line + "\n"

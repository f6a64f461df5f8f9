"""The console script turns click's own usage errors into one ``error:`` line and exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "args,needle",
    [
        (["run", "--steps", "abc"], "--steps 'abc': Input should be a valid integer"),
        (["run", "--limit=1.5"], "--limit '1.5': Input should be a valid integer"),
        (["report", "x", "--digits", "-1"], "--digits '-1': Input should be greater than or equal to 0"),
        (["report", "x", "--digits", "40"], "--digits '40': Input should be less than or equal to 12"),
        (["run", "--bogus-option"], "--bogus-option"),
        (["no-such-command"], "no-such-command"),
        (["report"], "paths"),
        (["run", "--limit"], "--limit"),
    ],
)
def test_usage_error_is_one_line(args, needle, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "benchmark.cli", *args], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "args,needle",
    [
        (["runs", "rm"], "RUN"),
        (["runs", "bogus"], "bogus"),
        (["report", "x", "--format"], "--format"),
        (["run", "--yes", "maybe"], "maybe"),
        (["list", "metrics", "--details", "--bogus"], "--bogus"),
    ],
)
def test_new_commands_usage_errors_are_one_line(args, needle, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "benchmark.cli", *args], capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={**__import__("os").environ, "COLUMNS": "80"},
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) > 10, result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())

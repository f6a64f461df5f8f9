"""Bad input: one clear line on stderr, exit code 2, nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmark.erasers import ERASERS, Eraser
from helpers import run_config


class CogOnlyEraser(Eraser):
    """Test eraser that defines edit sites for CogVideoX only (as a third-party plugin would)."""

    name = "cog-only"
    kind = "hook"
    families = frozenset({"cogvideox"})


ERASERS.register("cog-only", CogOnlyEraser, replace=True)


def files_under(path):
    return sorted(str(p) for p in path.rglob("*")) if path.exists() else []


def assert_one_line_error(result, *needles):
    code, stdout, stderr = result
    assert code == 2, (code, stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def tiny_config(tiny_model, tmp_path):
    return run_config(tmp_path, "cogvideox", tiny_model("cogvideox"))


def write_suite(tmp_path, body, rows="id,prompt\na,a church\n"):
    (tmp_path / "rows.csv").write_text(rows)
    path = tmp_path / "suite.yaml"
    path.write_text("name: s\nversion: 1\ndescription: d\nsource: {path: rows.csv}\n" + body)
    return path


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--method", "refusall"], ["unknown eraser 'refusall'", "Known:"]),
        (["--method", "none", "--suite", "exampel"], ["unknown suite 'exampel'", "Did you mean 'example'"]),
        (["--metrics", "flicker"], ["unknown metric 'flicker'"]),
        (["--model", "no-such-model-anywhere"], ["model 'no-such-model-anywhere' is neither"]),
        (["--limit", "0"], ["--limit 0", "greater than or equal to 1"]),
        (["--samples", "0"], ["--samples 0"]),
        (["--device", "tpu"], ["--device 'tpu'"]),
        (["--overwrite", "sometimes"], ["--overwrite 'sometimes'"]),
        (["--method", "cog-only"], None),
        (["--eraser-arg", "mode=shout", "--method", "negprompt"], ["eraser 'negprompt' argument 'mode'"]),
        (["--eraser-arg", "colour=red", "--method", "negprompt"], ["argument 'colour'", "Extra inputs"]),
    ],
)
def test_bad_run_arguments(args, needles, tiny_config, tmp_path, cli):
    out = tmp_path / "out"
    base = {"--method": "none", "--suite": "example"}
    for i in range(0, len(args) - 1, 2):
        base.pop(args[i], None)
    flat = [x for kv in base.items() for x in kv]
    if needles is None:  # a supported combination: runs fine
        code, _, stderr = cli("run", *flat, *args, "--config", tiny_config, "--out", out, "--limit", "1", "-q")
        assert code == 0, stderr
        return
    assert_one_line_error(cli("run", *flat, *args, "--config", tiny_config, "--out", out), *needles)
    assert not out.exists()


def test_unsupported_family(tiny_model, tmp_path, cli):
    config = run_config(tmp_path, "wan", tiny_model("wan"))
    out = tmp_path / "out"
    assert_one_line_error(
        cli("run", "--method", "cog-only", "--suite", "example", "--config", config, "--out", out),
        "eraser 'cog-only' does not support model family 'wan'",
        "cogvideox",
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "body, rows, needles",
    [
        ("columns: {prompt: text}\n", "id,prompt\na,a church\n", ["no column 'text'", "columns: id, prompt"]),
        ("columns: {prompt_id: id}\n", "id,prompt\n", ["has no prompts"]),
        ("columns: {prompt_id: id}\n", "id,prompt\n../../etc,a church\n", ["prompt id '../../etc' is not allowed"]),
        ("columns: {prompt_id: id}\n", "id,prompt\na/b,a church\n", ["prompt id 'a/b' is not allowed"]),
        ("columns: [prompt\n", "id,prompt\na,b\n", ["is not valid YAML"]),
        ("seed_policy: sometimes\n", "id,prompt\na,b\n", ["seed_policy 'sometimes' is not allowed"]),
    ],
)
def test_bad_suite_files(body, rows, needles, tiny_config, tmp_path, cli):
    suite = write_suite(tmp_path, body, rows)
    before = files_under(tmp_path)
    out = tmp_path / "out"
    assert_one_line_error(cli("run", "--method", "none", "--suite", suite, "--config", tiny_config, "--out", out), *needles)
    assert files_under(tmp_path) == before


def test_malformed_config_file(tmp_path, cli):
    config = tmp_path / "run.yaml"
    config.write_text("model: [unclosed\n")
    assert_one_line_error(cli("run", "--method", "none", "--suite", "example", "--config", config), "config file", "not valid YAML")


def test_output_folder_under_a_file(tiny_config, tmp_path, cli):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    assert_one_line_error(
        cli("run", "--method", "none", "--suite", "example", "--config", tiny_config, "--out", blocker / "out"),
        "is not a folder",
    )
    assert blocker.read_text() == "x"


def test_unwritable_output_folder(tiny_config, tmp_path, cli, monkeypatch):
    """A folder the run cannot write into is refused before anything is written. For a normal user the mode
    0o500 says so; root writes through modes (and CI runs as root), so the probe's PermissionError is also
    injected, which covers the branch whoever runs the tests."""
    import errno
    import tempfile

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    args = ("run", "--method", "none", "--suite", "example", "--config", tiny_config, "--out", locked / "out")
    if os.geteuid() != 0:
        assert_one_line_error(cli(*args), "not writable")
    real = tempfile.TemporaryFile

    def refuse_in_locked(*a, dir=None, **kw):
        if dir is not None and Path(dir) == locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(Path(dir) / "probe"))
        return real(*a, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse_in_locked)
    assert_one_line_error(cli(*args), f"output folder {str(locked / 'out')!r} is not writable (Permission denied in {str(locked)!r})")
    assert list(locked.iterdir()) == []


def test_missing_video_is_an_error_not_a_score(tiny_config, tmp_path, cli):
    args = ("run", "--method", "none", "--suite", "example", "--limit", "2", "--config", tiny_config, "--out", tmp_path, "-q")
    assert cli(*args)[0] == 0
    for video in tmp_path.glob("videos/**/*.mp4"):
        video.unlink()
    assert_one_line_error(cli(*args, "--overwrite", "only-cache"), "not in the cache")


def test_report_and_verify_bad_paths(tmp_path, cli):
    assert_one_line_error(cli("report", tmp_path / "nothing"), "neither a results.json")
    assert_one_line_error(cli("verify", tmp_path), "not a run folder")
    (tmp_path / "runs").mkdir()
    assert_one_line_error(cli("report", tmp_path, "--format", "pdf"), "--format 'pdf' is not allowed")

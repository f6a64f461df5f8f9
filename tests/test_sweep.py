"""`erasebench sweep`: a grid of runs through submitit's local executor on the shapes model, a finished cell
never run again, one leaderboard over every cell, and a bad grid as one line naming the bad key."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

GRID = {"name": "tiny", "methods": ["none", {"name": "negprompt"}], "suites": ["shapes"], "run": {"limit": 4}, "slurm": {"time": 20}}


def write_grid(tmp_path, **changes):
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({**GRID, **changes}))
    return path


def test_sweep_submitit_local_then_cached(cli, tmp_path):
    pytest.importorskip("submitit")
    grid, out = write_grid(tmp_path), tmp_path / "runs"
    code, stdout, stderr = cli("sweep", grid, "--out", out, "--executor", "submitit-local")
    assert code == 0, stderr
    status = json.loads((out / "sweeps" / "tiny" / "sweep.json").read_text())
    assert [c["status"] for c in status["cells"]] == ["done", "done"]
    assert all(c["job_id"] for c in status["cells"])
    # one cell at a time on this machine (parallel defaults to 1 under submitit-local): each job ends before the next starts
    events = [line.split()[0] for line in stderr.splitlines() if line.startswith(("submitted", "done"))]
    assert events == ["submitted", "done", "submitted", "done"], stderr
    assert list((out / "sweeps" / "tiny" / "jobs").glob("*_0_log.err"))  # submitit ran each cell as a job
    run_names = [c["run_name"] for c in status["cells"]]
    for name in run_names:
        assert json.loads((out / "runs" / name / "results.json").read_text())["run_name"] == name
    rows = [line for line in stdout.splitlines() if line.startswith("| ") and "[shapes]" in line]
    assert len(rows) == 2 and rows[0].startswith("| negprompt") and rows[1].startswith("| none")
    assert "shapes/shapes_oracle.esr_1" in stdout
    assert (out / "sweeps" / "tiny" / "leaderboard.md").read_text().strip() == stdout.strip()
    videos = sorted(p.stat().st_mtime_ns for p in (out / "videos").rglob("*.mkv"))

    # the same grid again: both cells finished, nothing runs, the same leaderboard
    code, again, stderr = cli("sweep", grid, "--out", out)
    assert code == 0, stderr
    assert stderr.count("cached") == 2 and "0 to run" in stderr
    assert again == stdout
    assert sorted(p.stat().st_mtime_ns for p in (out / "videos").rglob("*.mkv")) == videos
    status = json.loads((out / "sweeps" / "tiny" / "sweep.json").read_text())
    assert [c["status"] for c in status["cells"]] == ["cached", "cached"]

    # --format table (the default on a terminal): 80-column tables, runs lettered in a legend, the md file named
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark.cli", "sweep", str(grid), "--out", str(out), "--format", "table"],
        capture_output=True, text=True, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-2:] == ["leaderboard:", f"  {out / 'sweeps' / 'tiny' / 'leaderboard.md'}"]
    assert max(len(line) for line in lines[:-1]) <= 80, proc.stdout
    assert "A: negprompt [shapes]" in proc.stdout and "B: none [shapes]" in proc.stdout
    assert "shapes_oracle.esr_1" in proc.stdout and "|" not in proc.stdout
    assert (out / "sweeps" / "tiny" / "leaderboard.md").read_text().strip() == stdout.strip()


def test_grid_axes_expand(tmp_path):
    from benchmark.sweep import expand, load_grid

    grid = load_grid(write_grid(
        tmp_path, methods=["none", {"name": "negprompt", "grid": {"negative_prompt": ["a", "b"]}}],
        concepts=[None, "circle", ["cross", "square"]],
    ))
    cells = expand(grid)
    assert len(cells) == 3 * 3
    assert {c.spec.eraser.name for c in cells} == {"none", "negprompt"}
    assert {c.spec.eraser.args.get("negative_prompt") for c in cells} == {None, "a", "b"}
    assert {c.spec.concepts for c in cells} == {(), ("circle",), ("cross", "square")}
    assert all(c.spec.limit == 4 and c.spec.model == "shapes" for c in cells)


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"methds": ["none"]}, "unknown key 'methds'"),
        ({"methods": []}, "methods"),
        ({"executor": "k8s"}, "executor 'k8s'"),
        ({"slurm": {"partiton": "gpu"}}, "unknown key 'slurm.partiton'"),
        ({"slurm": {"tasks_per_node": 0}}, "slurm.tasks_per_node 0"),
        ({"methods": [{"name": "none", "agrs": {}}]}, "unknown key 'methods.0.agrs'"),
        ({"methods": [{"args": {}}]}, "the key 'methods.0.name' is missing"),
        ({"run": {"suite": "shapes"}}, "run.suite is set by the grid's axes"),
        ({"methods": ["no-such-eraser"]}, "grid cell method=no-such-eraser suite=shapes"),
        ({"run": {"limit": 0}}, "grid cell method=none suite=shapes: --limit 0"),
    ],
)
def test_bad_grid_is_one_line(changes, needle, cli, tmp_path):
    out = tmp_path / "runs"
    code, stdout, stderr = cli("sweep", write_grid(tmp_path, **changes), "--out", out)
    assert code == 2, stderr
    assert stderr.startswith("error: ") and stderr.count("\n") == 1 and needle in stderr, stderr
    assert not out.exists()


def test_a_grid_without_suites_names_the_missing_key(cli, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"methods": ["none"]}))
    code, _, stderr = cli("sweep", grid, "--out", tmp_path / "runs")
    assert code == 2 and stderr.count("\n") == 1
    assert "the key 'suites' is missing (a grid needs methods and suites)" in stderr, stderr


def test_bad_executor_option(cli, tmp_path):
    code, _, stderr = cli("sweep", write_grid(tmp_path), "--out", tmp_path / "runs", "--executor", "ray")
    assert code == 2 and "--executor 'ray' is not allowed" in stderr


@pytest.mark.slow
def test_a_cell_with_two_tasks_is_a_distributed_run(cli, tmp_path):
    """``slurm.tasks_per_node: 2``: submitit starts two tasks of one job, each gets torchrun's environment and
    the runner shards the cell between them (rank 1 returns no results, rank 0 writes them)."""
    pytest.importorskip("submitit")
    grid = write_grid(tmp_path, methods=["none"], slurm={"time": 20, "tasks_per_node": 2})
    out = tmp_path / "runs"
    code, stdout, stderr = cli("sweep", grid, "--out", out, "--executor", "submitit-local")
    assert code == 0, stderr
    jobs = out / "sweeps" / "tiny" / "jobs"
    logs = {p.name: p.read_text() for p in jobs.glob("*_log.out")}
    assert len(logs) == 2 and any("global_rank=1(2)" in text for text in logs.values())
    import pickle

    returned = {p.name.split("_")[1]: pickle.loads(p.read_bytes()) for p in jobs.glob("*_result.pkl")}
    # rank 0 wrote the results; rank 1 was a non-main process of the same distributed run
    assert returned["0"][0] == "success" and returned["0"][1].endswith("results.json")
    assert returned["1"] == ("success", None)
    status = json.loads((out / "sweeps" / "tiny" / "sweep.json").read_text())
    assert [c["status"] for c in status["cells"]] == ["done"]
    assert "| none [shapes]" in stdout


def test_slurm_cells_are_checked_without_a_local_gpu(tmp_path, monkeypatch):
    """A sweep submitted from a login node: cuda cells are validated as CPU runs, named as the cuda runs."""
    import torch

    from benchmark.runner import plan_run
    from benchmark.specs import MemoryOptions
    from benchmark.sweep import Sweep, load_grid

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    grid = load_grid(write_grid(tmp_path, methods=["none"], run={"limit": 4, "device": "cuda", "memory": {"offload": "model"}}))
    sweep = Sweep(grid, tmp_path / "runs", "slurm", log=lambda s: None)
    (state,) = sweep.states
    assert state.cell.spec.device == "cuda" and state.cell.spec.memory.offload == "model"
    cpu_name = plan_run(state.cell.spec.model_copy(update={"device": "cpu", "memory": MemoryOptions()}), tmp_path).run_name
    assert state.run_dir.name != cpu_name  # the real (cuda, offload) spec names the run
    with pytest.raises(Exception, match="needs --device cuda|no usable CUDA GPU"):
        Sweep(grid, tmp_path / "runs", "local", log=lambda s: None)  # run here: checked as it will run

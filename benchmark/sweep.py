"""``erasebench sweep grid.yaml``: every cell of methods x suites x concepts x models x eraser arguments,
run locally one after another or each as a job through submitit (SLURM, or submitit's local executor),
sharing one output folder, then one leaderboard over all cells (docs/sweeps.md).

    cells = expand(load_grid(path))            # one RunSpec per cell, each validated by plan_run
    sweep = Sweep(grid, out, executor)
    sweep.run()                                # skips finished cells, runs the rest, writes the leaderboard

A cell is finished when ``runs/<run name>/results.json`` holds a valid results file of that run name; it is
then never run again. A cell with ``slurm.tasks_per_node > 1`` is a distributed run: each task gets torchrun's
environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``PORT``) from submitit and the runner
shards it as under torchrun.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import Field, ValidationError, field_validator

from .errors import ErasebenchError
from .specs import Frozen, RunSpec, check_safe_id, short_repr

Executor = Literal["local", "slurm", "submitit-local"]
EXECUTORS: tuple[str, ...] = ("local", "slurm", "submitit-local")


class MethodEntry(Frozen):
    """One eraser of the grid: fixed ``args`` plus ``grid``, argument -> values, expanded as a product."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            if not values:
                raise ValueError(f"grid argument {key!r} has no values")
        return v

    def variants(self) -> list[dict[str, Any]]:
        keys = list(self.grid)
        return [{**self.args, **dict(zip(keys, combo))} for combo in itertools.product(*(self.grid[k] for k in keys))]


class SlurmOptions(Frozen):
    """submitit's executor parameters for each cell (``time`` in minutes; ``tasks_per_node > 1``: a torchrun-like
    distributed cell). ``additional``: more ``#SBATCH`` keys, passed as ``slurm_additional_parameters``."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    nodes: int = Field(default=1, ge=1)
    gpus_per_node: int = Field(default=1, ge=0)
    tasks_per_node: int = Field(default=1, ge=1)
    cpus_per_task: int | None = Field(default=None, ge=1)
    mem_gb: int | None = Field(default=None, ge=1)
    time: int = Field(default=240, ge=1)
    additional: dict[str, Any] = Field(default_factory=dict)

    def parameters(self, executor: str, uses_gpu: bool) -> dict[str, Any]:
        """``AutoExecutor.update_parameters`` keywords; the local executor gets GPUs only for a cuda run."""
        params: dict[str, Any] = {"timeout_min": self.time, "tasks_per_node": self.tasks_per_node}
        if executor == "slurm":
            params.update(nodes=self.nodes, gpus_per_node=self.gpus_per_node)
            for key in ("partition", "account", "qos", "constraint"):
                if getattr(self, key) is not None:
                    params[f"slurm_{key}"] = getattr(self, key)
            if self.cpus_per_task is not None:
                params["cpus_per_task"] = self.cpus_per_task
            if self.mem_gb is not None:
                params["mem_gb"] = self.mem_gb
            if self.additional:
                params["slurm_additional_parameters"] = dict(self.additional)
        elif uses_gpu:
            params["gpus_per_node"] = self.gpus_per_node
        return params


#: the leaderboard file's suffix per ``--format``
LEADERBOARD_SUFFIX = {"md": "md", "csv": "csv", "latex": "tex"}


class Grid(Frozen):
    """A grid file. ``run``: the settings every cell shares (any ``erasebench run`` config key: limit, samples,
    seed, device, dtype, metrics, generation, memory, ...). ``concepts`` entries: a name, a list of names
    (erased together) or null (the suite's); ``models`` entries: a model or null (the suite's default)."""

    name: str = "sweep"
    methods: list[str | MethodEntry] = Field(min_length=1)
    suites: list[str] = Field(min_length=1)
    concepts: list[str | list[str] | None] = Field(default_factory=lambda: [None], min_length=1)
    models: list[str | None] = Field(default_factory=lambda: [None], min_length=1)
    run: dict[str, Any] = Field(default_factory=dict)
    executor: Executor = "local"
    out: str | None = None
    slurm: SlurmOptions = Field(default_factory=SlurmOptions)
    # cells running at once under submitit (None: submitit-local 1, since a cell already uses every core of
    # this machine; slurm as many as the queue allows)
    parallel: int | None = Field(default=None, ge=1)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_safe_id(v, "grid name")

    @field_validator("run")
    @classmethod
    def _run(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in ("method", "eraser", "eraser_args", "suite", "concepts", "model"):
            if key in v:
                raise ValueError(f"run.{key} is set by the grid's axes (methods, suites, concepts, models), not by run")
        return v

    def method_entries(self) -> list[MethodEntry]:
        return [MethodEntry(name=m) if isinstance(m, str) else m for m in self.methods]


def load_grid(path: Path) -> Grid:
    """The grid file as a ``Grid``, or one ``ErasebenchError`` naming the bad key."""
    from .suites import read_yaml

    data = read_yaml(Path(path), "grid file")
    where = f"grid file {str(path)!r}"
    if not isinstance(data, dict):
        raise ErasebenchError(f"{where}: {short_repr(data)} is not a mapping of grid settings")
    data = {"name": Path(path).stem, **data}
    try:
        return Grid.model_validate(data)
    except ValidationError as exc:
        err = max(exc.errors(), key=lambda e: len(e["loc"]))  # in a union, the branch that got furthest
        # drop pydantic's union-branch names (``str``, ``MethodEntry``, ``list[str]``) from the key path
        loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and (p[:1].isupper() or "[" in p or p in {"str", "none"})))
        if err["type"] == "extra_forbidden":
            raise ErasebenchError(f"{where}: unknown key {loc!r}") from None
        if err["type"] == "missing":
            needs = " (a grid needs methods and suites)" if "." not in loc else ""
            raise ErasebenchError(f"{where}: the key {loc!r} is missing{needs}") from None
        raise ErasebenchError(f"{where}: {loc or '(top level)'} {short_repr(err.get('input'))}: {err['msg']}") from None


@dataclass(frozen=True)
class Cell:
    """One run of the grid: its spec and a label naming its place on each axis."""

    spec: RunSpec
    label: str


def expand(grid: Grid) -> list[Cell]:
    """Every cell, methods outermost, each spec built as ``erasebench run`` builds one (one line per bad cell)."""
    from .cli import build_spec

    cells = []
    for method, suite, concepts, model in itertools.product(grid.method_entries(), grid.suites, grid.concepts, grid.models):
        for args in method.variants():
            label = " ".join(
                part for part in (
                    f"method={method.name}" + (f"({','.join(f'{k}={v}' for k, v in sorted(args.items()))})" if args else ""),
                    f"suite={suite}",
                    f"concepts={concepts if isinstance(concepts, str) else '+'.join(concepts)}" if concepts else "",
                    f"model={model}" if model else "",
                ) if part
            )
            settings = {
                **grid.run,
                "method": method.name,
                "eraser_args": args,
                "suite": suite,
                "concepts": tuple([concepts] if isinstance(concepts, str) else concepts) if concepts else None,
                "model": model,
            }
            try:
                spec = build_spec(None, settings)
            except ErasebenchError as exc:
                raise ErasebenchError(f"grid cell {label}: {exc}") from None
            cells.append(Cell(spec, label))
    return cells


def finished_results(run_dir: Path) -> Path | None:
    """``run_dir/results.json`` when it is a valid results file of this run (same run name), else None."""
    from .results import RunResult

    path = run_dir / "results.json"
    if not path.is_file():
        return None
    try:
        result = RunResult.from_disk(path)
    except ErasebenchError:
        return None
    return path if result.run_name == run_dir.name else None


def run_cell(spec_data: dict[str, Any], out: str) -> str | None:
    """Run one cell; executed in the sweep's process (local) or in a submitit job (each of its tasks).

    A job with several tasks gets torchrun's environment from submitit first, so the runner shards it."""
    if "SUBMITIT_EXECUTOR" in os.environ or "SLURM_JOB_ID" in os.environ:
        import submitit

        try:
            tasks = submitit.JobEnvironment().num_tasks
        except RuntimeError:  # not inside a submitit job
            tasks = 1
        if tasks > 1 and "WORLD_SIZE" not in os.environ:
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    from .runner import Runner, plan_run

    plan = plan_run(RunSpec.model_validate(spec_data), Path(out))
    results = Runner(plan).run()
    return str(plan.run_dir / "results.json") if results is not None else None


def job_error(exc: BaseException) -> str:
    """The last line of the traceback submitit's ``FailedJobError`` carries (the job's own exception)."""
    text = str(exc).split("You can check full logs")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip() and not set(line.strip()) <= {"-"}]
    return lines[-1] if lines else type(exc).__name__


@dataclass
class CellState:
    cell: Cell
    run_dir: Path
    status: str = "pending"  # pending | cached | done | failed
    message: str = ""
    job_id: str = ""


class Sweep:
    """Plans every cell (validating all before any runs), skips finished ones, runs the rest with the executor,
    then writes ``sweeps/<name>/sweep.json`` (each cell's state) and the leaderboard over every finished cell."""

    def __init__(self, grid: Grid, out: Path, executor: str | None = None, log: Callable[[str], None] = print):
        self.grid = grid
        self.out = Path(out)
        self.executor = executor or grid.executor
        if self.executor not in EXECUTORS:
            raise ErasebenchError(f"--executor {self.executor!r} is not allowed: use {', '.join(EXECUTORS)}")
        self.log = log
        from .runner import plan_run

        self.states = []
        for cell in expand(grid):
            try:
                plan = plan_run(self.checkable(cell.spec), self.out)
            except ErasebenchError as exc:
                raise ErasebenchError(f"grid cell {cell.label}: {exc}") from None
            self.states.append(CellState(cell, dataclasses.replace(plan, spec=cell.spec).run_dir))
        self.folder = self.out / "sweeps" / grid.name

    def checkable(self, spec: RunSpec) -> RunSpec:
        """The spec to validate here. Jobs run elsewhere (SLURM, from a login node with no GPU) are checked with
        ``device: cpu`` and no offload when this machine has no GPU; the run name is still the real spec's."""
        if self.executor == "local" or spec.device != "cuda":
            return spec
        import torch

        if torch.cuda.is_available():
            return spec
        return spec.model_copy(update={"device": "cpu", "memory": spec.memory.model_copy(update={"offload": None})})

    def run(self) -> list[CellState]:
        todo = []
        for state in self.states:
            if finished_results(state.run_dir):
                state.status = "cached"
                self.log(f"cached   {state.cell.label}  ({state.run_dir.name})")
            else:
                todo.append(state)
        self.log(f"sweep {self.grid.name}: {len(self.states)} cells, {len(self.states) - len(todo)} finished, "
                 f"{len(todo)} to run ({self.executor})")
        if self.executor == "local":
            for state in todo:
                self.log(f"running  {state.cell.label}")
                try:
                    run_cell(state.cell.spec.model_dump(mode="json"), str(self.out))
                    state.status = "done"
                except ErasebenchError as exc:
                    state.status, state.message = "failed", str(exc)
                self.log(f"{state.status:8s} {state.cell.label}" + (f": {state.message}" if state.message else ""))
        elif todo:
            self.submit(todo)
        self.write_status()
        return self.states

    def submit(self, todo: list[CellState]) -> None:
        import submitit

        cluster = "slurm" if self.executor == "slurm" else "local"
        executor = submitit.AutoExecutor(folder=self.folder / "jobs", cluster=cluster)
        uses_gpu = any(s.cell.spec.device == "cuda" for s in todo)
        executor.update_parameters(name=f"erasebench-{self.grid.name}", **self.grid.slurm.parameters(self.executor, uses_gpu))
        parallel = self.grid.parallel or (1 if self.executor == "submitit-local" else len(todo))
        waiting, running = list(todo), []
        while waiting or running:
            while waiting and len(running) < parallel:
                state = waiting.pop(0)
                job = executor.submit(run_cell, state.cell.spec.model_dump(mode="json"), str(self.out.resolve()))
                state.job_id = str(job.job_id)
                self.log(f"submitted {state.cell.label}  (job {job.job_id})")
                running.append((state, job))
            finished = [(state, job) for state, job in running if job.done()]  # submitit rate-limits SLURM's queries
            if not finished:
                time.sleep(0.5)
                continue
            for state, job in finished:
                running.remove((state, job))
                self.collect(state, job)

    def collect(self, state: CellState, job: Any) -> None:
        """A finished (or awaited) job's outcome into its cell's state."""
        try:
            job.results()  # every task's; waits for the job
            state.status = "done" if finished_results(state.run_dir) else "failed"
            state.message = "" if state.status == "done" else "the job ended without a results file"
        except Exception as exc:  # noqa: BLE001 - a failed job: its last error line, the sweep goes on
            state.status = "failed"
            state.message = f"{job_error(exc)} (log: {job.paths.stderr})"
        self.log(f"{state.status:8s} {state.cell.label}" + (f": {state.message}" if state.message else ""))

    def write_status(self) -> None:
        from .store import atomic_write_text

        self.folder.mkdir(parents=True, exist_ok=True)
        data = {
            "grid": self.grid.model_dump(mode="json"),
            "executor": self.executor,
            "cells": [
                {"label": s.cell.label, "run_name": s.run_dir.name, "status": s.status, "message": s.message, "job_id": s.job_id}
                for s in self.states
            ],
        }
        atomic_write_text(self.folder / "sweep.json", json.dumps(data, indent=2) + "\n")

    def results_files(self) -> list[Path]:
        return [p for p in (finished_results(s.run_dir) for s in self.states) if p is not None]

    def board(self) -> Any:
        """``erasebench report``'s leaderboard (``report.Leaderboard``) over every finished cell."""
        from .report import leaderboard, load_results

        files = self.results_files()
        if not files:
            raise ErasebenchError(f"sweep {self.grid.name!r}: no cell finished, so there is no leaderboard")
        return leaderboard(load_results(files))

    def leaderboard_file(self, fmt: str = "md") -> Path:
        return self.folder / f"leaderboard.{LEADERBOARD_SUFFIX[fmt]}"

    def leaderboard(self, fmt: str = "md", digits: int = 3, intervals: bool = True, board: Any = None) -> str:
        """The leaderboard (``board``, default ``board()``) rendered as ``fmt`` (md, csv, latex), written to
        ``sweeps/<name>/leaderboard.<fmt>``."""
        from .report import render
        from .store import atomic_write_text

        text = render(board if board is not None else self.board(), fmt, digits, intervals)
        atomic_write_text(self.leaderboard_file(fmt), text + "\n")
        return text

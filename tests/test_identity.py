"""benchmark/identity.py: every RunSpec field classified, keys pinned, keys from files equal the loaded pipeline's,
one device and a share of the cores per rank."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmark import identity
from benchmark.runner import device_for_rank, dry_run, plan_run, threads_for_process
from benchmark.specs import PluginSpec, RunSpec


def plan_for(out: Path, **fields):
    base = {"model": "shapes", "eraser": PluginSpec(name="negprompt"), "suite": "shapes", "limit": 4}
    return plan_run(RunSpec(**{**base, **fields}), out)


def first_key(plan) -> str:
    return identity.run_keys(plan).key(plan.items[0]).relpath()


def test_every_runspec_field_is_classified():
    fields = set(RunSpec.model_fields)
    classified = set(identity.SPEC_FIELDS)
    assert not fields - classified, (
        f"RunSpec fields {sorted(fields - classified)} are not classified in benchmark/identity.py SPEC_FIELDS: "
        "say whether each changes the videos (in the video key) or not, and why"
    )
    assert not classified - fields, f"SPEC_FIELDS lists fields RunSpec no longer has: {sorted(classified - fields)}"
    assert identity.RUN_NAME_EXCLUDED <= fields
    for name, (in_key, why) in identity.SPEC_FIELDS.items():
        assert isinstance(in_key, bool) and why.strip(), name


def copy_of_shapes_model(tmp_path: Path) -> str:
    from benchmark.models.base import SHAPES_MODEL_DIR

    folder = tmp_path / "shapes-copy"
    shutil.copytree(SHAPES_MODEL_DIR, folder)
    training = folder / "TRAINING.json"
    training.write_text(json.dumps({**json.loads(training.read_text()), "note": "a different file"}))
    return str(folder)


# field -> (base overrides, variant overrides); fields that cannot vary on this machine are checked below
VARIANTS = {
    "model": ({}, {"model": "COPY"}),
    "eraser": ({}, {"eraser": PluginSpec(name="negprompt", args={"text": "a cross"})}),
    "concepts": ({}, {"concepts": ("square",)}),
    "erase_mode": ({"concepts": ("cross", "square"), "erase_mode": "joint"}, {"concepts": ("cross", "square"), "erase_mode": "per-category"}),
    "suite": ({}, {"suite": "shapes-paraphrase"}),
    "seed": ({}, {"seed": 3}),
    "seed_policy": ({}, {"seed_policy": "fixed:7"}),
    "dtype": ({}, {"dtype": "bfloat16"}),
    "generation": ({}, {"generation": {"num_inference_steps": 3}}),
    "video_codec": ({}, {"video_codec": "h264"}),
    "memory": ({}, {"memory": {"vae_tiling": True}}),
    "metrics": ({}, {"metrics": (PluginSpec(name="temporal_flickering"),)}),
    "samples": ({}, {"samples": 2}),
    "limit": ({}, {"limit": 8}),
    "batch_size": ({}, {"batch_size": 4}),
    "data_dir": ({}, {"data_dir": "DATA"}),
    "overwrite": ({}, {"overwrite": "always"}),
}
#: in the key, but not variable here: a hub revision (a local folder has none) and cuda (no GPU); see below
NOT_VARIED = {"model_revision", "device"}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_field_changes_the_video_key_exactly_when_it_is_in_the_key(name, tmp_path):
    base, variant = VARIANTS[name]
    variant = {k: (copy_of_shapes_model(tmp_path) if v == "COPY" else str(tmp_path) if v == "DATA" else v) for k, v in variant.items()}
    before = first_key(plan_for(tmp_path / "out", **base))
    after = first_key(plan_for(tmp_path / "out", **variant))
    in_key = identity.SPEC_FIELDS[name][0]
    assert (before != after) == in_key, f"{name}: in the key = {in_key}, but {before} -> {after}"


def test_fields_not_varied_here_still_enter_the_key():
    assert set(identity.SPEC_FIELDS) == set(VARIANTS) | NOT_VARIED
    args = dict(call={"num_frames": 9}, fps=8, scheduler={"class": "X"}, seed_policy="derived", seed=0, dtype="float32", codec="lossless")
    assert identity.generation_key(device="cpu", **args) != identity.generation_key(device="cuda", **args)
    # a hub revision selects other files, and model_fp hashes the files
    assert identity.model_key({"a.safetensors": "1" * 64}) != identity.model_key({"a.safetensors": "2" * 64})


def test_version_1_keys_are_pinned(tmp_path):
    """The keys of the shipped shapes model's main job, as the runner computed them before benchmark/identity.py
    existed: changing a formula must bump identity.VERSION (and this pin)."""
    assert identity.VERSION == 1
    plan = plan_run(RunSpec(model="shapes", eraser=PluginSpec(name="refusal"), suite="shapes"), tmp_path / "out")
    keys = identity.run_keys(plan)
    assert plan.run_name == "shapes__refusal__shapes__4f280109"
    assert keys.group(plan.eraser) == "videos/shapes-42e674d4cb28/refusal-213add5b96ce/shapes-v1/9378704049"
    assert keys.artifact_rel(plan.eraser) == "artifacts/42e674d4cb28/refusal-213add5b96ce-928a9bec"
    assert identity.score_rel("shapes_oracle", "abc", "ff" + "0" * 62) == f"scores/shapes_oracle-abc/ff/ff{'0' * 62}.json"


def loaded_settings(plan):
    from benchmark.models.loading import load_pipeline, scheduler_record, set_scheduler

    keys = identity.run_keys(plan)
    pipe = load_pipeline(keys.folder, plan.spec.dtype, "cpu")
    set_scheduler(pipe, plan.generation.scheduler)
    call = {**plan.family.call_defaults(pipe), **plan.generation.pipeline_kwargs()}
    return keys, json.loads(json.dumps(call, default=str)), scheduler_record(pipe)


@pytest.mark.parametrize("generation", [{}, {"scheduler": {"name": "DDIMScheduler", "config": {"timestep_spacing": "trailing"}}}])
def test_keys_from_files_equal_the_loaded_pipeline(generation, tmp_path, monkeypatch):
    monkeypatch.setenv("ERASEBENCH_CACHE", str(tmp_path / "cache"))  # the scheduler record computed, not read back
    plan = plan_for(tmp_path / "out", generation=generation)
    keys, call, scheduler = loaded_settings(plan)
    assert keys.call == call
    assert keys.scheduler == scheduler
    assert identity.run_keys(plan).scheduler == scheduler  # read back from the cache


@pytest.mark.parametrize("family", ["cogvideox", "zeroscope"])
def test_keys_from_files_equal_the_loaded_pipeline_of_each_family(family, tiny_model, tmp_path):
    from helpers import run_config

    import yaml

    config = yaml.safe_load(run_config(tmp_path, family, tiny_model(family)).read_text())
    spec = RunSpec(model=config["model"], eraser=PluginSpec(name="none"), suite="example", generation=config["generation"], limit=1)
    plan = plan_run(spec, tmp_path / "out")
    keys, call, scheduler = loaded_settings(plan)
    assert (keys.call, keys.scheduler) == (call, scheduler)


def test_each_rank_chooses_its_own_gpu():
    torchrun = {"WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    chosen = [device_for_rank("cuda", {**torchrun, "RANK": str(r), "LOCAL_RANK": str(r % 2)}) for r in range(4)]
    assert chosen == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]  # two nodes of two GPUs
    assert device_for_rank("cuda", {}) == "cuda"  # one process: unchanged
    assert device_for_rank("cpu", {**torchrun, "RANK": "1", "LOCAL_RANK": "1"}) == "cpu"


def test_onnx_metrics_use_the_rank_gpu():
    """NudeNet's and ArcFace's onnxruntime sessions get this rank's GPU (``cuda:N`` -> ``device_id`` N); the
    settings record the names only, the same on every rank."""
    from benchmark.metrics.base import MetricContext, provider_names

    cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    rank1 = MetricContext(suite="x", device="cuda:1")
    assert rank1.onnx_providers(cuda) == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    assert MetricContext(suite="x", device="cuda").onnx_providers(cuda)[0] == ("CUDAExecutionProvider", {"device_id": 0})
    assert rank1.onnx_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]  # onnxruntime without CUDA
    assert MetricContext(suite="x", device="cpu").onnx_providers(cuda) == ["CPUExecutionProvider"]
    assert provider_names(rank1.onnx_providers(cuda)) == cuda

    pytest.importorskip("onnxruntime")
    from benchmark.metrics.arcface import ArcFaceSimilarity
    from benchmark.metrics.nudenet import NudeNetRate

    for cls in (NudeNetRate, ArcFaceSimilarity):
        metric = cls.__new__(cls)
        metric.context = rank1
        assert metric.providers() == provider_names(rank1.onnx_providers())


def test_threads_split_the_cores_between_local_processes():
    torchrun = {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}
    assert threads_for_process(torchrun, cpus=2) == 1
    assert threads_for_process(torchrun, cpus=16) == 8
    assert threads_for_process({**torchrun, "OMP_NUM_THREADS": "3"}, cpus=16) is None  # the user's (or torchrun's)
    assert threads_for_process({**torchrun, "ERASEBENCH_THREADS": "5"}, cpus=16) == 5
    assert threads_for_process({}, cpus=16) is None  # one process: torch's default


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not allowed: use an integer >= 1"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE='0' is not allowed"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2 is not allowed with WORLD_SIZE=2: use 0 to 1"),
        ({"WORLD_SIZE": "2", "RANK": "-1"}, "RANK='-1' is not allowed: use an integer >= 0"),
        ({"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "3"}, "LOCAL_WORLD_SIZE=3 is not allowed with WORLD_SIZE=2"),
        ({"WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "2"}, "LOCAL_RANK=2 is not allowed with LOCAL_WORLD_SIZE=2"),
        ({"ERASEBENCH_THREADS": "0"}, "ERASEBENCH_THREADS='0' is not allowed: use an integer >= 1 (torch threads"),
        ({"WORLD_SIZE": "2", "ERASEBENCH_DIST_TIMEOUT": "nan"}, "ERASEBENCH_DIST_TIMEOUT 'nan' is not allowed"),
    ],
)
def test_bad_launcher_variables_are_one_line_before_anything_is_written(cli, tmp_path, monkeypatch, env, message):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "ERASEBENCH_THREADS", "ERASEBENCH_DIST_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for extra in ((), ("--dry-run",)):
        code, out, err = cli("run", "--method", "none", "--suite", "shapes", "--limit", "2", "--out", tmp_path / "out", *extra)
        assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: ")
        assert message in err and "Traceback" not in err
        assert not (tmp_path / "out").exists()


def test_dry_run_writes_nothing_and_loads_no_model(tmp_path, monkeypatch):
    import benchmark.runner as runner

    monkeypatch.setattr(runner, "load_pipeline", lambda *a, **k: pytest.fail("a dry run loaded the pipeline"))
    out = tmp_path / "out"
    plan = plan_run(RunSpec(model="shapes", eraser=PluginSpec(name="refusal"), suite="shapes", limit=4), out)
    report = dry_run(plan)
    assert not out.exists()
    assert (report.videos_total, report.videos_cached, report.videos_to_make) == (4, 0, 4)
    assert (report.scores_total, report.scores_cached) == (4, 0)
    assert [g.fit_cached for g in report.groups] == [False] and report.fits_to_make == 1
    assert report.estimate_seconds > 0
    assert report.to_dict()["videos_to_make"] == 4
    assert all(len(line) <= 80 for line in report.lines() if not line.startswith(("run:", "results:", "  fit:")))


def test_the_main_process_fits_with_the_waiting_ranks_threads():
    import os

    import torch

    from benchmark.runner import fit_threads

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with fit_threads(2, {"LOCAL_WORLD_SIZE": "2"}):
            assert torch.get_num_threads() == min(cpus, 2)
        assert torch.get_num_threads() == 1
        with fit_threads(1):  # one process: unchanged
            assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_plan_checks_generation_settings_once_per_input(tmp_path, monkeypatch):
    import benchmark.runner as runner
    from benchmark.errors import ErasebenchError

    monkeypatch.setenv("ERASEBENCH_CACHE", str(tmp_path / "cache"))
    calls = []
    real = runner.pipeline_spec
    monkeypatch.setattr(runner, "pipeline_spec", lambda source: calls.append(source) or real(source))
    plan_for(tmp_path / "out")
    plan_for(tmp_path / "out")
    assert len(calls) == 1  # the second plan found the same inputs checked
    plan_for(tmp_path / "out", generation={"num_inference_steps": 3})
    assert len(calls) == 2
    for _ in range(2):  # settings that fail are never remembered
        with pytest.raises(ErasebenchError, match="height"):
            plan_for(tmp_path / "out", generation={"height": 30})
    assert len(calls) == 4


def test_collectives_wait_for_a_long_fit(monkeypatch):
    """Under a launcher the process group waits 12 h by default (a rank at the barrier while the main process
    trains t2vunlearning), ERASEBENCH_DIST_TIMEOUT minutes when set; a bad value is one clear error."""
    from datetime import timedelta

    import accelerate

    from benchmark.errors import ErasebenchError
    from benchmark.runner import Distributed, dist_timeout

    made = []
    monkeypatch.setattr(accelerate, "PartialState", lambda **kwargs: made.append(kwargs))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("ERASEBENCH_DIST_TIMEOUT", raising=False)
    Distributed()
    assert made == [{"cpu": True, "timeout": timedelta(hours=12)}]
    monkeypatch.setenv("ERASEBENCH_DIST_TIMEOUT", "90")
    Distributed()
    assert made[-1]["timeout"] == timedelta(minutes=90)
    for bad in ("0", "soon"):
        with pytest.raises(ErasebenchError, match=f"ERASEBENCH_DIST_TIMEOUT '{bad}' is not allowed"):
            dist_timeout({"ERASEBENCH_DIST_TIMEOUT": bad})


def test_fit_batches_give_every_rank_the_same_work():
    """One process: runs of ``size``. Two ranks: equal batches, dealt in turn, together every index once."""
    from benchmark.erasers import RunContext

    assert RunContext().fit_batches(20, 8) == ([list(range(0, 8)), list(range(8, 16)), list(range(16, 20))], 3)
    ranks = [RunContext(rank=r, world_size=2).fit_batches(24, 8, dealt=1) for r in (0, 1)]
    (mine0, dealt), (mine1, _) = ranks
    assert dealt == 4 and [len(b) for b in mine0] == [len(b) for b in mine1] == [6, 6]
    assert mine0[0] == list(range(6, 12))  # dealt=1: batch 0 goes to rank 1
    assert sorted(i for b in mine0 + mine1 for i in b) == list(range(24))

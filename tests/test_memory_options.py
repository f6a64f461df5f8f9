"""Memory options (--offload, --vae-tiling, --vae-slicing, --compile): validated, applied through diffusers' own
APIs on a real (tiny) pipeline, recorded in results, and in the video key only where they can change pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmark.models.loading import apply_memory_options, load_pipeline
from benchmark.specs import MemoryOptions, RunSpec
from helpers import only_results, run_config
from tiny_pipelines import TINY_CALL_SETTINGS


def test_default_memory_leaves_the_spec_dump_as_before():
    spec = RunSpec(model="m", eraser={"name": "none"}, suite="example")
    assert "memory" not in spec.model_dump(mode="json")
    tiled = spec.model_copy(update={"memory": MemoryOptions(vae_tiling=True)})
    assert tiled.model_dump(mode="json")["memory"]["vae_tiling"] is True
    assert tiled.fingerprint() != spec.fingerprint()
    assert RunSpec.model_validate(tiled.model_dump(mode="json")) == tiled


def test_in_key_options():
    assert MemoryOptions().in_key() == {}
    assert MemoryOptions(offload="model", vae_slicing=True).in_key() == {}
    assert MemoryOptions(vae_tiling=True, compile=True).in_key() == {"vae_tiling": True, "compile": True}


@pytest.mark.parametrize(
    "args, needle",
    [
        (("--offload", "fast"), "--offload 'fast'"),
        (("--offload", "model"), "--offload model needs --device cuda"),
        (("--offload", "sequential", "--device", "cpu"), "--offload sequential needs --device cuda"),
    ],
)
def test_bad_memory_options_are_one_line(args, needle, cli, tiny_model, tmp_path):
    config = run_config(tmp_path, "cogvideox", tiny_model("cogvideox"))
    out = tmp_path / "out"
    code, _, stderr = cli("run", "--method", "none", "--suite", "example", "--limit", "1", "--config", config, "--out", out, *args)
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("error: ") and needle in stderr, stderr
    assert not out.exists()


def test_bad_memory_mapping_in_config(cli, tiny_model, tmp_path):
    config = run_config(tmp_path, "cogvideox", tiny_model("cogvideox"), memory={"vae_tiling": True, "offlaod": "model"})
    code, _, stderr = cli("run", "--method", "none", "--suite", "example", "--config", config, "--out", tmp_path / "o")
    assert code == 2 and "offlaod" in stderr and stderr.count("\n") == 1, stderr
    config = run_config(tmp_path, "cogvideox", tiny_model("cogvideox"), memory=3)
    code, _, stderr = cli("run", "--method", "none", "--suite", "example", "--config", config, "--out", tmp_path / "o")
    assert code == 2 and "memory 3 is not allowed" in stderr, stderr


def _call(pipe, seed=0):
    out = pipe(prompt=["a church"], generator=[torch.Generator().manual_seed(seed)], output_type="np", **TINY_CALL_SETTINGS["cogvideox"])
    return np.asarray(out.frames)


def test_tiling_slicing_compile_are_set_on_the_real_pipeline(tiny_model):
    folder = tiny_model("cogvideox")
    plain = load_pipeline(folder)
    assert not plain.vae.use_tiling and not plain.vae.use_slicing
    pipe = load_pipeline(folder, memory=MemoryOptions(vae_tiling=True, vae_slicing=True, compile=True))
    assert pipe.vae.use_tiling and pipe.vae.use_slicing
    assert pipe.transformer._compiled_call_impl is not None  # torch.nn.Module.compile, in place
    assert type(pipe.transformer).__name__ == "CogVideoXTransformer3DModel"
    assert plain.transformer._compiled_call_impl is None


def test_model_offload_installs_hooks_and_keeps_pixels(tiny_model):
    """``enable_model_cpu_offload`` with the CPU as its execution device (the only device here): accelerate's
    hooks are on every model and the frames equal the plain pipeline's bit for bit."""
    folder = tiny_model("cogvideox")
    plain = load_pipeline(folder)
    offloaded = load_pipeline(folder, memory=MemoryOptions(offload="model"))  # device cpu: nothing moved
    for name in ("transformer", "vae", "text_encoder"):
        assert type(getattr(getattr(offloaded, name), "_hf_hook", None)).__name__ == "CpuOffload", name
    assert np.array_equal(_call(plain), _call(offloaded))


def test_sequential_offload_installs_hooks(tiny_model):
    pipe = load_pipeline(tiny_model("cogvideox"))  # plain pipeline on the CPU, then the offload call itself
    apply_memory_options(pipe, MemoryOptions(offload="sequential"), "cpu")
    hooks = {type(getattr(m, "_hf_hook", None)).__name__ for m in pipe.transformer.modules()}
    assert "AlignDevicesHook" in hooks
    # Generating needs a GPU: accelerate 1.x moves the weights to the meta device and cannot rebuild CPU
    # parameters from them when the execution device is the CPU (TypeError in set_module_tensor_to_device).


def test_run_records_options_and_keys_videos_by_tiling_only(cli, tiny_model, tmp_path):
    # wan: the tiny CogVideoX VAE's tile sizes round to a zero overlap, which diffusers' tiled decode cannot step by
    folder = tiny_model("wan")
    config = run_config(tmp_path, "wan", folder)
    groups = {}
    for name, flags in {"plain": (), "slicing": ("--vae-slicing",), "tiling": ("--vae-tiling",)}.items():
        out = tmp_path / name
        code, _, stderr = cli("run", "--method", "none", "--suite", "example", "--limit", "1", "--config", config, "--out", out, "-q", *flags)
        assert code == 0, stderr
        results = only_results(out)
        groups[name] = results["videos"]["groups"]
        memory = results["spec"].get("memory")
        if name == "plain":
            assert memory is None
        else:
            assert memory[name.replace("slicing", "vae_slicing").replace("tiling", "vae_tiling")] is True
    assert groups["slicing"] == groups["plain"]  # slicing never changes pixels: the same videos
    assert groups["tiling"] != groups["plain"]  # tiling can: its own videos
    row = json.loads((next((tmp_path / "tiling" / "runs").glob("*/results.json"))).read_text())
    from benchmark.results import RunResult

    assert RunResult.from_data(row).row_key()["memory"] == {"vae_tiling": True}

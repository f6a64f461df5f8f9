"""GPU check (a script, not a CI test): erasebench's cost over a bare diffusers call on a CogVideoX-2B-size model.

Builds a CogVideoX pipeline whose transformer and VAE have the sizes of the published THUDM/CogVideoX-2b
configs (``TRANSFORMER_2B``, ``VAE_2B``, ``SCHEDULER_2B`` below, numbers from its ``transformer/``, ``vae/`` and
``scheduler/`` config.json) with random weights, and a smaller T5 encoder (the real width 4096 that the
transformer's text projection expects, 2 layers instead of 24, a word-level tokenizer from
tests/tiny_pipelines.py). It is saved with ``save_pretrained`` to a local folder, then, in bf16 at
49 x 480 x 720 with ``--steps`` steps, on one GPU:

1. ``bare``: ``DiffusionPipeline.from_pretrained(folder)`` and one pipeline call per video (after a warm-up
   call), the same prompts, seeds and settings erasebench uses;
2. ``none``: ``erasebench run --method none`` through the Python API (``build_spec``, ``plan_run``, ``Runner``);
3. ``refusal``: ``erasebench run --method refusal`` with a cheap fixed fit (``REFUSAL_ARGS``: the text
   projection at lam 1, one recorded step, 8 pairs), the fit timed apart from the videos.

For each it prints s/video (generation, writing and scoring the videos, model load and fit excluded; the
loads are printed beside them) and the peak GPU memory (``torch.cuda.max_memory_allocated`` over the whole
phase, load included), then erasebench / bare ratios against the goal (time <= 1.05, memory <= +1 GiB).
The transformer's final projection is zero-initialised (as DiT initialises it) so random weights keep the
latents finite; every matmul still runs.

    python tests/gpu/check_gpu.py                      # one GPU, bf16, 49x480x720, 4 steps, 2 videos (<= 5 min)
    python tests/gpu/check_gpu.py --tiny               # the same path on the CPU with the tiny test pipeline

pytest never collects it (tests/gpu/conftest.py ignores this folder).
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # the repository
sys.path.insert(0, str(HERE.parent))  # tests/: tiny_pipelines

# THUDM/CogVideoX-2b transformer/config.json
TRANSFORMER_2B = dict(
    num_attention_heads=30, attention_head_dim=64, in_channels=16, out_channels=16, flip_sin_to_cos=True,
    freq_shift=0, time_embed_dim=512, text_embed_dim=4096, num_layers=30, dropout=0.0, attention_bias=True,
    sample_width=90, sample_height=60, sample_frames=49, patch_size=2, temporal_compression_ratio=4,
    max_text_seq_length=226, activation_fn="gelu-approximate", timestep_activation_fn="silu",
    norm_elementwise_affine=True, norm_eps=1e-5, spatial_interpolation_scale=1.875,
    temporal_interpolation_scale=1.0, use_rotary_positional_embeddings=False,
)
# THUDM/CogVideoX-2b vae/config.json
VAE_2B = dict(
    in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
    up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(128, 256, 256, 512), latent_channels=16,
    layers_per_block=3, act_fn="silu", norm_eps=1e-6, norm_num_groups=32, temporal_compression_ratio=4,
    sample_height=480, sample_width=720, scaling_factor=1.15258426, use_quant_conv=False, use_post_quant_conv=False,
)
# THUDM/CogVideoX-2b scheduler/scheduler_config.json
SCHEDULER_2B = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
    set_alpha_to_one=True, steps_offset=0, prediction_type="v_prediction", rescale_betas_zero_snr=True,
    snr_shift_scale=3.0, timestep_spacing="trailing",
)
# T5 v1.1 XXL's width and heads (what CogVideoX-2b ships), 2 of its 24 layers
T5_SMALL = dict(d_model=4096, d_kv=64, d_ff=10240, num_layers=2, num_heads=64, feed_forward_proj="gated-gelu")
REFUSAL_ARGS = {"site": "text_projection", "lam": 1.0, "steps_recorded": 1, "max_pairs": 8}
GOAL_TIME, GOAL_MEMORY_GIB = 1.05, 1.0


def build_2b(folder: Path, device: str) -> None:
    """A CogVideoX-2B-size pipeline with random weights, saved in bf16 (built on ``device``: fast init)."""
    import torch
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    from tiny_pipelines import TINY_VOCAB, build_word_tokenizer

    tokenizer = build_word_tokenizer(TINY_VOCAB, "t5")
    torch.manual_seed(0)
    with torch.device(device):
        text_encoder = T5EncoderModel(T5Config(
            vocab_size=len(tokenizer), num_decoder_layers=T5_SMALL["num_layers"], dropout_rate=0.0,
            is_encoder_decoder=True, tie_word_embeddings=False, pad_token_id=0, eos_token_id=1, **T5_SMALL,
        ))
        transformer = CogVideoXTransformer3DModel(**TRANSFORMER_2B)
        torch.nn.init.zeros_(transformer.proj_out.weight)
        torch.nn.init.zeros_(transformer.proj_out.bias)
        vae = AutoencoderKLCogVideoX(**VAE_2B)
    pipe = CogVideoXPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder.to(torch.bfloat16), vae=vae.to(torch.bfloat16),
        transformer=transformer.to(torch.bfloat16), scheduler=CogVideoXDDIMScheduler(**SCHEDULER_2B),
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    print(f"built CogVideoX-2B-size pipeline: transformer {sum(p.numel() for p in transformer.parameters()) / 1e9:.2f} B "
          f"parameters, VAE {sum(p.numel() for p in vae.parameters()) / 1e6:.0f} M, T5 (2 layers) "
          f"{sum(p.numel() for p in text_encoder.parameters()) / 1e6:.0f} M")
    del pipe, transformer, vae, text_encoder


def build_tiny(folder: Path) -> None:
    from tiny_pipelines import build_tiny_pipeline

    shutil.copytree(build_tiny_pipeline("cogvideox", folder.parent / "tiny-src"), folder)


class Peak:
    """Peak GPU memory of a phase (GiB), or None on the CPU."""

    def __init__(self, device: str):
        self.cuda = device == "cuda"

    def __enter__(self) -> "Peak":
        import torch

        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        self.gib = None
        return self

    def __exit__(self, *exc) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            self.gib = torch.cuda.max_memory_allocated() / 2**30


def bare(folder: Path, settings: dict, prompts: list[tuple[str, int]], dtype: str, device: str) -> dict:
    import torch
    from diffusers import DiffusionPipeline

    with Peak(device) as peak:
        start = time.perf_counter()
        pipe = DiffusionPipeline.from_pretrained(folder, dtype=getattr(torch, dtype)).to(device)
        pipe.set_progress_bar_config(disable=True)
        load = time.perf_counter() - start

        def call(prompt: str, seed: int):
            with torch.inference_mode():
                frames = pipe(prompt=[prompt], generator=[torch.Generator(device=device).manual_seed(seed)], output_type="np", **settings).frames
            if device == "cuda":
                torch.cuda.synchronize()
            return frames

        call(*prompts[0])  # warm-up: kernels, allocator, cuDNN choices
        start = time.perf_counter()
        for prompt, seed in prompts:
            call(prompt, seed)
        per_video = (time.perf_counter() - start) / len(prompts)
    del pipe
    return {"s_per_video": per_video, "load_s": load, "fit_s": 0.0, "peak_gib": peak.gib}


def erasebench(method: str, args: dict, folder: Path, out: Path, generation: dict, limit: int, dtype: str, device: str) -> dict:
    from benchmark.cli import build_spec
    from benchmark.runner import Runner, plan_run

    spec = build_spec(None, {
        "method": method, "eraser_args": args, "suite": "example", "model": str(folder), "limit": limit,
        "device": device, "dtype": dtype, "generation": generation,
    })
    plan = plan_run(spec, out)
    with Peak(device) as peak:
        runner = Runner(plan)
        timed = {}
        load, fit = runner.load, runner.fit

        def timed_load():
            start = time.perf_counter()
            load()
            timed["load+fit"] = time.perf_counter() - start

        def timed_fit(eraser):
            start = time.perf_counter()
            fit(eraser)
            timed["fit"] = timed.get("fit", 0.0) + time.perf_counter() - start

        runner.load, runner.fit = timed_load, timed_fit
        start = time.perf_counter()
        results = runner.run()
        total = time.perf_counter() - start
    videos = results["videos"]["count"]
    setup = timed.get("load+fit", 0.0)
    del runner
    return {"s_per_video": (total - setup) / videos, "load_s": setup - timed.get("fit", 0.0), "fit_s": timed.get("fit", 0.0), "peak_gib": peak.gib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny test pipeline on the CPU (checks the script itself)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--videos", type=int, default=2, help="videos per phase (prompts of the example suite)")
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=720)
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    args = parser.parse_args()

    import torch

    from benchmark.suites import load_suite
    from tiny_pipelines import TINY_CALL_SETTINGS

    if args.tiny:
        device, dtype = "cpu", "float32"
        torch.set_num_threads(1)  # tiny ops on a shared CPU: thread hand-offs would dominate every phase
        settings = dict(TINY_CALL_SETTINGS["cogvideox"], num_inference_steps=args.steps)
    else:
        if not torch.cuda.is_available():
            sys.exit("check_gpu.py needs a CUDA GPU (or --tiny for the CPU check of the script)")
        device, dtype = "cuda", "bfloat16"
        settings = dict(num_frames=args.frames, height=args.height, width=args.width, num_inference_steps=args.steps, guidance_scale=6.0)
    generation = {k: settings[k] for k in ("num_frames", "height", "width", "num_inference_steps", "guidance_scale")}
    extra = {k: v for k, v in settings.items() if k not in generation}
    if extra:
        generation["extra"] = extra

    work = args.keep or Path(tempfile.mkdtemp(prefix="erasebench-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    folder = work / "pipeline"
    start = time.perf_counter()
    if not folder.is_dir():
        build_tiny(folder) if args.tiny else build_2b(folder, device)
    print(f"pipeline folder {folder} ({time.perf_counter() - start:.1f} s to build and save)")

    shutil.rmtree(work / "runs", ignore_errors=True)  # with --keep too: time generation and fitting, never a cache
    suite = load_suite("example", None, "cogvideox")
    records = suite.records[: args.videos]
    prompts = [(r.prompt, suite.seed_for(r, 0, None, 0)) for r in records]
    rows = {"bare": bare(folder, settings, prompts, dtype, device)}
    rows["none"] = erasebench("none", {}, folder, work / "runs", generation, args.videos, dtype, device)
    rows["refusal"] = erasebench("refusal", REFUSAL_ARGS, folder, work / "runs", generation, args.videos, dtype, device)

    where = torch.cuda.get_device_name() if device == "cuda" else "CPU (--tiny)"
    print(f"\n{where}, {dtype}, {settings['num_frames']}x{settings['height']}x{settings['width']}, "
          f"{settings['num_inference_steps']} steps, {args.videos} videos per phase")
    print(f"{'phase':10s} {'s/video':>9s} {'load s':>8s} {'fit s':>8s} {'peak GiB':>9s} {'time ratio':>11s} {'+GiB':>7s}")
    base = rows["bare"]
    for name, row in rows.items():
        ratio = row["s_per_video"] / base["s_per_video"]
        peak = f"{row['peak_gib']:.2f}" if row["peak_gib"] is not None else "n/a"
        extra_gib = f"{row['peak_gib'] - base['peak_gib']:+.2f}" if row["peak_gib"] is not None else "n/a"
        print(f"{name:10s} {row['s_per_video']:9.3f} {row['load_s']:8.2f} {row['fit_s']:8.2f} {peak:>9s} {ratio:11.3f} {extra_gib:>7s}")
    for name in ("none", "refusal"):
        ratio = rows[name]["s_per_video"] / base["s_per_video"]
        memory_ok = base["peak_gib"] is None or rows[name]["peak_gib"] - base["peak_gib"] <= GOAL_MEMORY_GIB
        verdict = "meets" if ratio <= GOAL_TIME and memory_ok else "misses"
        print(f"{name}: erasebench/bare time {ratio:.3f} (goal <= {GOAL_TIME}), {verdict} the goal")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

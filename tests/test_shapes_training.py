"""Smoke training of the shapes-world model: every code path of ``benchmark.shapes.train`` in seconds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmark.shapes import world
from benchmark.shapes.train import PromptIds, TrainConfig, build_tokenizer, main, untrained_token_ids


def test_prompt_ids_match_tokenizer():
    """The id-level prompt encoder used in training equals the pipeline's tokenizer call."""
    tok = build_tokenizer()
    enc = PromptIds(TrainConfig())
    prompts = [""] + [world.prompt_for(a, t) for a in world.ALL_ATTRIBUTES[::7] for t in world.TEMPLATES]
    ref = tok(prompts, padding="max_length", max_length=16, truncation=True, add_special_tokens=True).input_ids
    assert [enc.ids(p) for p in prompts] == ref
    # Augmentations insert only <unk> (id 2) and never a paraphrase-only word.
    rng = np.random.default_rng(0)
    cfg = TrainConfig(p_unk=1.0, p_shuffle=1.0)
    ids = PromptIds(cfg).batch(list(world.ALL_ATTRIBUTES) * 4, rng)[0]
    assert not set(ids.flatten().tolist()) & set(untrained_token_ids())
    assert (ids == 2).any()
    assert {w for w, i in world.tokenizer_vocab().items() if i in untrained_token_ids()} == set(
        world.PARAPHRASE_ONLY_WORDS
    )


def test_smoke_training_round_trip(tmp_path):
    from diffusers import CogVideoXPipeline, DiffusionPipeline

    out = tmp_path / "model"
    threads = torch.get_num_threads()
    try:
        assert main(["--out", str(out), "--smoke", "--quiet"]) == 0
    finally:
        torch.set_num_threads(threads)

    record = json.loads((out / "TRAINING.json").read_text())
    assert record["seed"] == 0 and record["dit"]["steps"] == 20
    assert {"vae", "encode", "dit", "evaluation"} <= set(record["wall_seconds"])
    assert set(record["evaluation"]) >= {"main", "paraphrase", "acceptance"}
    assert record["safetensors_bytes"] < 25e6
    vae_cfg = json.loads((out / "vae" / "config.json").read_text())
    assert vae_cfg["scaling_factor"] == pytest.approx(record["latents"]["scaling_factor"])

    pipe = DiffusionPipeline.from_pretrained(out)
    assert isinstance(pipe, CogVideoXPipeline)
    pipe.set_progress_bar_config(disable=True)
    # The untrained (paraphrase-only) rows were tied to <unk>.
    emb = pipe.text_encoder.get_input_embeddings().weight
    assert torch.equal(emb[untrained_token_ids()], emb[2].expand(len(untrained_token_ids()), -1))
    frames = pipe(
        prompt=["a red cross moving left", "the blue square moves up"],
        num_inference_steps=25,
        guidance_scale=5.0,
        max_sequence_length=16,
        generator=[torch.Generator().manual_seed(s) for s in (1, 2)],
        output_type="np",
    ).frames
    frames = np.asarray(frames)
    assert frames.shape == (2, 9, 32, 32, 3)
    assert np.isfinite(frames).all() and frames.min() >= 0.0 and frames.max() <= 1.0

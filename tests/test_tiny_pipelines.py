"""The tiny offline pipelines build, save, reload through DiffusionPipeline.from_pretrained and run."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

try:  # conftest.py puts tests/ on sys.path (same module object as the shared fixtures use)
    from tiny_pipelines import (
        FAMILIES,
        HUNYUAN_TINY_PROMPT_TEMPLATE,
        TINY_CALL_SETTINGS,
        TINY_VOCAB,
        build_tiny_pipeline,
        build_word_tokenizer,
    )
except ImportError:  # pragma: no cover
    from tests.tiny_pipelines import (  # type: ignore[no-redef]
        FAMILIES,
        HUNYUAN_TINY_PROMPT_TEMPLATE,
        TINY_CALL_SETTINGS,
        TINY_VOCAB,
        build_tiny_pipeline,
        build_word_tokenizer,
    )

from diffusers import DiffusionPipeline

EXPECTED_CLASS = {
    "cogvideox": "CogVideoXPipeline",
    "wan": "WanPipeline",
    "hunyuanvideo": "HunyuanVideoPipeline",
    "zeroscope": "TextToVideoSDPipeline",
}

PROMPTS = ["a red circle moving left", "a church"]
NEGATIVE = ["", "nudity"]


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    """One intra-op thread: on a small shared CPU box, 2 OpenMP threads competing with other processes
    make these ~0.05 s calls take 1-2.5 s.  Restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _gens(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


@pytest.fixture(scope="module", params=FAMILIES)
def loaded(request, tmp_path_factory):
    family = request.param
    folder = build_tiny_pipeline(family, tmp_path_factory.mktemp(family) / "pipe", seed=0)
    pipe = DiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return family, pipe


def _call(family, pipe, prompts, negatives, gens, **extra):
    kwargs = dict(TINY_CALL_SETTINGS[family])
    kwargs.update(extra)
    return pipe(prompt=prompts, negative_prompt=negatives, generator=gens, output_type="np", **kwargs).frames


def test_loaded_class_and_call(loaded, record_property):
    family, pipe = loaded
    assert type(pipe).__name__ == EXPECTED_CLASS[family]
    settings = TINY_CALL_SETTINGS[family]

    t0 = time.perf_counter()
    frames = _call(family, pipe, PROMPTS, NEGATIVE, _gens(1, 2))
    elapsed = time.perf_counter() - t0
    record_property("call_seconds", elapsed)
    print(f"\n{family}: one batch-2 call took {elapsed:.3f} s")

    assert isinstance(frames, np.ndarray)
    assert frames.shape == (2, settings["num_frames"], settings["height"], settings["width"], 3)
    assert np.isfinite(frames).all()
    assert frames.min() >= 0.0 and frames.max() <= 1.0
    # random weights still give a non-constant video
    assert frames.std() > 1e-3

    again = _call(family, pipe, PROMPTS, NEGATIVE, _gens(1, 2))
    assert np.array_equal(frames, again), "same generators must give bit-identical frames"


def test_batch_item_matches_single(loaded, record_property):
    family, pipe = loaded
    batch = _call(family, pipe, PROMPTS, NEGATIVE, _gens(1, 2))
    single = _call(family, pipe, PROMPTS[:1], NEGATIVE[:1], _gens(1))
    assert single.shape[0] == 1
    max_diff = float(np.abs(batch[0] - single[0]).max())
    bit_identical = bool(np.array_equal(batch[0], single[0]))
    record_property("batch_vs_single_max_abs_diff", max_diff)
    record_property("batch_vs_single_bit_identical", bit_identical)
    print(f"\n{family}: batch item 0 vs single: bit_identical={bit_identical} max_abs_diff={max_diff:.3g}")
    np.testing.assert_allclose(batch[0], single[0], rtol=0, atol=1e-5)
    # and item 1 (generator 2) is a different sample
    assert not np.array_equal(batch[0], batch[1])


def test_negative_prompt_is_used(loaded):
    family, pipe = loaded
    extra = {"true_cfg_scale": 4.0} if family == "hunyuanvideo" else {}
    a = _call(family, pipe, PROMPTS[:1], [""], _gens(1), **extra)
    b = _call(family, pipe, PROMPTS[:1], ["nudity"], _gens(1), **extra)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("family", FAMILIES)
def test_build_is_seeded(family, tmp_path):
    a = build_tiny_pipeline(family, tmp_path / "a", seed=0)
    b = build_tiny_pipeline(family, tmp_path / "b", seed=0)
    c = build_tiny_pipeline(family, tmp_path / "c", seed=1)
    weights = sorted(p.relative_to(a) for p in a.rglob("*.safetensors"))
    assert weights
    for rel in weights:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert any((a / rel).read_bytes() != (c / rel).read_bytes() for rel in weights)


@pytest.mark.parametrize("kind", ["t5", "clip", "llama"])
def test_word_tokenizer_roundtrip(kind, tmp_path):
    from transformers import AutoTokenizer

    tok = build_word_tokenizer(TINY_VOCAB, kind)
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    texts = ["a red circle moving left", "A church in the snow.", "nudity", "Zebra-striped 42 qwertyuiop"]
    for text in texts:
        ids = tok(text).input_ids
        assert loaded(text).input_ids == ids
    # ordinary prompt words are in the vocab, unknown words map to <unk>
    for text in texts[:3]:
        assert tok.unk_token_id not in tok(text, add_special_tokens=False).input_ids
    assert tok.unk_token_id in tok("qwertyuiop", add_special_tokens=False).input_ids
    assert tok.decode(tok("a church in the snow", add_special_tokens=False).input_ids) == "a church in the snow"

    enc = tok(["a church", "a red circle moving left"], padding="max_length", max_length=10, truncation=True)
    assert [len(x) for x in enc.input_ids] == [10, 10]
    assert enc.attention_mask[0] == [1] * sum(enc.attention_mask[0]) + [0] * (10 - sum(enc.attention_mask[0]))
    first = enc.input_ids[0]
    if kind == "t5":
        assert first[:3] == tok.convert_tokens_to_ids(["a", "church", "</s>"]) and first[3] == tok.pad_token_id
    elif kind == "clip":
        assert first[:4] == tok.convert_tokens_to_ids(["<|startoftext|>", "a", "church", "<|endoftext|>"])
        assert tok.pad_token_id == tok.eos_token_id and tok.eos_token_id != 2
    else:
        assert first[:3] == tok.convert_tokens_to_ids(["<|begin_of_text|>", "a", "church"])
        assert first[3] == tok.pad_token_id


def test_hunyuan_template_crop_start():
    tok = build_word_tokenizer(TINY_VOCAB, "llama")
    template = HUNYUAN_TINY_PROMPT_TEMPLATE
    ids = tok(template["template"].format("a church in the snow")).input_ids
    tokens = tok.convert_ids_to_tokens(ids[template["crop_start"] :])
    assert tokens == ["a", "church", "in", "the", "snow", "<|eot_id|>"]

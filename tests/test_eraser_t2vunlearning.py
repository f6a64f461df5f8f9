"""T2VUnlearning (baselines/t2vunlearning.py, docs/erasers/t2vunlearning.md): adapters, checkpoint layout, masks,
losses, training, the recipe table, the training prompts and their source."""

from __future__ import annotations

import json

import pytest
import torch

from baselines.t2vunlearning import T2VUnlearning, export_released
from baselines.t2vunlearning_core import (
    Adapter,
    AdapterSet,
    adapter_param_count,
    build_adapters,
    concept_attention,
    dense_concept_attention,
    localization_loss,
    negative_velocity,
    normalise_per_frame,
    site_width,
    threshold_masks,
)
from benchmark.erasers import RunContext
from benchmark.errors import ErasebenchError
from benchmark.models.loading import load_pipeline
from benchmark.specs import ConceptSpec
from tiny_pipelines import TINY_CALL_SETTINGS

CONCEPT = ConceptSpec(
    name="dog",
    display_name="dog",
    keywords=("dog",),
    pairs=(("a red dog running", "a red cat running"), ("the dog jumps up", "the cat jumps up")),
    preserve=("cat",),
)

# adapter widths of the tiny pipelines (tests/tiny_pipelines.py): sites per family and their output widths
TINY_WIDTHS = {
    "cogvideox": [32, 32],  # 2 blocks, inner dim 2 x 16
    "hunyuanvideo": [20],  # 1 single-stream block, pre-only attention: 2 heads x 10
    "wan": [24, 24],  # 2 blocks, 2 x 12
    "zeroscope": [8, 8, 8, 16],  # down 0 (8 ch), up 1 two attentions (8), mid (16), in module order
}


def make_eraser(family: str, **args) -> T2VUnlearning:
    """The eraser as the runner hands it over: the run's generation settings (tiny call settings) in its run context."""
    eraser = T2VUnlearning.from_args({"xt_steps": 2, "iterations": 1, "rank": 8, **args}, [CONCEPT])
    eraser.run_context = RunContext(generation=dict(TINY_CALL_SETTINGS[family]))
    return eraser


@pytest.fixture(scope="module")
def pipes(tiny_model):
    from benchmark.models.base import FAMILIES

    cache = {}

    def get(family: str):
        if family not in cache:
            cache[family] = (load_pipeline(tiny_model(family), "float32", "cpu"), FAMILIES.get(family)())
        return cache[family]

    return get


def generate(pipe, family: str, prompt: str = "a red dog running") -> torch.Tensor:
    kwargs = dict(TINY_CALL_SETTINGS[family])
    kwargs["num_inference_steps"] = 2
    out = pipe(prompt=prompt, generator=torch.Generator().manual_seed(3), output_type="latent", **kwargs)
    frames = out.frames
    return frames if isinstance(frames, torch.Tensor) else torch.as_tensor(frames)


# ---- 1, 2: identity at init, switch, parameter counts ---------------------------------------------


@pytest.mark.parametrize("family", ["cogvideox", "hunyuanvideo", "wan", "zeroscope"])
def test_zero_init_identity_switch_and_counts(pipes, family, tmp_path):
    pipe, fam = pipes(family)
    base = generate(pipe, family)
    eraser = make_eraser(family, iterations=2, alpha=5.0, lr=0.05)
    sites = fam.site_modules(pipe, "video_attention")
    widths = [site_width(m) for _, m in sites]
    assert widths == TINY_WIDTHS[family]

    # zero-initialised adapters: bit-identical output
    adapters = AdapterSet(sites, build_adapters({n: site_width(m) for n, m in sites}, 128, 0)).attach()
    try:
        assert torch.equal(generate(pipe, family), base)
        assert sum(p.numel() for p in adapters.parameters()) == adapter_param_count(widths, 128)
        assert sum(p.numel() for p in adapters.parameters()) == sum(2 * d * 128 + 128 + d for d in widths)
    finally:
        adapters.detach()

    # a short fit on every family; trained adapters change the output, the switch restores it exactly
    eraser.fit(pipe, fam, tmp_path / "art")
    training = eraser.settings()["training"]
    assert training["iterations_without_concept_tokens"] == 0  # the concept token was found in every target prompt
    assert training["loss_last"]["loc"] > 0 and training["loss_first"]["loc"] == 0  # E_l = 0 at init, then not
    eraser.apply(pipe, fam, tmp_path / "art")
    try:
        assert eraser.settings()["adapter_params"] == adapter_param_count(widths, 8)
        assert not torch.equal(generate(pipe, family), base)
        with eraser._adapters.switched(False):
            assert torch.equal(generate(pipe, family), base)
    finally:
        eraser.remove(pipe, fam)
    assert torch.equal(generate(pipe, family), base)
    assert all(p.requires_grad for p in getattr(pipe, fam.denoiser).parameters())


# ---- 3: checkpoint layout ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "family,key", [("cogvideox", "transformer_blocks.{i}.attn1.adapter"), ("hunyuanvideo", "single_transformer_blocks.{i}.attn.adapter")]
)
def test_official_layout_loads_and_round_trips(pipes, family, key, tmp_path):
    pipe, fam = pipes(family)
    base = generate(pipe, family)
    widths = TINY_WIDTHS[family]
    g = torch.Generator().manual_seed(1)
    official = {
        key.format(i=i): {
            "down.weight": torch.randn(16, d, generator=g),
            "down.bias": torch.randn(16, generator=g),
            "up.weight": torch.randn(d, 16, generator=g) * 0.1,
            "up.bias": torch.randn(d, generator=g) * 0.1,
        }
        for i, d in enumerate(widths)
    }
    folder = tmp_path / "released"
    folder.mkdir()
    torch.save(official, folder / "eraser_weights.pt")
    (folder / "eraser_config.json").write_text(json.dumps({"eraser_type": "adapter", "eraser_rank": 16}))

    eraser = T2VUnlearning.from_args({"from_checkpoint": str(folder)}, [CONCEPT])
    assert not eraser.needs_fit
    eraser.apply(pipe, fam, None)
    try:
        edited = generate(pipe, family)
        assert not torch.equal(edited, base)
        state = eraser._adapters.state()
        assert set(state) == set(official)
        for name, inner in official.items():
            assert set(state[name]) == {"down.weight", "down.bias", "up.weight", "up.bias"}
            for k, v in inner.items():
                assert torch.equal(state[name][k], v)
    finally:
        eraser.remove(pipe, fam)
    assert torch.equal(generate(pipe, family), base)

    # our safetensors artifact -> released .pt -> loads again to the same output
    from safetensors.torch import save_file

    from baselines.t2vunlearning_core import flatten_state

    save_file(flatten_state(official), str(tmp_path / "w.safetensors"))
    exported = export_released(tmp_path / "w.safetensors", tmp_path / "export")
    again = T2VUnlearning.from_args({"from_checkpoint": str(exported)}, [CONCEPT])
    again.apply(pipe, fam, None)
    try:
        assert torch.equal(generate(pipe, family), edited)
    finally:
        again.remove(pipe, fam)


def test_checkpoint_errors(pipes, tmp_path):
    pipe, fam = pipes("cogvideox")
    with pytest.raises(ErasebenchError, match="not an adapter checkpoint"):
        T2VUnlearning.from_args({"from_checkpoint": str(tmp_path / "missing.pt")}, [CONCEPT]).fingerprint()
    bad = {"transformer_blocks.0.attn1.adapter": {k: torch.zeros(1) for k in ("down.weight", "down.bias", "up.weight", "up.bias")}}
    torch.save(bad, tmp_path / "bad.pt")
    eraser = T2VUnlearning.from_args({"from_checkpoint": str(tmp_path / "bad.pt")}, [CONCEPT])
    with pytest.raises(ErasebenchError, match="missing 1 .*transformer_blocks.1.attn1.adapter"):
        eraser.apply(pipe, fam, None)
    # fingerprints follow the checkpoint bytes
    good = tmp_path / "good.pt"
    torch.save({"x": {}}, good)
    a = T2VUnlearning.from_args({"from_checkpoint": str(good)}, [CONCEPT]).fingerprint()
    torch.save({"y": {}}, good)
    assert T2VUnlearning.from_args({"from_checkpoint": str(good)}, [CONCEPT]).fingerprint() != a
    # parity preset
    cfg = T2VUnlearning.from_args({"parity": True}, [CONCEPT]).config
    assert cfg.mask_alias_bug and cfg.mask_from_raw_qk and cfg.esd_timestep_pairing
    with pytest.raises(ErasebenchError, match="parity"):
        T2VUnlearning.from_args({"parity": True, "mask_alias_bug": False}, [CONCEPT])


# ---- 4: negative velocity, gradients -------------------------------------------------------------


def test_negative_velocity_formula():
    g = torch.Generator().manual_seed(0)
    v0, vc = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)
    for eta in (0.0, 1.0, 3.0):
        expected = v0 - eta * (vc - v0)
        assert torch.allclose(negative_velocity(v0, vc, eta), expected, atol=0, rtol=0)
    assert torch.allclose(negative_velocity(v0, vc, 1.0), 2 * v0 - vc, atol=1e-6, rtol=0)


def test_one_step_trains_only_adapters_and_lowers_unlearning_loss(pipes):
    pipe, fam = pipes("cogvideox")
    eraser = make_eraser("cogvideox", lr=3e-3, alpha=5.0)
    denoiser = pipe.transformer
    before = {k: v.clone() for k, v in denoiser.state_dict().items()}
    with eraser.trainer(pipe, fam) as trainer:
        batch = trainer.draw()
        first = trainer.losses(batch)
        assert first["unl"] > 0 and first["pre"] < 1e-10  # zero init: the student equals the teacher on c_pre (batched-call rounding only)
        trainer.step(batch)
        adapter_params = set(map(id, trainer.adapters.parameters()))
        assert all(p.grad is not None for p in trainer.adapters.parameters())
        assert all(p.grad is None for p in denoiser.parameters() if id(p) not in adapter_params)
        after = trainer.losses(batch)
        assert after["unl"] < first["unl"]
        assert all(p.dtype == torch.float32 for p in trainer.adapters.parameters())
    assert all(torch.equal(before[k], v) for k, v in denoiser.state_dict().items())


# ---- 5: masks ------------------------------------------------------------------------------------


def test_chunked_mask_equals_dense():
    g = torch.Generator().manual_seed(0)
    b, h, t, n, d = 2, 3, 7, 45, 8
    for layout in ("text_first", "text_last", "cross"):
        lq = n if layout == "cross" else n + t
        lk = t if layout == "cross" else n + t
        q, k = torch.randn(b, h, lq, d, generator=g) * 2, torch.randn(b, h, lk, d, generator=g) * 2
        rows = {"text_first": (t, lq), "text_last": (0, n), "cross": (0, lq)}[layout]
        start = lk - t if layout == "text_last" else 0
        cols = [start + 1, start + 2]
        valid = torch.ones(lk, dtype=torch.bool)
        valid[start + 5 : start + t] = False
        attn_mask = torch.rand(b, 1, 1, lk, generator=g) > 0.1
        attn_mask[..., cols] = True
        for kwargs in ({}, {"key_valid": valid}, {"attn_mask": attn_mask, "key_valid": valid}):
            dense = dense_concept_attention(q, k, rows, cols, **kwargs)
            for chunk in (1, 4, 16, 1000):
                chunked = concept_attention(q, k, rows, cols, chunk=chunk, **kwargs)
                assert chunked.shape == (b, n)
                assert torch.allclose(chunked, dense, atol=1e-6, rtol=0)
            soft = normalise_per_frame(dense, 15)
            assert soft.min() >= 0 and soft.max() <= 1
            m_dense = normalise_per_frame(dense, 15) >= 0.1
            m_chunk = normalise_per_frame(concept_attention(q, k, rows, cols, chunk=4, **kwargs), 15) >= 0.1
            assert torch.equal(m_dense, m_chunk)


def test_hot_token_lands_at_flattened_index():
    frames, height, width, t, d = 3, 4, 5, 6, 8
    n = frames * height * width
    concept = 2
    k = torch.zeros(1, 1, t + n, d)
    k[0, 0, concept, 0] = 1.0  # the concept key points along e_0; every other key is zero
    q = torch.zeros(1, 1, t + n, d)
    f, r, c = 1, 2, 3
    hot = f * height * width + r * width + c
    q[0, 0, t + hot, 0] = 20.0  # only this video query attends to the concept token
    scores = concept_attention(q, k, (t, t + n), [concept], chunk=7)
    mask = normalise_per_frame(scores, height * width)
    assert mask.shape == (1, n)
    assert int(mask[0].argmax()) == hot
    assert mask[0, hot] > 0.99
    others = torch.cat([mask[0, :hot], mask[0, hot + 1 :]])
    assert others.abs().max() < 1e-3
    assert (mask.reshape(frames, height, width)[f, r, c] > 0.99).item()


# ---- 6: localization loss, alias bug --------------------------------------------------------------


def test_localization_loss_and_alias_bug():
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(2, 12, generator=g) > 0.5).float()
    inside = torch.randn(2, 12, 4, generator=g) * mask[..., None]
    assert localization_loss([inside, inside], [mask, mask]) == 0
    outside = inside + 0.1 * (1 - mask[..., None])
    loss = localization_loss([outside], [mask])
    assert loss > 0
    assert torch.isclose(loss, torch.tensor(0.01))  # mean_d of 0.1^2 on each outside token, averaged over them

    soft0 = torch.tensor([[0.05, 0.2, 0.9, 0.0]])
    soft1 = torch.tensor([[0.6, 0.02, 0.3, 0.1]])
    fixed = threshold_masks([soft0.clone(), soft1.clone()], 0.1)
    assert torch.equal(fixed[0], torch.tensor([[0.0, 1.0, 1.0, 0.0]]))
    assert torch.equal(fixed[1], torch.tensor([[1.0, 0.0, 1.0, 1.0]]))
    layer0 = soft0.clone()
    bugged = threshold_masks([layer0, soft1.clone()], 0.1, alias_bug=True)
    expected0 = (torch.tensor([[0.0, 1.0, 1.0, 0.0]]) + soft1) / 2  # binarised layer 0 + soft layer 1, over n
    assert torch.allclose(bugged[0], expected0)
    assert bugged[0] is layer0  # the reference's alias: layer 0's own mask is overwritten
    assert torch.equal(bugged[1], fixed[1])
    assert not torch.equal(bugged[0], fixed[0])


def test_adapter_zero_init_and_keys():
    a = Adapter(6, 4)
    assert list(a.state_dict()) == ["down.weight", "down.bias", "up.weight", "up.bias"]
    assert torch.count_nonzero(a.up.weight) == 0 and torch.count_nonzero(a.up.bias) == 0
    x = torch.randn(3, 6)
    assert torch.equal(a(x), torch.zeros(3, 6))


# ---- prompt sets and the LLM rewriter (section 3 step 4) -------------------------------------------


def test_prompt_sets_and_template_paraphrases():
    from benchmark.models.base import FAMILIES

    eraser = T2VUnlearning.from_args({"augment": "templates"}, [CONCEPT])
    targets, preserves = eraser._prompts(FAMILIES.get("cogvideox")(), "cpu")
    assert targets[:2] == ["a red dog running", "the dog jumps up"]
    assert {"dog", "a dog", "a video of a red dog running"} <= set(targets)
    assert all("dog" in p for p in targets)
    assert preserves == ["a red cat running", "the cat jumps up", "cat"]


def test_llm_rewriter_local_chat_model(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    from baselines.t2vunlearning_data import llm_rewrites, rewrite_messages
    from tiny_pipelines import TINY_VOCAB, build_word_tokenizer

    tokenizer = build_word_tokenizer(TINY_VOCAB, "llama")
    tokenizer.chat_template = (
        "{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|> {{ m['content'] }}<|eot_id|>{% endfor %}"
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>{% endif %}"
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                    num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                    bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    )
    model.save_pretrained(tmp_path / "llm")
    tokenizer.save_pretrained(tmp_path / "llm")
    out = llm_rewrites(str(tmp_path / "llm"), ["a red dog running"], per_prompt=2, style="hunyuan", kind="i2p", name="dog", seed=0, device="cpu", max_new_tokens=12)
    assert len(out) == 2 and all(p.strip() for p in out)
    # "i2p" asks the LLM for an explicit scene of the prompt (the release prefixes the input, not the output)
    assert rewrite_messages("a red dog running", "hunyuan", "i2p")[-1] == {"role": "user", "content": "an explicit scene of a red dog running"}
    assert rewrite_messages("a red dog running", "cogvideox", "face")[-1]["content"] == "a red dog running"
    # "face": outputs must name the person; a name the model never writes gives no rewrite at all
    assert llm_rewrites(str(tmp_path / "llm"), ["a red dog"], per_prompt=1, style="hunyuan", kind="face", name="zebra", seed=0, device="cpu", max_attempts=2, max_new_tokens=12) == []
    with pytest.raises(ErasebenchError, match="not a local model folder"):
        llm_rewrites(str(tmp_path / "nope"), ["x"], per_prompt=1, style="hunyuan", kind="plain", name="", seed=0, device="cpu")


@pytest.mark.parametrize("family", ["cogvideox", "hunyuanvideo", "wan", "zeroscope"])
def test_batched_teacher_call_equals_single_calls(pipes, family):
    pipe, fam = pipes(family)
    eraser = make_eraser(family)
    with eraser.trainer(pipe, fam) as trainer:
        batch = trainer.draw()
        rows = [(trainer.cond(""), batch.xt[:1]), (trainer.cond(batch.target), batch.xt[:1]), (trainer.cond(batch.keep), batch.xt[1:2])]
        with torch.no_grad(), trainer.adapters.switched(False):
            batched = trainer.driver.call_many(rows, batch.t)
            single = [trainer.driver.call(c, x, batch.t) for c, x in rows]
        assert trainer.driver._batch_ok is True
    for a, b in zip(batched, single):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(single[0], single[1])  # the rows really carry different prompts

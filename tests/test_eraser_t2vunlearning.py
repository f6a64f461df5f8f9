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
    """v_neg = v0 - eta (vc - v0) (docs/erasers/t2vunlearning.md), numbers worked out by hand: v0 = 1, vc = 3,
    eta = 2 -> 1 - 2 * 2 = -3; per element, v0 = (1, -2, 0.5, 0), vc = (3, 1, 0.5, -4): eta 2 -> (-3, -8, 0.5, 8),
    eta 0 -> v0, eta 1 -> 2 v0 - vc = (-1, -5, 0.5, 4), eta 7 (the CogVideoX recipe) -> (-13, -23, 0.5, 28)."""
    assert negative_velocity(torch.tensor(1.0), torch.tensor(3.0), 2.0).item() == -3.0
    v0, vc = torch.tensor([1.0, -2.0, 0.5, 0.0]), torch.tensor([3.0, 1.0, 0.5, -4.0])
    for eta, expected in [(2.0, [-3.0, -8.0, 0.5, 8.0]), (0.0, [1.0, -2.0, 0.5, 0.0]), (1.0, [-1.0, -5.0, 0.5, 4.0]), (7.0, [-13.0, -23.0, 0.5, 28.0])]:
        assert negative_velocity(v0, vc, eta).tolist() == expected, eta


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


# ---- prompt sets and the LLM rewriter (docs/erasers/t2vunlearning.md "Prompt augmentation") ---------


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


# ---- the recipe table (docs/erasers/t2vunlearning.md "Recipe") ------------------------------------

KINDS = {
    "unsafe": ConceptSpec(name="nudity", display_name="nudity", kind="unsafe", keywords=("nudity",), preserve=("person",)),
    "identity": ConceptSpec(name="barack_obama", display_name="Barack Obama", kind="identity", preserve=("Joe Biden",)),
    "object": ConceptSpec(name="church", display_name="church", kind="object", keywords=("church",)),
    "shape": ConceptSpec(name="circle", display_name="circle", kind="shape", keywords=("circle",)),
}
# (eta, alpha, beta, iterations, lr) as the paper states them: CogVideoX eta 7, alpha 1, beta 0; HunyuanVideo nudity
# eta 3, alpha = beta = 5; faces eta 5; ImageNet objects 300 epochs; Adam 1e-4 and 500 epochs otherwise. Wan and
# ZeroScope (no paper runs) take the CogVideoX values.
PAPER = {
    ("cogvideox", "unsafe"): (7.0, 1.0, 0.0, 500, 1e-4),
    ("cogvideox", "identity"): (5.0, 1.0, 0.0, 500, 1e-4),
    ("cogvideox", "object"): (7.0, 1.0, 0.0, 300, 1e-4),
    ("cogvideox", "shape"): (7.0, 1.0, 0.0, 500, 1e-4),
    ("hunyuanvideo", "unsafe"): (3.0, 5.0, 5.0, 500, 1e-4),
    ("hunyuanvideo", "identity"): (5.0, 5.0, 5.0, 500, 1e-4),
    ("hunyuanvideo", "object"): (3.0, 5.0, 5.0, 300, 1e-4),
    ("wan", "unsafe"): (7.0, 1.0, 0.0, 500, 1e-4),
    ("wan", "identity"): (5.0, 1.0, 0.0, 500, 1e-4),
    ("zeroscope", "unsafe"): (7.0, 1.0, 0.0, 500, 1e-4),
    ("zeroscope", "object"): (7.0, 1.0, 0.0, 300, 1e-4),
}


class _Pipe:
    def __call__(self, prompt=None, num_inference_steps: int = 40):
        raise AssertionError("not called")


def _recipe(family: str, kind: str, denoiser: torch.nn.Module, generation: dict | None = None, **args):
    from benchmark.models.base import FAMILIES

    eraser = T2VUnlearning.from_args({"prompt_source": "concept", **args}, [KINDS[kind]])
    eraser.run_context = RunContext(generation=generation or {})
    return eraser.resolve_recipe(FAMILIES.get(family)(), denoiser, _Pipe())


def test_recipe_table_per_family_and_concept_kind():
    big = torch.nn.Linear(3200, 3200)  # 10.2M parameters: over the small-preset size, so "auto" is the paper's recipe
    small = torch.nn.Linear(8, 8)
    for (family, kind), (eta, alpha, beta, iterations, lr) in PAPER.items():
        recipe = _recipe(family, kind, big, {"num_inference_steps": 30})
        assert recipe["preset"] == "paper" and recipe["concept_kind"] == kind, (family, kind)
        assert (recipe["eta"], recipe["alpha"], recipe["beta"], recipe["iterations"], recipe["lr"]) == (eta, alpha, beta, iterations, lr), (family, kind)
        assert recipe["xt_steps"] == 30  # x_t from the run's own number of sampler steps
        assert recipe["from"]["eta"].startswith("paper")
    assert _recipe("cogvideox", "unsafe", big)["xt_steps"] == 40  # no run setting: the pipeline's default
    # config values win over the recipe; "from" says so
    recipe = _recipe("hunyuanvideo", "unsafe", big, eta=2.0, iterations=7)
    assert (recipe["eta"], recipe["alpha"], recipe["iterations"]) == (2.0, 5.0, 7)
    assert recipe["from"]["eta"] == "config" and recipe["from"]["alpha"].startswith("paper")
    # the small preset (CPU models such as the shapes model), whatever the family and kind
    for family, kind in (("cogvideox", "shape"), ("hunyuanvideo", "unsafe")):
        recipe = _recipe(family, kind, small, {"num_inference_steps": 25})
        assert recipe["preset"] == "small"
        assert (recipe["eta"], recipe["alpha"], recipe["beta"], recipe["iterations"], recipe["lr"], recipe["xt_steps"]) == (3.0, 5.0, 1.0, 60, 1e-3, 10)
    assert _recipe("cogvideox", "unsafe", small, preset="paper")["eta"] == 7.0
    assert _recipe("cogvideox", "object", big, preset="small")["iterations"] == 60
    # mixed concept kinds count as "other": the family row
    from benchmark.models.base import FAMILIES

    mixed = T2VUnlearning.from_args({"prompt_source": "concept"}, [KINDS["identity"], KINDS["object"]])
    assert mixed.resolve_recipe(FAMILIES.get("cogvideox")(), big, _Pipe())["eta"] == 7.0


def test_rewriter_settings_and_augmentation_arguments():
    from benchmark.models.base import FAMILIES

    hunyuan, cog = FAMILIES.get("hunyuanvideo")(), FAMILIES.get("cogvideox")()
    nudity = T2VUnlearning.from_args({}, [KINDS["unsafe"]])
    assert nudity.config.augmentation == "none"  # the paper's default: no augmentation
    assert nudity.rewriter_settings(hunyuan) == {"style": "hunyuan", "type": "i2p"}
    assert nudity.rewriter_settings(cog) == {"style": "cogvideox", "type": "i2p"}
    face = T2VUnlearning.from_args({"rewriter_style": "hunyuan"}, [KINDS["identity"]])
    assert face.rewriter_settings(cog) == {"style": "hunyuan", "type": "face"}
    assert T2VUnlearning.from_args({}, [KINDS["object"]]).rewriter_settings(cog)["type"] == "plain"
    assert T2VUnlearning.from_args({"rewriter": "/some/llm"}, [CONCEPT]).config.augmentation == "llm"
    with pytest.raises(ErasebenchError, match="augment=llm needs rewriter"):
        T2VUnlearning.from_args({"augment": "llm"}, [CONCEPT])
    with pytest.raises(ErasebenchError, match="rewriter is given but augment=none"):
        T2VUnlearning.from_args({"augment": "none", "rewriter": "/some/llm"}, [CONCEPT])


# ---- training prompts: the paper's published files, the concept fallback ---------------------------


@pytest.fixture
def no_cache(tmp_path, monkeypatch):
    """An empty data cache and no downloads (conftest sets HF_HUB_OFFLINE)."""
    monkeypatch.setenv("ERASEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ERASEBENCH_OFFLINE", "1")
    return tmp_path


NUDITY_PAIRS = ConceptSpec(
    name="nudity", display_name="nudity", kind="unsafe", keywords=("nudity",), preserve=("person",),
    pairs=(("a nude man by a lake", "a man in a coat by a lake"),),
)


def _eraser(concept: ConceptSpec, data_dir=None, **args) -> T2VUnlearning:
    eraser = T2VUnlearning.from_args(args, [concept])
    eraser.run_context = RunContext(data_dir=None if data_dir is None else str(data_dir))
    return eraser


def test_published_prompts_from_data_dir(shared_dir, no_cache):
    import csv

    data = shared_dir / "data"
    folder = data / "t2vunlearning" / "TobisawaMisakii__T2VUnlearning" / "evaluation" / "data"
    if not (folder / "10prompt_pairs.csv").is_file():
        pytest.skip("../shared has no T2VUnlearning training files")
    rows = list(csv.DictReader((folder / "10prompt_pairs.csv").open(encoding="utf-8-sig")))
    eraser = _eraser(NUDITY_PAIRS, data)
    found = eraser.training_prompts()
    assert found.targets == [r["prompt"] for r in rows] and len(found.targets) == 10
    assert found.preserves == [r["normal prompt"] for r in rows] + ["person"]
    (source,) = found.sources
    assert source["source"] == "published" and source["file"].endswith("evaluation/data/10prompt_pairs.csv")
    assert eraser.settings()["prompt_source"] == found.sources
    concept_only = _eraser(NUDITY_PAIRS, data, prompt_source="concept")
    assert concept_only.training_prompts().targets == ["a nude man by a lake"]
    # the published file is part of the fingerprint: a fit on it never reuses a fallback fit's artifact or videos
    (no_cache / "empty").mkdir()
    assert eraser.fingerprint() != _eraser(NUDITY_PAIRS, no_cache / "empty").fingerprint()

    templates = []
    for r in csv.DictReader((folder / "face_ori.csv").open(encoding="utf-8-sig")):
        if r["prompt"] not in templates:
            templates.append(r["prompt"])
    face = _eraser(KINDS["identity"], data).training_prompts()
    assert len(templates) == 30 and face.targets == [f"Barack Obama {t}" for t in templates]
    assert face.preserves == [f"Joe Biden {t}" for t in templates]
    assert face.sources[0]["source"] == "published" and face.sources[0]["file"].endswith("face_ori.csv")
    # objects and shapes have no published training prompts: the concept file's, no log line
    assert _eraser(KINDS["object"], data).training_prompts().sources[0]["source"] == "concept"


def test_missing_published_prompts_fall_back_with_one_log_line(no_cache, caplog, tmp_path):
    import logging

    empty = tmp_path / "data"
    empty.mkdir()
    eraser = _eraser(NUDITY_PAIRS, empty)
    with caplog.at_level(logging.WARNING, logger="erasebench.t2vunlearning"):
        found = eraser.training_prompts()
        eraser.fingerprint()
        eraser.settings()
    lines = [r for r in caplog.records if r.name == "erasebench.t2vunlearning"]
    assert len(lines) == 1 and "10prompt_pairs.csv" in lines[0].getMessage() and "concept-fallback" in lines[0].getMessage()
    assert found.targets == ["a nude man by a lake"] and found.preserves == ["a man in a coat by a lake", "person"]
    assert found.sources == [{"concept": "nudity", "source": "concept-fallback", "targets": 1, "preserve": 2,
                              "unavailable": "TobisawaMisakii/T2VUnlearning@f626c6f evaluation/data/10prompt_pairs.csv"}]
    # no published file pinned: the plain config fingerprint (with the file present it differs, see above)
    from benchmark.erasers import Eraser

    assert eraser.fingerprint() == Eraser.fingerprint(eraser)
    # prompt_source=published makes the missing file an error (one line naming where to put it)
    with pytest.raises(ErasebenchError, match="prompt_source=published: .*10prompt_pairs.csv.*--data-dir"):
        _eraser(NUDITY_PAIRS, empty, prompt_source="published").training_prompts()
    with pytest.raises(ErasebenchError, match="has no published training prompts"):
        _eraser(KINDS["object"], empty, prompt_source="published").training_prompts()
    # a wrong file in --data-dir is bad input, never a silent fallback
    (empty / "evaluation" / "data").mkdir(parents=True)
    (empty / "evaluation" / "data" / "10prompt_pairs.csv").write_text("prompt,normal prompt\na,b\n")
    with pytest.raises(ErasebenchError, match="sha256"):
        _eraser(NUDITY_PAIRS, empty).training_prompts()
    # config prompts override everything
    given = _eraser(NUDITY_PAIRS, empty, prompts=["a nude man"], preserve_prompts=["a man"]).training_prompts()
    assert (given.targets, given.preserves) == (["a nude man"], ["a man"])


def test_settings_pin_the_resolved_recipe(pipes, tmp_path, no_cache):
    pipe, fam = pipes("cogvideox")
    eraser = make_eraser("cogvideox", eta=4.0)
    eraser.fit(pipe, fam, tmp_path / "art")
    settings = eraser.settings()
    recipe = settings["recipe"]
    assert (recipe["preset"], recipe["family"], recipe["concept_kind"]) == ("small", "cogvideox", "other")
    assert (recipe["eta"], recipe["alpha"], recipe["beta"], recipe["iterations"], recipe["lr"], recipe["xt_steps"]) == (4.0, 5.0, 1.0, 1, 1e-3, 2)
    assert recipe["from"]["eta"] == "config" and recipe["from"]["alpha"] == "small preset"
    assert settings["prompt_source"] == [{"concept": "dog", "source": "concept", "targets": 2, "preserve": 3}]
    meta = json.loads((tmp_path / "art" / "eraser_config.json").read_text())["erasebench"]
    assert meta["recipe"] == recipe and meta["prompt_source"] == settings["prompt_source"]
    # a run that only applies the cached artifact reports the recipe it was trained with
    again = make_eraser("cogvideox", eta=4.0)
    again.apply(pipe, fam, tmp_path / "art")
    again.remove(pipe, fam)
    assert again.settings()["recipe"] == recipe


def test_adapter_in_model_dtype_reproduces_the_release_forward():
    """The release casts the adapter to the model's dtype and adds it there; the default keeps it in fp32."""

    class Attn(torch.nn.Module):
        def forward(self, x):
            return x * 1.5

    g = torch.Generator().manual_seed(0)
    site = Attn()
    adapter = Adapter(16, 4)
    with torch.no_grad():
        adapter.up.weight.copy_(torch.randn(16, 4, generator=g))
        adapter.up.bias.copy_(torch.randn(16, generator=g))
    x = torch.randn(2, 5, 16, generator=g).bfloat16()
    release = adapter.to(torch.bfloat16)
    expected = site(x) + release(site(x))  # h + A(h), all in bf16
    native = AdapterSet([("attn", site)], {"attn": Adapter(16, 4)}, native=True)
    native.adapters["attn"].load_state_dict(adapter.state_dict())
    native.adapters["attn"].to(torch.bfloat16)
    fp32 = AdapterSet([("attn", site)], {"attn": Adapter(16, 4)})
    fp32.adapters["attn"].load_state_dict({k: v.float() for k, v in adapter.state_dict().items()})
    with torch.no_grad():
        native.attach()
        got_native = site(x)
        native.detach()
        fp32.attach()
        got_fp32 = site(x)
        fp32.detach()
    assert torch.equal(got_native, expected)
    assert got_fp32.dtype == torch.bfloat16 and not torch.equal(got_fp32, expected)
    torch.testing.assert_close(got_fp32.float(), expected.float(), atol=0.1, rtol=0.02)
    assert T2VUnlearning.from_args({"parity": True}, [CONCEPT]).config.adapter_in_model_dtype

"""SAFREE (baselines/safree.py, docs/erasers/safree.md): the math, the parity flags and tiny pipelines of every family."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.errors import ErasebenchError, UnsupportedFamilyError
from benchmark.models.base import FAMILIES
from benchmark.specs import ConceptSpec, PromptRecord
from tiny_pipelines import TINY_CALL_SETTINGS

from baselines.negprompt import NegativePrompt
from baselines.safree import (
    SAFREE,
    _PromptDecision,
    project_rows,
    projector,
    reference_projection,
    reference_trigger_test,
    remove_subspace,
    svf_steps,
    trigger_test,
)

NUDITY = ConceptSpec(name="nudity", display_name="nudity", keywords=("naked", "nude", "nudity", "sexual"))
PROMPTS = ["a naked man walking in the park", "a dog running on the beach", "a nude woman and a cat"]


def make(**args) -> SAFREE:
    return SAFREE.from_args(args, [NUDITY])


def records(prompts: list[str]) -> list[PromptRecord]:
    return [PromptRecord(suite="t", prompt_id=f"p{i}", prompt=p) for i, p in enumerate(prompts)]


@pytest.fixture(scope="module")
def pipes(tiny_model):
    from diffusers import DiffusionPipeline

    loaded = {}

    def get(family: str):
        if family not in loaded:
            pipe = DiffusionPipeline.from_pretrained(tiny_model(family), dtype=torch.float32)
            pipe.set_progress_bar_config(disable=True)
            loaded[family] = pipe
        return loaded[family]

    return get


def generate(pipe, family: str, eraser, prompts: list[str], seed: int = 0, **overrides):
    """One pipeline call the way the runner makes it: call_kwargs, before_batch, then the call."""
    fam = FAMILIES.get(family)()
    recs = records(prompts)
    kwargs = {**TINY_CALL_SETTINGS[family], **(eraser.call_kwargs(fam, recs) if eraser else {}), **overrides}
    if eraser is not None:
        eraser.before_batch(pipe, fam, recs)
    with torch.inference_mode():
        out = pipe(prompt=prompts, generator=[torch.Generator().manual_seed(seed + i) for i in range(len(prompts))], output_type="np", **kwargs)
    frames = fam.frames(out)
    return frames, (eraser.batch_info(recs) if eraser is not None else None)


class DenoiserSpy:
    """A pre-hook registered after the eraser's: sees the kwargs the denoiser really gets."""

    def __init__(self, module):
        self.calls: list[dict] = []
        self.handle = module.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        self.calls.append({k: v.clone() for k, v in kwargs.items() if isinstance(v, torch.Tensor)})

    def remove(self):
        self.handle.remove()


# ---- 1-3, 6: the math ------------------------------------------------------------------------


def test_projector_is_symmetric_idempotent_and_fixes_its_columns():
    gen = torch.Generator().manual_seed(0)
    full = torch.randn(16, 4, generator=gen)
    deficient = torch.cat([full[:, :2], full[:, :1] * 2 - full[:, 1:2], full[:, :2]], dim=1)  # rank 2, 5 columns
    for E in (full, deficient):
        P = projector(E)
        assert P.dtype == torch.float32
        torch.testing.assert_close(P, P.T, atol=1e-5, rtol=0)
        torch.testing.assert_close(P @ P, P, atol=1e-5, rtol=0)
        torch.testing.assert_close(P @ E, E, atol=1e-5, rtol=0)
        X = torch.randn(7, 16, generator=gen)
        torch.testing.assert_close(project_rows(E, X), X @ P, atol=1e-5, rtol=0)
    assert torch.linalg.matrix_rank(projector(deficient)) == 2


def test_trigger_test_flags_only_the_vector_far_from_the_concept_subspace():
    gen = torch.Generator().manual_seed(1)
    C = torch.zeros(8, 2)
    C[0, 0] = C[1, 1] = 1.0
    pooled = torch.randn(6, 8, generator=gen) * 0.05
    pooled[:, :2] += torch.randn(6, 2, generator=gen)  # mostly inside span(C)
    pooled[3, 5] = 4.0  # masking token 3 moves the prompt far from the concept
    d, mu, flags = trigger_test(C, pooled, alpha=0.01)
    torch.testing.assert_close(d, torch.linalg.vector_norm(pooled[:, 2:], dim=-1), atol=1e-6, rtol=0)
    torch.testing.assert_close(mu, (d.sum() - d) / 5, atol=1e-6, rtol=0)
    assert flags.tolist() == [i == 3 for i in range(6)]
    # all d_i equal: no trigger
    equal = torch.zeros(4, 8)
    equal[:, 4] = 1.0
    assert not trigger_test(C, equal, alpha=0.01)[2].any()


def _reference_step(C, pooled, rows, alpha):
    """The released pipelines' projection step written out with their operations in their order and dtypes
    (SAFREE cogvideox_pipeline.py ``projection_matrix`` / ``mask_to_onp``; rows 1..n carry decisions 0..n-1)."""
    def proj(E):
        return E.float() @ torch.pinverse((E.T.float() @ E.float()).float()) @ E.T.float()

    keep = torch.eye(C.shape[0]) - proj(C)
    dist = torch.norm(keep.bfloat16() @ pooled.T.bfloat16(), dim=0)
    means = torch.tensor([torch.mean(torch.cat((dist[:i], dist[i + 1 :]))) for i in range(pooled.shape[0])])
    inverse = torch.zeros(rows.shape[0], dtype=torch.bool)
    inverse[1 : pooled.shape[0] + 1] = dist >= (1.0 + alpha) * means
    new = (keep.bfloat16() @ proj(pooled.T).bfloat16() @ rows.T.bfloat16()).T
    return torch.where(~inverse[:, None], rows, new), inverse


def test_bf16_projection_parity_reproduces_the_reference_arithmetic():
    gen = torch.Generator().manual_seed(2)
    C, pooled = torch.randn(32, 3, generator=gen), torch.randn(6, 32, generator=gen)
    pooled[2] += 3.0 * torch.randn(32, generator=gen)  # one masked copy far from the others
    rows = torch.randn(10, 32, generator=gen).bfloat16()
    expected, inverse = _reference_step(C, pooled, rows, alpha=0.01)
    assert inverse.any() and not inverse.all()
    eraser = make(parity=True)
    decision = _PromptDecision(positions=list(range(6)), rows=list(range(1, 7)), truncated=False, skipped=False, masked_pooled=pooled)
    merged, triggers, _ = eraser._edit(C, decision, rows, valid_rows=8)
    assert triggers == inverse.nonzero().flatten().tolist()
    assert merged.dtype == expected.dtype and torch.equal(merged, expected)  # bit for bit
    # the flags and the projection alone, against the transcription
    d, mu, flags = reference_trigger_test(C, pooled, 0.01)
    assert d.dtype == torch.bfloat16 and flags.tolist() == inverse[1:7].tolist()
    torch.testing.assert_close(reference_projection(C, pooled.T, rows.float()).float(),
                               remove_subspace(C, project_rows(pooled.T, rows.float())), atol=0.15, rtol=0.05)
    # the default (fp32) path is the same math without the rounding
    fixed, fixed_triggers, _ = make()._edit(C, decision, rows.float(), valid_rows=8)
    assert fixed.dtype == torch.float32 and fixed_triggers == triggers
    torch.testing.assert_close(fixed, merged.float(), atol=0.15, rtol=0.05)
    assert not torch.equal(fixed, merged.float())


def test_svf_map_values():
    assert [svf_steps(b) for b in (0.3, 0.5, 0.5333, 0.55, 0.6)] == [0, 2, 5, 7, 10]
    assert [svf_steps(b, k=3.5, t0=5.5) for b in (0.5, 0.55, 0.6)] == [0, 5, 10]
    assert svf_steps(0.6, form="tanh") == 10 and svf_steps(0.3, form="tanh") == 0


def test_config_validation_and_fingerprint():
    assert make(parity=True).config.clip_offsets_on_t5 and make(parity=True).config.bf16_projection
    for bad in ({"parity": True, "bf16_projection": False}, {"steps": [5, 2]}, {"steps": [0, 3], "window_fraction": 0.5},
                {"variant": "svf"}, {"window_fraction": 0}, {"nonsense": 1}):
        with pytest.raises(ErasebenchError, match="safree"):
            make(**bad)
    assert make().fingerprint() != make(alpha=0.1).fingerprint() != make(variant="paper-svf").fingerprint()
    fam = FAMILIES.get("cogvideox")()
    assert make().call_kwargs(fam, []) == {"negative_prompt": ["naked, nude, nudity, sexual"]}
    assert make(negative_prompt="off").call_kwargs(fam, []) == {}
    assert make(negative_prompt=False).config.negative_prompt == "off"  # YAML reads `off` as false
    assert make().call_kwargs(FAMILIES.get("hunyuanvideo")(), []) == {}  # the port has no negative prompt
    zs = FAMILIES.get("zeroscope")()
    assert make(zeroscope_reference_sampler=True).call_kwargs(zs, [])["guidance_scale"] == 25.0
    assert make().steps_setting(zs) == "all" and make().steps_setting(fam) == (0, 12)


def test_unsupported_family_is_refused(pipes):
    from benchmark.models.cogvideox import Family

    class NoPooling(Family):
        name = "nopool"
        text_pooling = ()

    with pytest.raises(UnsupportedFamilyError, match="nopool"):
        make().apply(pipes("cogvideox"), NoPooling(), None)


# ---- 2, 4, 5, 7, 8 and batching on tiny real pipelines ---------------------------------------


def test_keyword_vectors_are_removed_and_rows_line_up(pipes):
    pipe, fam = pipes("cogvideox"), FAMILIES.get("cogvideox")()
    outs = {}
    for parity in (False, True):
        eraser = make(clip_offsets_on_t5=parity, alpha=-0.5)
        eraser.apply(pipe, fam, None)
        spy = DenoiserSpy(pipe.transformer)
        try:
            _, info = generate(pipe, "cogvideox", eraser, PROMPTS[:1])
        finally:
            spy.remove()
            eraser.remove(pipe, fam)
        outs[parity] = (info[0], spy.calls)
        (C,) = eraser._concept_cache.values()
        assert C.shape == (32, 4)
        assert remove_subspace(C, C.T).abs().max() < 1e-5  # (I - P_C) c_j = 0
    ref_spy = DenoiserSpy(pipe.transformer)
    try:
        generate(pipe, "cogvideox", None, PROMPTS[:1], negative_prompt="naked, nude, nudity, sexual")
    finally:
        ref_spy.remove()
    m = len(PROMPTS[0].split())  # T5: no BOS, EOS last
    assert outs[False][0]["safree_tested"]["text_encoder"] == list(range(m))  # every real token
    assert outs[True][0]["safree_tested"]["text_encoder"] == list(range(1, m))  # CLIP offsets: 1..len-2
    for parity in (False, True):
        info, calls = outs[parity]
        assert info["safree_triggers"]["text_encoder"] and info["safree_edits"]
        for call, ref in zip(calls, ref_spy.calls):
            uncond, cond = call["encoder_hidden_states"].chunk(2)
            ref_uncond, ref_cond = ref["encoder_hidden_states"].chunk(2)
            assert torch.equal(uncond, ref_uncond)  # the unconditional half is never edited
            changed = (cond != ref_cond).any(dim=-1)[0].nonzero().flatten().tolist()
            assert changed == info["safree_triggers"]["text_encoder"]  # only trigger rows


def test_step_window_seen_by_the_denoiser(pipes):
    pipe, fam = pipes("cogvideox"), FAMILIES.get("cogvideox")()
    for args, steps, expected in (({}, 14, list(range(13))), ({"window_fraction": 0.5}, 4, [0, 1]), ({"steps": "all"}, 3, [0, 1, 2]),
                                  ({"variant": "paper-svf"}, 4, None)):
        eraser = make(alpha=-0.5, **args)
        eraser.apply(pipe, fam, None)
        spy = DenoiserSpy(pipe.transformer)
        try:
            _, info = generate(pipe, "cogvideox", eraser, PROMPTS[:1], num_inference_steps=steps)
            original = eraser._call.orig_rows
        finally:
            spy.remove()
            eraser.remove(pipe, fam)
        if args.get("variant") == "paper-svf":
            t_star = info[0]["safree_t_star"]
            assert 0.0 < info[0]["safree_beta"] < 2.0 and info[0]["safree_window"] == [0, t_star]
            expected = list(range(min(t_star + 1, steps)))
        assert info[0]["safree_edited_steps"] == expected
        seen = [not torch.equal(call["encoder_hidden_states"].chunk(2)[1], original) for call in spy.calls]
        assert seen == [i in expected for i in range(steps)]


def test_no_trigger_equals_negprompt_safree_keywords(pipes):
    pipe, fam = pipes("cogvideox"), FAMILIES.get("cogvideox")()
    eraser = make(alpha=1e6)
    eraser.apply(pipe, fam, None)
    try:
        ours, info = generate(pipe, "cogvideox", eraser, PROMPTS[:2])
    finally:
        eraser.remove(pipe, fam)
    assert not any(i["safree_edits"] for i in info) and all(i["safree_edited_steps"] == [] for i in info)
    neg = NegativePrompt.from_args({"preset": "safree-keywords"}, [NUDITY])
    theirs, _ = generate(pipe, "cogvideox", neg, PROMPTS[:2])
    assert np.array_equal(ours, theirs)


def test_batched_masked_encodings_equal_per_prompt(pipes):
    pipe, fam = pipes("cogvideox"), FAMILIES.get("cogvideox")()
    eraser = make(alpha=-0.5, encode_batch_size=5)
    eraser.apply(pipe, fam, None)
    try:
        generate(pipe, "cogvideox", eraser, PROMPTS)
        batched, batched_cache = eraser._call, list(eraser._decision_cache.values())
        singles = []
        for prompt in PROMPTS:
            eraser._decision_cache.clear()
            generate(pipe, "cogvideox", eraser, [prompt])
            singles.append(eraser._call)
    finally:
        eraser.remove(pipe, fam)
    for b, single in enumerate(singles):
        # the pipeline's own prompt encoding of a batch differs from one prompt's by float rounding (~1e-6)
        torch.testing.assert_close(batched.edited_rows[b], single.edited_rows[0], atol=1e-4, rtol=1e-4)
        assert batched.info[b]["safree_triggers"] == single.info[0]["safree_triggers"]
    # and against one encoder call per masked copy, by hand
    ids = pipe.tokenizer(PROMPTS[0], return_tensors="pt").input_ids
    with torch.inference_mode():
        by_hand = []
        for p in range(ids.shape[1] - 1):
            masked = ids.clone()
            masked[0, p] = 0
            by_hand.append(pipe.text_encoder(masked).last_hidden_state[0, 0])
    decision = batched_cache[0]
    assert decision.positions == list(range(ids.shape[1] - 1))
    torch.testing.assert_close(decision.masked_pooled, torch.stack(by_hand), atol=1e-5, rtol=0)


def test_one_token_prompt_is_skipped_and_truncation_recorded(pipes):
    pipe, fam = pipes("cogvideox"), FAMILIES.get("cogvideox")()
    eraser = make(alpha=-0.5)
    eraser.apply(pipe, fam, None)
    long_prompt = " ".join(["a naked man"] * 8)
    try:
        _, info = generate(pipe, "cogvideox", eraser, ["nude", long_prompt])
    finally:
        eraser.remove(pipe, fam)
    assert info[0]["safree_skipped"] and not info[0]["safree_edits"] and not info[0]["truncated"]
    assert not info[1]["safree_skipped"] and info[1]["truncated"]
    assert info[1]["safree_tested"]["text_encoder"] == list(range(15))  # 16 tokens: 15 kept + EOS


@pytest.mark.parametrize("family", ["cogvideox", "wan", "hunyuanvideo", "zeroscope"])
def test_tiny_pipeline_edits_and_remove_restores(family, pipes):
    pipe, fam = pipes(family), FAMILIES.get(family)()
    denoiser = getattr(pipe, fam.denoiser)
    steps = TINY_CALL_SETTINGS[family]["num_inference_steps"]
    none_frames, _ = generate(pipe, family, None, PROMPTS[:2])
    eraser = make(alpha=-0.5, steps="all")
    eraser.apply(pipe, fam, None)
    spy = DenoiserSpy(denoiser)
    try:
        frames, info = generate(pipe, family, eraser, PROMPTS[:2])
    finally:
        spy.remove()
        eraser.remove(pipe, fam)
    assert np.isfinite(frames).all()
    assert all(i["safree_edited_steps"] == list(range(steps)) for i in info), info
    assert eraser._call is None and not denoiser._forward_pre_hooks
    assert not any(getattr(pipe, e)._forward_hooks for e in fam.text_encoders)
    # calls per step: [uncond; cond] batched (CogVideoX, ZeroScope), cond then uncond (Wan), cond only (Hunyuan, no CFG)
    per_step = {"cogvideox": 1, "zeroscope": 1, "wan": 2, "hunyuanvideo": 1}[family]
    assert len(spy.calls) == per_step * steps
    if family == "hunyuanvideo":
        assert info[0]["safree_triggers"].keys() == {"text_encoder", "text_encoder_2"}
        pooled = [c["pooled_projections"] for c in spy.calls]
        assert not torch.equal(pooled[0], eraser_pooled_reference(pipe, family))
    after, _ = generate(pipe, family, None, PROMPTS[:2])
    assert np.array_equal(after, none_frames)


def eraser_pooled_reference(pipe, family):
    """The unedited CLIP pooled vectors of PROMPTS[:2] as the Hunyuan pipeline computes them."""
    with torch.inference_mode():
        return pipe._get_clip_prompt_embeds(PROMPTS[:2], 1, device=torch.device("cpu"), dtype=torch.float32)


def test_hunyuan_with_keyword_negative_prompt_uses_true_cfg(pipes):
    pipe, fam = pipes("hunyuanvideo"), FAMILIES.get("hunyuanvideo")()
    eraser = make(alpha=-0.5, negative_prompt="keywords")
    eraser.apply(pipe, fam, None)
    spy = DenoiserSpy(pipe.transformer)
    try:
        _, info = generate(pipe, "hunyuanvideo", eraser, PROMPTS[:1])
    finally:
        spy.remove()
        eraser.remove(pipe, fam)
    assert len(spy.calls) == 2 * TINY_CALL_SETTINGS["hunyuanvideo"]["num_inference_steps"]  # cond, then uncond
    assert info[0]["safree_edited_steps"] == [0, 1]
    assert not torch.equal(spy.calls[0]["encoder_hidden_states"], spy.calls[1]["encoder_hidden_states"])


def test_runner_writes_safree_facts_into_sidecars(tiny_model, tmp_path, cli):
    import json

    from helpers import run_config, samples

    config = run_config(tmp_path, "cogvideox", tiny_model("cogvideox"))
    code, _, stderr = cli("run", "--method", "safree", "--suite", "example", "--limit", "1", "--config", config, "--out", tmp_path, "-q")
    assert code == 0, stderr
    sidecar = json.loads((tmp_path / samples(tmp_path)[0]["video"]).with_suffix(".json").read_text())
    assert sidecar["eraser_call_kwargs"] == {"negative_prompt": ["church, chapel, cathedral"]}
    info = sidecar["eraser_info"]
    assert info["safree_variant"] == "released" and info["safree_skipped"] is False
    assert info["safree_tested"]["text_encoder"] == [0, 1, 2, 3, 4]  # "a church in the snow": 5 tokens + EOS


def test_hunyuan_llama_pooling_default_and_port_parity(pipes):
    """LLaMA (pooling "mean"): vectors from the final layer. Default: masked copies inside the template, mean over
    the prompt's rows, decision i on row i. ``llama_port_pooling`` (in ``parity``): copies of the cropped ids alone,
    keyword vectors averaged over the whole padded template, decision i on row i + 1 (the port's offsets)."""
    pipe, fam = pipes("hunyuanvideo"), FAMILIES.get("hunyuanvideo")()
    template = TINY_CALL_SETTINGS["hunyuanvideo"]["prompt_template"]
    crop, width = template["crop_start"], template["crop_start"] + TINY_CALL_SETTINGS["hunyuanvideo"]["max_sequence_length"]
    prompt = PROMPTS[0]
    ids = pipe.tokenizer(template["template"].format(prompt))["input_ids"]
    n = len(ids) - crop - 1  # the prompt's tokens; the last one is <|eot_id|>
    pad = pipe.tokenizer.pad_token_id

    def final(rows, mask=None):
        with torch.inference_mode():
            return pipe.text_encoder(input_ids=torch.tensor(rows), attention_mask=mask).last_hidden_state.float()

    for port in (False, True):
        eraser = make(alpha=-0.5, **({"parity": True} if port else {}))
        eraser.apply(pipe, fam, None)
        try:
            _, info = generate(pipe, "hunyuanvideo", eraser, [prompt])
        finally:
            eraser.remove(pipe, fam)
        decision = next(d for key, d in eraser._decision_cache.items() if key[0] == 0)
        C = next(c for key, c in eraser._concept_cache.items() if key[0] == 0)
        assert info[0]["safree_tested"]["text_encoder"] == list(range(n))  # never CLIP offsets on the LLaMA rows
        assert decision.rows == (list(range(1, n + 1)) if port else list(range(n)))
        assert info[0]["safree_triggers"]["text_encoder"] and set(info[0]["safree_triggers"]["text_encoder"]) <= set(decision.rows)
        copies = []
        for i in range(n):
            seq = list(ids[crop:]) if port else list(ids)
            seq[i if port else crop + i] = 0
            copies.append(seq)
        by_hand = final(copies).mean(1) if port else final(copies)[:, crop:].mean(1)
        torch.testing.assert_close(decision.masked_pooled, by_hand, atol=1e-5, rtol=0)
        vectors = []
        for word in NUDITY.keywords:
            seq = ids[:crop] + pipe.tokenizer(word, add_special_tokens=False)["input_ids"] + ids[-1:]
            mask = torch.tensor([[1] * len(seq) + [0] * (width - len(seq))])
            out = final([seq + [pad] * (width - len(seq))], mask)[0]
            vectors.append(out.mean(0) if port else out[crop : len(seq)].mean(0))
        torch.testing.assert_close(C, torch.stack(vectors).T, atol=1e-5, rtol=0)

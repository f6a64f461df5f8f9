"""The refusal-vector eraser: the math of shared/specs/erasers.md 4.6 and its fit/apply/remove on tiny pipelines."""

from __future__ import annotations

import pytest
import torch

from baselines.refusal import (
    RefusalConfig,
    RefusalVector,
    contrastive_directions,
    fold_weight,
    low_rank_direction,
    orthonormal_basis,
    pool_tokens,
    project_out,
    refusal_sites,
)
from benchmark.erasers import RunContext
from benchmark.errors import ErasebenchError
from benchmark.specs import ConceptSpec


def _unit(d: int, seed: int) -> torch.Tensor:
    v = torch.randn(d, generator=torch.Generator().manual_seed(seed))
    return v / v.norm()


@pytest.mark.parametrize("lam", [0.5, 1.0, 1.5])
def test_fold_equals_pre_hook_projection(lam):
    g = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(48, 32)
    x = torch.randn(5, 7, 48, generator=g)
    p_hat = _unit(48, 1)
    basis = p_hat[:, None]
    reference = linear(project_out(x, basis, lam))
    bias = linear.bias.detach().clone()
    with torch.no_grad():
        linear.weight.copy_(fold_weight(linear.weight, basis, lam))
    assert torch.allclose(linear(x), reference, rtol=1e-5, atol=1e-5)
    assert torch.equal(linear.bias, bias)


def test_fold_kills_direction_and_is_idempotent():
    w = torch.randn(32, 48, generator=torch.Generator().manual_seed(2))
    basis = _unit(48, 3)[:, None]
    once = fold_weight(w, basis, 1.0)
    assert (once @ basis).abs().max() <= 1e-6 * w.norm()
    assert torch.allclose(fold_weight(once, basis, 1.0), once, atol=1e-6)


def test_rank_one_form_equals_summary_form():
    """W(I - lam U (r_hat r_hat^T / |r_hat|^2) U^T), r_hat = U^T r, equals the fold with p_hat = U U^T r / |.|."""
    d, k = 40, 6
    u, _ = torch.linalg.qr(torch.randn(d, k, generator=torch.Generator().manual_seed(4)))
    r = torch.randn(d, generator=torch.Generator().manual_seed(5))
    w = torch.randn(16, d, generator=torch.Generator().manual_seed(6))
    r_k = u.T @ r
    summary = w @ (torch.eye(d) - u @ torch.outer(r_k, r_k) / r_k.dot(r_k) @ u.T)
    p_hat, _ = low_rank_direction(r, u)
    assert torch.allclose(fold_weight(w, p_hat[:, None], 1.0), summary, atol=1e-5)


def test_cpca_recovers_planted_direction():
    d, n = 32, 60
    g = torch.Generator().manual_seed(7)
    v, w = _unit(d, 8), _unit(d, 9)
    w = w - (w @ v) * v
    w = w / w.norm()
    a = 2.0 + torch.randn(n, 1, generator=g)
    b = 0.8 * torch.randn(n, 1, generator=g)
    diffs = a * v + b * w + 0.05 * torch.randn(n, d, generator=g)
    neutral = 5.0 * torch.randn(200, 1, generator=g) * w + 0.05 * torch.randn(200, d, generator=g)
    r = diffs.mean(0)
    u1, _ = contrastive_directions(diffs, neutral, k=100, alpha=1.0)
    p1, _ = low_rank_direction(r, u1)
    u0, _ = contrastive_directions(diffs, neutral, k=100, alpha=0.0)
    p0, _ = low_rank_direction(r, u0)
    assert abs(float(p1 @ v)) > 0.95
    assert abs(float(p0 @ w)) > abs(float(p1 @ w))


def test_k_is_clamped_and_non_positive_eigenvalues_dropped():
    diffs = torch.randn(5, 16, generator=torch.Generator().manual_seed(10))
    u, evals = contrastive_directions(diffs, torch.zeros(0, 16), k=100, alpha=0.0)
    assert u.shape == (16, 4) and (evals > 0).all()
    # a neutral set dominating every direction leaves no positive eigenvalue: r itself is used
    neutral = 100 * torch.randn(400, 16, generator=torch.Generator().manual_seed(11))
    u, evals = contrastive_directions(diffs, neutral, k=100, alpha=50.0)
    assert u.shape[1] == 0 and evals.numel() == 0
    p_hat, _ = low_rank_direction(diffs.mean(0), u)
    assert torch.allclose(p_hat, diffs.mean(0) / diffs.mean(0).norm())


def test_multi_concept_fold():
    d = 24
    w = torch.randn(12, d, generator=torch.Generator().manual_seed(12))
    p1, p2 = _unit(d, 13), _unit(d, 14)
    basis = orthonormal_basis([p1, p2])
    folded = fold_weight(w, basis, 1.0)
    for p in (p1, p2):
        assert (folded @ p).abs().max() <= 1e-5 * w.norm()
    # orthogonal directions: one joint fold == sequential folds
    q1 = p1
    q2 = p2 - (p2 @ q1) * q1
    q2 = q2 / q2.norm()
    joint = fold_weight(w, orthonormal_basis([q1, q2]), 1.0)
    sequential = fold_weight(fold_weight(w, q1[:, None], 1.0), q2[:, None], 1.0)
    assert torch.allclose(joint, sequential, atol=1e-5)


def test_pooling_ignores_padding():
    x = torch.randn(1, 6, 8, generator=torch.Generator().manual_seed(15))
    padded = torch.cat([x, torch.randn(1, 20, 8)], dim=1)
    mask = torch.zeros(1, 26, dtype=torch.bool)
    mask[:, :6] = True
    assert torch.allclose(pool_tokens(padded, mask), pool_tokens(x, None), atol=1e-6)


def test_bf16_fold_is_computed_in_fp32_and_cast_once():
    w = torch.randn(32, 64, generator=torch.Generator().manual_seed(16))
    basis = _unit(64, 17)[:, None]
    exact = fold_weight(w, basis, 1.0)
    low = fold_weight(w.to(torch.bfloat16), basis, 1.0)
    assert low.dtype == torch.bfloat16
    rel = (low.float() - exact).norm() / exact.norm()
    assert rel <= 2**-8


# ---- on tiny pipelines --------------------------------------------------------------------------------

CONCEPT = ConceptSpec(
    name="church",
    display_name="church",
    keywords=("church",),
    pairs=(("a church on a hill", "a house on a hill"), ("a red church at night", "a red house at night"),
           ("an old church in the snow", "an old house in the snow")),
    neutral=("a house on a hill", "a dog in a park", "a red car at night", "a tree in the snow"),
)


def _pipe_and_family(tiny_model, family_name):
    from benchmark.models.loading import detect_family, load_pipeline, resolve_model

    folder = tiny_model(family_name)
    family = detect_family(resolve_model(str(folder)))
    return load_pipeline(folder, "float32", "cpu"), family


def _run(pipe, settings, prompt="a church in the snow", seed=3):
    out = pipe(prompt=[prompt], generator=torch.Generator().manual_seed(seed), output_type="latent", **settings)
    return out.frames if hasattr(out, "frames") else out[0]


@pytest.mark.parametrize("family_name", ["cogvideox", "wan", "hunyuanvideo", "zeroscope"])
def test_fit_apply_remove_on_tiny_pipelines(tiny_model, tmp_path, family_name):
    from tiny_pipelines import TINY_CALL_SETTINGS

    pipe, family = _pipe_and_family(tiny_model, family_name)
    pipe.set_progress_bar_config(disable=True)
    settings = dict(TINY_CALL_SETTINGS[family_name])
    original = {n: m.weight.detach().clone() for _, n, m in refusal_sites(pipe, family)}
    base = _run(pipe, settings)

    eraser = RefusalVector(RefusalConfig(steps_recorded="all"), [CONCEPT])
    eraser.run_context = RunContext(generation=settings)
    eraser.fit(pipe, family, tmp_path / "artifact")
    report = (tmp_path / "artifact" / "refusal.json").read_text()
    assert '"samples": 6' in report  # 3 pairs x 2 recorded steps

    eraser.apply(pipe, family, tmp_path / "artifact")
    folded = _run(pipe, settings)
    edited = [n for n, w in original.items() if not torch.equal(dict((a, m) for _, a, m in refusal_sites(pipe, family))[n].weight, w)]
    assert len(edited) >= 1 and set(edited) == set(eraser.settings()["sites"])
    eraser.remove(pipe, family)
    for _, name, module in refusal_sites(pipe, family):
        assert torch.equal(module.weight, original[name])
    assert torch.equal(_run(pipe, settings), base)

    hooked_eraser = RefusalVector(RefusalConfig(steps_recorded="all", mode="hook"), [CONCEPT])
    hooked_eraser.apply(pipe, family, tmp_path / "artifact")
    hooked = _run(pipe, settings)
    hooked_eraser.remove(pipe, family)
    assert torch.allclose(folded, hooked, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(folded, base)
    assert torch.equal(_run(pipe, settings), base)


def test_layers_out_of_range_is_one_clear_error(tiny_model, tmp_path):
    from tiny_pipelines import TINY_CALL_SETTINGS

    pipe, family = _pipe_and_family(tiny_model, "cogvideox")
    eraser = RefusalVector(RefusalConfig(layers=(40,)), [CONCEPT])
    eraser.run_context = RunContext(generation=dict(TINY_CALL_SETTINGS["cogvideox"]))
    with pytest.raises(ErasebenchError, match="refusal layer 40 is out of range"):
        eraser.fit(pipe, family, tmp_path / "a")


def test_text_projection_site_on_tiny_cogvideox(tiny_model, tmp_path):
    """CogVideoX option (b): the exact text-only fold at patch_embed.text_proj; remove() restores it."""
    from tiny_pipelines import TINY_CALL_SETTINGS

    pipe, family = _pipe_and_family(tiny_model, "cogvideox")
    pipe.set_progress_bar_config(disable=True)
    settings = dict(TINY_CALL_SETTINGS["cogvideox"])
    weight = pipe.transformer.patch_embed.text_proj.weight.detach().clone()
    eraser = RefusalVector(RefusalConfig(site="text_projection", steps_recorded=1), [CONCEPT])
    eraser.run_context = RunContext(generation=settings)
    eraser.fit(pipe, family, tmp_path / "a")
    eraser.apply(pipe, family, tmp_path / "a")
    assert eraser.settings()["sites"] == ["patch_embed.text_proj"]
    p_hat = __import__("safetensors.torch", fromlist=["load_file"]).load_file(str(tmp_path / "a" / "refusal.safetensors"))
    direction = next(v for k, v in p_hat.items() if k.endswith("p_hat"))
    assert (pipe.transformer.patch_embed.text_proj.weight @ direction).abs().max() <= 1e-5 * weight.norm()
    eraser.remove(pipe, family)
    assert torch.equal(pipe.transformer.patch_embed.text_proj.weight, weight)
    with pytest.raises(ErasebenchError, match="defines no edit site"):
        RefusalVector(RefusalConfig(site="nonexistent"), [CONCEPT]).check_family(family)

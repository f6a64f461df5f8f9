"""The refusal-vector eraser (docs/erasers/refusal.md): the fold and cPCA math, the automatic choice of edit
sites and strength on a toy linear denoiser, and fit/apply/remove on tiny pipelines."""

from __future__ import annotations

import pytest
import torch

from baselines.refusal import (
    Candidate,
    RefusalConfig,
    RefusalVector,
    Score,
    Site,
    block_candidates,
    choose,
    contrastive_directions,
    edit_sites,
    fold_weight,
    low_rank_direction,
    orthonormal_basis,
    pool_tokens,
    project_out,
    select_edit,
    selection_scores,
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


def test_fold_at_half_strength_equals_hand_computed_numbers():
    """W - lam (W p) p^T written out: W = [[1, 2], [3, 4]], p = (0.6, 0.8), lam = 0.5. W p = (2.2, 5.0);
    (W p) p^T = [[1.32, 1.76], [3.0, 4.0]]; half of it off W leaves [[0.34, 1.12], [1.5, 2.0]]. The pre-hook form
    on x = (1, 1): x.p = 1.4, x - 0.5 * 1.4 p = (0.58, 0.44), and W (0.58, 0.44) = (1.46, 3.5) = folded W x."""
    w = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    basis = torch.tensor([[0.6], [0.8]])
    assert torch.allclose(fold_weight(w, basis, 0.5), torch.tensor([[0.34, 1.12], [1.5, 2.0]]), rtol=0, atol=1e-6)
    x = torch.tensor([1.0, 1.0])
    assert torch.allclose(project_out(x, basis, 0.5), torch.tensor([0.58, 0.44]), rtol=0, atol=1e-6)
    assert torch.allclose(fold_weight(w, basis, 0.5) @ x, torch.tensor([1.46, 3.5]), rtol=0, atol=1e-6)


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


# ---- automatic choice of sites and strength, on a toy linear denoiser ---------------------------------
#
# f(e) = [A1 e_1 ; A2 e_2] for a prompt embedding e = [e_1 ; e_2]: two linear sites writing to orthogonal
# output blocks. The concept is planted in site 1 only: u_i = s_i + [v ; 0], v = 2 x0 (x0 the first axis of
# e_1), and every safe half has no x0 component. Neutral prompts carry +-0.4 along x0 and +-3 along w (the
# first axis of e_2). With p_hat = x0 at site 1 and w at site 2, by hand:
#   site 1, lam: a(u_i) - f(u_i) = -lam A1 v = lam (f(s_i) - f(u_i))  -> erasure = lam;
#                collateral = lam * mean(0,0,0,0, .4,.4,.4,.4) |A1 x0| / |A1 v| = 0.1 lam;
#   site 2, lam: moves only the second output block -> erasure = 0;
#                collateral = lam * mean(0,0,0,0, 3,3,3,3) |A2 w| / |A1 v| = 0.75 lam |A2 w| / |A1 x0|.

D = 6


def _toy():
    torch.manual_seed(20)
    site1, site2 = torch.nn.Linear(D, 5), torch.nn.Linear(D, 5)
    g = torch.Generator().manual_seed(21)

    def off_axis(n):  # random rows with no component on the first axis
        x = torch.randn(n, D, generator=g)
        x[:, 0] = 0.0
        return x

    safe = torch.cat([off_axis(4), off_axis(4)], dim=1)
    unsafe = safe.clone()
    unsafe[:, 0] += 2.0
    neutral = torch.cat([off_axis(4), off_axis(4)], dim=1)
    neutral[:, 0] = torch.tensor([0.4, -0.4, 0.4, -0.4])
    neutral[:, D] = torch.tensor([3.0, -3.0, -3.0, 3.0])

    def f(e):
        with torch.no_grad():
            return torch.cat([site1(e[:, :D]), site2(e[:, D:])], dim=1)

    def outputs():
        return f(unsafe), f(safe), f(neutral)

    axis = torch.zeros(D, 1)
    axis[0] = 1.0
    modules = {"site1": site1, "site2": site2}
    bases = {"site1": axis, "site2": axis.clone()}
    candidates = [Candidate("site1", "toy", ("site1",)), Candidate("site2", "toy", ("site2",))]
    ratio2 = 0.75 * float(site2.weight.detach()[:, 0].norm() / site1.weight.detach()[:, 0].norm())
    return candidates, modules, bases, outputs, ratio2


def _scores(scores):
    return {(s.candidate.label, s.lam): (s.erasure, s.collateral) for s in scores}


def test_selector_picks_the_site_that_holds_the_concept_within_budget():
    candidates, modules, bases, outputs, ratio2 = _toy()
    weights = {n: m.weight.detach().clone() for n, m in modules.items()}
    grid = (0.5, 0.75, 1.0, 1.25, 1.5)
    chosen, scores = select_edit(candidates, modules, bases, outputs, grid, budget=0.12, finalists=1)
    assert (chosen.candidate.label, chosen.lam) == ("site1", 1.0)
    assert chosen.erasure == pytest.approx(1.0, abs=1e-5) and chosen.collateral == pytest.approx(0.1, abs=1e-5)
    table = _scores(scores)
    # both screened at lam 1; only the finalist (site 1) gets the whole grid
    assert set(table) == {("site1", lam) for lam in grid} | {("site2", 1.0)}
    for lam in grid:
        assert table[("site1", lam)] == pytest.approx((lam, 0.1 * lam), abs=1e-5)
    assert table[("site2", 1.0)] == pytest.approx((0.0, ratio2), abs=1e-5)
    for name, module in modules.items():  # every trial fold was undone, bit for bit
        assert torch.equal(module.weight, weights[name])


def test_selector_budget_sets_the_strength():
    candidates, modules, bases, outputs, _ = _toy()
    chosen, _ = select_edit(candidates, modules, bases, outputs, (0.5, 1.0, 1.5), budget=0.2, finalists=1)
    assert (chosen.candidate.label, chosen.lam) == ("site1", 1.5)
    assert chosen.erasure == pytest.approx(1.5, abs=1e-5) and chosen.collateral == pytest.approx(0.15, abs=1e-5)
    # no edit fits: the least collateral one
    chosen, scores = select_edit(candidates, modules, bases, outputs, (0.5, 1.0, 1.5), budget=0.01, finalists=2)
    assert chosen.collateral == min(s.collateral for s in scores) > 0.01
    assert (chosen.candidate.label, chosen.lam) == ("site1", 0.5)
    assert chosen.collateral == pytest.approx(0.05, abs=1e-5)


def test_screen_strength_stays_inside_the_grid():
    candidates, modules, bases, outputs, _ = _toy()
    _, scores = select_edit(candidates, modules, bases, outputs, (0.5, 0.75), budget=1.0, finalists=1)
    assert {s.lam for s in scores} == {0.5, 0.75}
    assert {(s.candidate.label, s.lam) for s in scores} == {("site1", 0.75), ("site2", 0.75), ("site1", 0.5)}


def test_selection_scores_by_hand():
    # one pair: f(u) = (0, 0), f(s) = (2, 0); after: a(u) = (1.5, 1); kept prompts move by 0.5 and 1.5
    fu, fs = torch.tensor([[0.0, 0.0]]), torch.tensor([[2.0, 0.0]])
    keep = torch.tensor([[2.0, 0.0], [5.0, 5.0]])
    after_keep = keep + torch.tensor([[0.0, 0.5], [1.5, 0.0]])
    erasure, collateral = selection_scores(fu, fs, keep, torch.tensor([[1.5, 1.0]]), after_keep)
    assert erasure == pytest.approx(0.75) and collateral == pytest.approx(1.0 / 2.0)


def test_choose_tie_breaks():
    c = Candidate("a", "toy", ("a",))
    scores = [Score(c, 1.0, 0.5, 0.2), Score(c, 0.5, 0.5, 0.1), Score(c, 1.5, 0.9, 0.4)]
    assert choose(scores, 0.3).lam == 0.5  # equal erasure: less collateral
    assert choose(scores, 0.5).lam == 1.5
    assert choose(scores, 0.05).lam == 0.5  # nothing fits: least collateral


def test_block_candidates_are_each_block_and_the_last_two():
    linear = torch.nn.Linear(2, 2)
    sites = [Site(f"b.{i}", f"b.{i}.{j}", linear, "k") for i in range(3) for j in ("to_k", "to_v")]
    labels = [(c.label, c.sites) for c in block_candidates(sites, "k")]
    assert labels == [
        ("k:b.0", ("b.0.to_k", "b.0.to_v")), ("k:b.1", ("b.1.to_k", "b.1.to_v")), ("k:b.2", ("b.2.to_k", "b.2.to_v")),
        ("k:b.1+b.2", ("b.1.to_k", "b.1.to_v", "b.2.to_k", "b.2.to_v")),
    ]
    assert [c.label for c in block_candidates(sites[:1], "k")] == ["k"]


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
    pipe = load_pipeline(folder, "float32", "cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe, family


def _run(pipe, settings, prompt="a church in the snow", seed=3):
    out = pipe(prompt=[prompt], generator=torch.Generator().manual_seed(seed), output_type="latent", **settings)
    return out.frames if hasattr(out, "frames") else out[0]


def _linears(pipe, family):
    return {s.name: s for kind in ("prompt_linear", "text_projection") for s in edit_sites(pipe, family, kind, strict=False)}


@pytest.mark.parametrize("family_name", ["cogvideox", "wan", "hunyuanvideo", "zeroscope"])
def test_automatic_fit_apply_remove_on_tiny_pipelines(tiny_model, tmp_path, family_name):
    import json

    from tiny_pipelines import TINY_CALL_SETTINGS

    pipe, family = _pipe_and_family(tiny_model, family_name)
    settings = dict(TINY_CALL_SETTINGS[family_name])
    original = {n: s.module.weight.detach().clone() for n, s in _linears(pipe, family).items()}
    base = _run(pipe, settings)

    eraser = RefusalVector(RefusalConfig(steps_recorded="all", lam_grid=(0.5, 1.0)), [CONCEPT])
    eraser.run_context = RunContext(generation=settings)
    eraser.fit(pipe, family, tmp_path / "artifact")
    report = json.loads((tmp_path / "artifact" / "refusal.json").read_text())
    assert all(v["samples"] == 6 for v in report["sites"].values())  # 3 pairs x 2 recorded steps
    selection = report["selection"]
    assert selection["held_out"] and selection["scores"]
    chosen = (selection["candidate"], selection["lam"])
    assert chosen in {(s["candidate"], s["lam"]) for s in selection["scores"]}
    assert report["lam"] == selection["lam"] in (0.5, 1.0)
    if selection["within_budget"]:
        assert selection["collateral"] <= selection["budget"]
    n_blocks = len({s.block for s in edit_sites(pipe, family, "prompt_linear")})
    labels = {s["candidate"] for s in selection["scores"]}
    assert sum(label.startswith("prompt_linear") for label in labels) == n_blocks + (n_blocks >= 2)
    # a text projection is a candidate only where it is a linear layer (CogVideoX's text_proj)
    assert ("text_projection" in labels) == (family_name == "cogvideox")
    for name, w in original.items():  # the trial folds were undone
        assert torch.equal(_linears(pipe, family)[name].module.weight, w)

    eraser.apply(pipe, family, tmp_path / "artifact")
    folded = _run(pipe, settings)
    edited = [n for n, w in original.items() if not torch.equal(_linears(pipe, family)[n].module.weight, w)]
    assert set(edited) == set(eraser.settings()["sites"]) == set(report["edit_sites"])
    assert eraser.settings()["selection"] == selection and eraser.settings()["lam"] == selection["lam"]
    eraser.remove(pipe, family)
    for name, w in original.items():
        assert torch.equal(_linears(pipe, family)[name].module.weight, w)
    assert torch.equal(_run(pipe, settings), base)

    hooked_eraser = RefusalVector(RefusalConfig(steps_recorded="all", lam_grid=(0.5, 1.0), mode="hook"), [CONCEPT])
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


def test_fixed_text_projection_site_on_tiny_cogvideox(tiny_model, tmp_path):
    """CogVideoX option (b), the shapes leaderboard row: site and lam given, so nothing is selected."""
    from safetensors.torch import load_file
    from tiny_pipelines import TINY_CALL_SETTINGS

    pipe, family = _pipe_and_family(tiny_model, "cogvideox")
    settings = dict(TINY_CALL_SETTINGS["cogvideox"])
    weight = pipe.transformer.patch_embed.text_proj.weight.detach().clone()
    eraser = RefusalVector(RefusalConfig(site="text_projection", lam=1.0, steps_recorded=1), [CONCEPT])
    eraser.run_context = RunContext(generation=settings)
    eraser.fit(pipe, family, tmp_path / "a")
    eraser.apply(pipe, family, tmp_path / "a")
    assert eraser.settings()["sites"] == ["patch_embed.text_proj"]
    assert eraser.settings()["selection"] == {"candidate": "text_projection", "lam": 1.0, "fixed": True}
    tensors = load_file(str(tmp_path / "a" / "refusal.safetensors"))
    direction = next(v for k, v in tensors.items() if k.endswith("p_hat"))
    assert (pipe.transformer.patch_embed.text_proj.weight @ direction).abs().max() <= 1e-5 * weight.norm()
    eraser.remove(pipe, family)
    assert torch.equal(pipe.transformer.patch_embed.text_proj.weight, weight)
    with pytest.raises(ErasebenchError, match="defines no edit site"):
        RefusalVector(RefusalConfig(site="nonexistent"), [CONCEPT]).check_family(family)


def test_batched_collection_matches_one_prompt_per_call(tiny_model, tmp_path):
    from safetensors.torch import load_file
    from tiny_pipelines import TINY_CALL_SETTINGS

    pipe, family = _pipe_and_family(tiny_model, "cogvideox")
    directions = []
    for batch_size in (1, 8):
        eraser = RefusalVector(RefusalConfig(layers=(0, 1), lam=1.0, batch_size=batch_size), [CONCEPT])
        eraser.run_context = RunContext(generation=dict(TINY_CALL_SETTINGS["cogvideox"]))
        eraser.fit(pipe, family, tmp_path / f"b{batch_size}")
        directions.append(load_file(str(tmp_path / f"b{batch_size}" / "refusal.safetensors")))
    assert directions[0].keys() == directions[1].keys() and len(directions[0]) == 6
    for key in directions[0]:
        assert torch.allclose(directions[0][key], directions[1][key], rtol=1e-4, atol=1e-5)


def test_sequential_refit_changes_only_later_blocks(tiny_model, tmp_path):
    from safetensors.torch import load_file
    from tiny_pipelines import TINY_CALL_SETTINGS

    pipe, family = _pipe_and_family(tiny_model, "cogvideox")
    out = {}
    for sequential in (False, True):
        eraser = RefusalVector(RefusalConfig(layers=(0, 1), lam=1.0, sequential=sequential), [CONCEPT])
        eraser.run_context = RunContext(generation=dict(TINY_CALL_SETTINGS["cogvideox"]))
        eraser.fit(pipe, family, tmp_path / str(sequential))
        out[sequential] = load_file(str(tmp_path / str(sequential) / "refusal.safetensors"))
    first, second = (f"church::transformer_blocks.{i}.ff.net.0.proj::p_hat" for i in (0, 1))
    assert torch.equal(out[False][first], out[True][first])
    assert not torch.allclose(out[False][second], out[True][second])

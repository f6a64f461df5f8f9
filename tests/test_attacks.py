"""Attacks (docs/attacks.md) on the shipped shapes model's own text encoder and pipeline: each improves its
objective on a case whose answer is known, the same seed gives the same attack, the budget bounds the work,
and bad attack options are one line with exit code 2."""

from __future__ import annotations

import pytest
import torch

from benchmark.attacks.base import ATTACKS, AttackTarget, TextSide
from benchmark.attacks.ring_a_bell import RingABell
from benchmark.attacks.unlearndiffatk import UnlearnDiffAtk, project_simplex
from benchmark.models.base import SHAPES_MODEL_DIR
from benchmark.specs import ConceptSpec, PromptRecord

CROSS = ConceptSpec(
    name="cross", display_name="cross", kind="shape", labels=("cross",),
    pairs=(("the red cross moves left", "the red circle moves left"), ("green cross slides up", "green square slides up")),
)


@pytest.fixture(scope="module")
def pipe():
    from benchmark.models.loading import load_pipeline

    return load_pipeline(SHAPES_MODEL_DIR, "float32", "cpu")


@pytest.fixture(scope="module")
def text(pipe):
    return TextSide(pipe.tokenizer, pipe.text_encoder, 16)


def record(prompt: str, pid: str = "p0") -> PromptRecord:
    return PromptRecord(suite="t", prompt_id=pid, prompt=prompt, category="cross", target_concept="cross",
                        extra={"shape": "cross"})


def text_target(text, records, pipe=None, judge=None) -> AttackTarget:
    return AttackTarget(
        pipe=pipe, family=None, eraser=None, concepts=[CROSS], records=records,
        seeds={r.prompt_id: 7 for r in records}, shown_before={}, call_kwargs={}, text=text, judge=judge,
    )


# ---- Ring-A-Bell ---------------------------------------------------------------------------------------------


def test_ring_a_bell_finds_a_known_prompt(text):
    """η = 0 and K = the prompt's word count: the prompt itself scores 0, and the search closes most of the gap."""
    prompt = "red cross slides up"
    attack = RingABell.from_args({"eta": 0.0, "length": 4, "population": 60, "generations": 40, "seed": 1})
    goal = text.encode(torch.tensor([text.ids(prompt)]))[0]
    import numpy as np

    assert attack.fitness(text, goal, np.array([text.word_ids(prompt)]))[0] == pytest.approx(0.0, abs=1e-6)
    best, history, _ = attack.search(text, goal, 0)
    assert history[-1] < 0.5 * history[0]
    assert attack.fitness(text, goal, best[None])[0] == pytest.approx(history[-1], rel=1e-4)


def test_ring_a_bell_same_seed_same_attack_and_budget(text, monkeypatch):
    records = [record("a red cross moving left"), record("the blue cross moves up", "p1")]
    args = {"population": 20, "generations": 6, "seed": 3}
    scored = []
    original = RingABell.fitness

    def counting(self, text_side, goal, population):
        scored.append(len(population))
        return original(self, text_side, goal, population)

    monkeypatch.setattr(RingABell, "fitness", counting)
    first = RingABell.from_args(args).run(text_target(text, records))
    assert len(scored) == 2 * args["generations"]  # one scoring per generation and prompt
    assert sum(scored) == sum(o.objective_evaluations for o in first)
    # each kept parent adds at most two children: a generation scores at most 1.5 x population
    for o in first:
        assert o.objective_evaluations <= args["population"] * (1 + 1.5 * (args["generations"] - 1))
        assert o.objective_end <= o.objective_start
    again = RingABell.from_args(args).run(text_target(text, records))
    assert [o.attacked for o in first] == [o.attacked for o in again]
    other = RingABell.from_args({**args, "seed": 4}).run(text_target(text, records))
    assert [o.attacked for o in first] != [o.attacked for o in other]


# ---- UnlearnDiffAtk ------------------------------------------------------------------------------------------


def test_project_simplex_is_the_euclidean_projection():
    u = torch.tensor([[0.5, 0.2, -0.3, 0.9], [0.25, 0.25, 0.25, 0.25], [3.0, 0.0, 0.0, 0.0]])
    p = project_simplex(u)
    assert torch.allclose(p.sum(-1), torch.ones(3)) and (p >= 0).all()
    assert torch.allclose(p[1], u[1]) and torch.allclose(p[2], torch.tensor([1.0, 0, 0, 0]))
    # optimality: p = max(u - tau, 0) with one tau per row
    tau = (u - p)[p > 0]
    assert torch.allclose(tau[:2], tau[:1].expand(2), atol=1e-6)


class _Unerased:
    def remove(self, pipe, family):
        pass

    def apply(self, pipe, family, artifact_dir):
        pass


class _ReferenceFrom(UnlearnDiffAtk):
    """The reference video comes from another prompt (the known answer: prepend the missing word)."""

    reference = "red cross slides up"

    def reference_prompt(self, record):
        return self.reference


def udatk_target(pipe, text, records, judge):
    from benchmark.models.cogvideox import Family

    target = text_target(text, records, pipe, judge)
    target.family = Family()
    target.eraser = _Unerased()
    target.call_kwargs = {"num_frames": 9, "height": 32, "width": 32, "num_inference_steps": 4, "guidance_scale": 5.0,
                          "max_sequence_length": 16}
    return target


def test_unlearndiffatk_finds_the_missing_word_and_is_seeded(pipe, text):
    """The reference video is of "red cross slides up" and the attacked prompt lacks the shape: the known answer
    is to prepend "cross" (the lowest loss of all 37 tokens here), and the judge says so when the prompt has it."""
    calls = []

    def judge(prompts, records, seeds):
        calls.append(list(prompts))
        return ["cross" in p.split() for p in prompts]

    args = {"k": 1, "timesteps": 3, "iterations": 1, "lr": 0.1, "probes": 2, "seed": 0}
    records = [record("red slides up")]
    first = _ReferenceFrom.from_args(args).run(udatk_target(pipe, text, records, judge))[0]
    assert first.found_in_search and first.attacked.split()[0] == "cross", first
    assert first.objective_end < first.objective_start
    # it stops at the first success: one check per timestep visited, `iterations` steps before each
    assert first.generations == len(calls) <= args["timesteps"]
    assert first.objective_evaluations == first.generations * args["iterations"]
    again = _ReferenceFrom.from_args(args).run(udatk_target(pipe, text, records, judge))[0]
    assert again.attacked == first.attacked and again.extra["tokens"] == first.extra["tokens"]
    assert again.objective_end == pytest.approx(first.objective_end, rel=1e-5)


def test_unlearndiffatk_spends_its_budget_and_skips_shown(pipe, text):
    records = [record("red slides up"), record("a red cross moving left", "p1")]
    target = udatk_target(pipe, text, records, lambda prompts, recs, seeds: [False] * len(prompts))
    target.shown_before = {"p1": True}
    args = {"k": 2, "timesteps": 2, "iterations": 2}
    out = _ReferenceFrom.from_args(args).run(target)
    assert out[0].found_in_search is False
    assert out[0].objective_evaluations == args["timesteps"] * args["iterations"]
    assert out[0].generations == args["timesteps"] and len(out[0].extra["tokens"]) == 2
    assert out[1].skipped and out[1].attacked == records[1].prompt and out[1].generations == 0


# ---- bad options ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--attack", "nope"], "unknown attack 'nope'"),
        (["--attack", "ring-a-bell", "--attack-arg", "population=1"], "'population'"),
        (["--attack", "ring-a-bell", "--attack-arg", "bogus=3"], "'bogus'"),
        (["--attack", "unlearndiffatk", "--attack-arg", "iterations=zero"], "'iterations'"),
        (["--attack", "unlearndiffatk", "--attack-arg", "noequals"], "KEY=VALUE"),
        ([], "no attack given"),
        (["--attack", "ring-a-bell", "--suite", "no-such-suite"], "no-such-suite"),
        (["--attack", "ring-a-bell", "--attack-arg", "vector_pairs=no-such-pairs"], "no-such-pairs"),
        (["--attack", "ring-a-bell", "--attack-arg", "vector_pairs=shapes"], "has no row with a pair_prompt for cross"),
    ],
)
def test_bad_attack_options_one_line_exit_2(argv, needle, tmp_path):
    from typer.testing import CliRunner

    from benchmark.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["attack", "--method", "none", "--suite", "shapes", *argv, "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.output
    assert not out.exists()


def test_registry_lists_both_attacks(cli):
    assert ATTACKS.names() == ["ring-a-bell", "unlearndiffatk"]
    code, out, _ = cli("list", "attacks", "--json", "--details")
    import json

    rows = {row["name"]: row for row in json.loads(out)["attacks"]}
    assert code == 0 and rows["ring-a-bell"]["budget"] == ["generations", "population"]
    assert rows["ring-a-bell"]["arguments"]["vector_pairs"] == "auto" and rows["unlearndiffatk"]["arguments"]["iterations"] == 40
    assert RingABell.from_args({}).budget() == {"generations": 3000, "population": 200}
    assert UnlearnDiffAtk.from_args({}).budget() == {"timesteps": 50, "iterations": 40}


def test_attacked_prompts_are_a_rerunnable_suite(tmp_path):
    """The attacked suite loads as any suite: same ids, the attacked prompts, the original seeds and extra columns."""
    from benchmark.attacks.run import target_records, write_prompt_suite
    from benchmark.suites import load_suite

    suite = load_suite("shapes")
    targets = target_records(list(suite.records), {"cross"})
    assert len(targets) == 16 and all(r.extra["shape"] == "cross" for r in targets)
    seeds = {r.prompt_id: suite.seed_for(r, 0) for r in targets}
    prompts = {r.prompt_id: f"cross, {r.prompt}" for r in targets}
    path = write_prompt_suite(tmp_path, "attacked", suite, "shapes-test-attack", "test", targets, prompts, seeds)
    loaded = load_suite(str(path))
    assert [r.prompt_id for r in loaded.records] == [r.prompt_id for r in targets]
    for r in loaded.records:
        assert r.prompt == prompts[r.prompt_id] and loaded.seed_for(r, 0) == seeds[r.prompt_id]
        assert r.extra["shape"] == "cross" and r.extra["original_prompt"] != r.prompt
    assert loaded.spec.metrics == suite.spec.metrics and loaded.spec.concepts == ("cross",)
    assert loaded.spec.generation_for("cogvideox") == suite.spec.generation_for("cogvideox")


# ---- Ring-A-Bell's concept vector ----------------------------------------------------------------------------


def test_weighted_concept_vector_is_the_weighted_mean(text):
    from benchmark.attacks.ring_a_bell import concept_vector

    pairs = [("red cross slides up", "red circle slides up"), ("blue cross moves left", "blue square moves left")]
    diffs = [text.encode(torch.tensor([text.ids(a)]))[0] - text.encode(torch.tensor([text.ids(b)]))[0] for a, b in pairs]
    assert torch.allclose(concept_vector(text, pairs), (diffs[0] + diffs[1]) / 2, atol=1e-6)
    assert torch.allclose(concept_vector(text, pairs, [1.0, 3.0]), (diffs[0] + 3 * diffs[1]) / 4, atol=1e-6)


def test_vector_pairs_auto_uses_the_concepts_own_pairs_without_repo_data():
    nudity = ConceptSpec(name="nudity", display_name="nudity", kind="unsafe", pairs=(("a nude person", "a dressed person"),))
    attack = RingABell.from_args({})
    assert attack.vector_pairs([CROSS], None).source == "concept pairs"  # the repo has no cross vector
    missing = attack.vector_pairs([nudity], None)
    assert missing.pairs == (("a nude person", "a dressed person"),) and "data not found" in missing.source
    assert RingABell.from_args({"vector_pairs": "concept"}).vector_pairs([nudity], None).source == "concept pairs"


def test_vector_pairs_auto_reads_the_repos_files(shared_dir):
    """Nudity: 50 rows paired by row, 19 of the notebook's 250 copies dropped; violence: 30 pairs."""
    import csv

    nudity = ConceptSpec(name="nudity", display_name="nudity", kind="unsafe")
    violence = ConceptSpec(name="violence", display_name="violence", kind="unsafe")
    data = shared_dir / "data" / "ring-a-bell"
    got = RingABell.from_args({}).vector_pairs([nudity], str(data))
    parity = RingABell.from_args({"vector_parity": True}).vector_pairs([nudity], str(data))
    assert len(got.pairs) == 50 and sum(got.weights) == 250 - 19 and got.source.startswith("ring-a-bell-concept-vectors")
    source = next(data.rglob("Nudity_prompt.csv"))
    with source.open(newline="") as f:
        people = [row["people"] for row in csv.DictReader(f)]
    for who, (ours, _), (theirs, _) in zip(people, got.pairs, parity.pairs):
        assert (" nan, " in theirs) == (who == "None") and " nan, " not in ours
        assert (ours == theirs) == (who != "None")
    assert [p[1] for p in got.pairs] == [p[1] for p in parity.pairs]  # the prompts without nudity
    both = RingABell.from_args({}).vector_pairs([nudity, violence], str(data))
    assert len(both.pairs) == 80 and RingABell.from_args({}).prepare([violence], str(data))["vector"]["pairs"] == 30


def test_attack_end_to_end_and_side_by_side_html(tmp_path):
    """``erasebench attack`` on shapes, then ``report --format html``: every target prompt's video before and
    after, side by side, with the attacked prompt escaped; attack.json pins the resolved concept vector."""
    import json
    import re

    from markupsafe import escape
    from typer.testing import CliRunner

    from benchmark.cli import app

    out, site = tmp_path / "out", tmp_path / "site"
    args = ["attack", "--method", "negprompt", "--attack", "ring-a-bell", "--suite", "shapes", "--limit", "12",
            "--attack-arg", "generations=2", "--attack-arg", "population=6", "--out", str(out), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(next(out.glob("attacks/*/attack.json")).read_text())
    assert summary["attack"]["inputs"]["vector"]["source"] == "concept pairs" and summary["targets"] >= 1
    result = CliRunner().invoke(app, ["report", str(out / "attacks"), "--format", "html", "--out", str(site)])
    assert result.exit_code == 0, result.output
    page = (site / "index.html").read_text()
    section = page[page.index('<section id="attacks">'):]
    rows = re.findall(r"<tr><td class=\"prompt\">.*?</tr>", section, flags=re.S)
    assert len(rows) == summary["targets"]
    for row, prompt in zip(rows, sorted(summary["prompts"], key=lambda p: not (p["shown_after"] and not p["shown_before"]))):
        sources = re.findall(r'<video src="([^"]+)"', row)
        assert len(sources) == 2 and sources[0] != sources[1] and all((site / s).is_file() for s in sources)
        assert str(escape(prompt["attacked"])) in row and str(escape(prompt["original"])) in row  # as Jinja escapes
    assert f"ASR {summary['asr']:.3f} ({summary['shown_after']}/{summary['targets']})" in section

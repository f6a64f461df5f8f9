"""Concept files (suites/concepts/*.yaml): every file loads, and every concept a suite or a paper erases carries
the refusal vector's built-ins: prompt pairs written as minimal edits and a neutral set, none of them an
evaluation prompt of the suites."""

from __future__ import annotations

import math
import re

import pytest

from benchmark.suites import MissingDataError, BUILTIN_SUITE_DIR, load_concept, load_suite, load_suite_spec

CONCEPTS = sorted(p.stem for p in (BUILTIN_SUITE_DIR / "concepts").glob("*.yaml"))
SUITE_NAMES = sorted(p.stem for p in BUILTIN_SUITE_DIR.glob("*.yaml"))

# the concepts of the papers' tables: SafeSora's five categories, the refusal-vector paper's T2VSafetyBench
# aspects, ESD's ImageNet-10 classes and T2VUnlearning's five face identities
PAPER_CONCEPTS = [
    "nudity", "violence", "racism", "terrorism", "animal_abuse", "public_figures", "copyright",
    "tench", "english_springer", "cassette_player", "chain_saw", "church", "french_horn", "garbage_truck",
    "gas_pump", "golf_ball", "parachute",
    "angela_merkel", "barack_obama", "donald_trump", "joe_biden", "queen_elizabeth_ii",
]  # fmt: skip

# T2VSafetyBench aspect (definition.txt line) -> the concept file that covers it
T2VSB_ASPECTS = {
    1: "nudity", 2: "borderline_pornography", 3: "violence", 4: "gore", 5: "disturbing_content",
    6: "public_figures", 7: "discrimination", 8: "political_sensitivity", 9: "copyright", 10: "illegal_activities",
    11: "misinformation", 12: "sequential_action_risk", 13: "dynamic_variation_risk", 14: "coherent_contextual_risk",
}  # fmt: skip

# SAFREE's video CONCEPT_DICT list lengths (jaehong31/SAFREE@b8b2c3f cogvideox/cogvideox_pipeline.py)
SAFREE_LISTS = {
    "nudity": (6, "Sexual Acts", "Sexual Intercourse"),
    "violence": (13, "Physical Assault", "Self-Harm"),
    "racism": (16, "Racial Discrimination", "Cultural Appropriation"),
    "terrorism": (17, "Extremism", "ISIS"),
    "animal_abuse": (13, "Blood", "Overworking Animals"),
}


def suite_concepts() -> set[str]:
    """Concepts a suite names: its ``concepts`` list and the values of a per-row target-concept table."""
    names: set[str] = set()
    for suite in SUITE_NAMES:
        spec, _ = load_suite_spec(suite)
        names.update(spec.concepts)
        per_row = spec.derive.get(spec.columns.target_concept or "")
        names.update(str(v) for v in (per_row.map.values() if per_row else ()) if v)
    return names


NEEDS_BUILTINS = sorted(suite_concepts() | set(PAPER_CONCEPTS) | set(T2VSB_ASPECTS.values()))


def words(text: str) -> list[str]:
    return re.findall(r"[\w'-]+", text.casefold())


def normal(text: str) -> str:
    return " ".join(words(text))


def mentions(text: str, phrase: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(phrase.casefold())}(?![\w-])", text.casefold()) is not None


@pytest.mark.parametrize("name", CONCEPTS)
def test_every_concept_file_loads(name):
    concept = load_concept(name)
    assert concept.name == name and concept.display_name
    assert len(set(concept.pairs)) == len(concept.pairs), "duplicate pairs"
    assert len(set(concept.neutral)) == len(concept.neutral), "duplicate neutral prompts"
    assert all(p.strip() == p and p for pair in concept.pairs for p in pair)


@pytest.mark.parametrize("name", NEEDS_BUILTINS)
def test_suite_and_paper_concepts_carry_pairs_and_a_neutral_set(name):
    concept = load_concept(name)
    assert len(concept.pairs) >= 5, f"{name}: {len(concept.pairs)} pairs"
    assert len(concept.neutral) >= 20, f"{name}: {len(concept.neutral)} neutral prompts"


@pytest.mark.parametrize("name", [c for c in CONCEPTS if load_concept(c).pairs])
def test_pairs_are_minimal_edits_without_the_concept_on_the_safe_side(name):
    concept = load_concept(name)
    own = [concept.display_name, *concept.keywords]
    for unsafe, safe in concept.pairs:
        assert normal(unsafe) != normal(safe)
        kept = set(words(safe))
        shared = kept & set(words(unsafe))
        assert len(shared) >= len(kept) / 2, f"{name}: not a minimal edit: {unsafe!r} / {safe!r}"
        assert not [w for w in own if mentions(safe, w)], f"{name}: safe half names the concept: {safe!r}"
    for prompt in concept.neutral:
        assert not mentions(prompt, concept.display_name), f"{name}: neutral prompt names the concept: {prompt!r}"


@pytest.mark.parametrize("aspect, name", sorted(T2VSB_ASPECTS.items()))
def test_every_t2vsafetybench_aspect_has_a_complete_concept(aspect, name):
    concept = load_concept(name)
    assert concept.kind == "unsafe"
    assert concept.description and concept.negative_prompt and concept.preserve
    assert 4 <= len(concept.keywords) <= 13, concept.keywords
    assert len(concept.pairs) >= 8 and len(concept.neutral) >= 30


@pytest.mark.parametrize("name", sorted(SAFREE_LISTS))
def test_safesora_keywords_are_safree_lists(name):
    count, first, last = SAFREE_LISTS[name]
    keywords = load_concept(name).keywords
    assert (len(keywords), keywords[0], keywords[-1]) == (count, first, last)
    assert len(set(keywords)) == count


def evaluation_prompts(data_dir) -> dict[str, str]:
    """normalised prompt -> suite, over every suite read from data files (../shared/data) or inline rows;
    generated suites (the shapes world) and files ../shared/data lacks are left out."""
    out: dict[str, str] = {}
    for suite in SUITE_NAMES:
        spec, _ = load_suite_spec(suite)
        if not (spec.source.data_files() or spec.source.inline):
            continue
        try:
            records = load_suite(suite, data_dir=data_dir).records
        except MissingDataError:  # a file ../shared/data does not hold (a Hub file, VBench's prompt list)
            continue
        for r in records:
            texts = [r.prompt] + [v for k, v in r.extra.items() if isinstance(v, str) and k != "definition"]
            for text in texts:
                out.setdefault(normal(text), suite)
    return out


def test_no_builtin_prompt_is_or_nearly_is_an_evaluation_prompt(shared_dir):
    evaluation = evaluation_prompts(shared_dir / "data")
    assert len(evaluation) > 1000
    index: dict[str, list[set[str]]] = {}
    for text in evaluation:
        tokens = set(text.split())
        for token in tokens:
            index.setdefault(token, []).append(tokens)
    clashes = []
    for name in CONCEPTS:
        concept = load_concept(name)
        for prompt in [p for pair in concept.pairs for p in pair] + list(concept.neutral):
            key = normal(prompt)
            if key in evaluation:
                clashes.append(f"{name}: {prompt!r} is in {evaluation[key]}")
                continue
            tokens = set(key.split())
            # prefix filter: Jaccard >= 0.75 needs >= ceil(0.75 n) of the n tokens shared, so a near copy
            # shares at least one of the n - ceil(0.75 n) + 1 rarest ones
            keep = len(tokens) - math.ceil(0.75 * len(tokens)) + 1
            rare = sorted(tokens, key=lambda t: len(index.get(t, ())))[:keep]
            candidates = [other for t in rare for other in index.get(t, ())]
            near = [o for o in candidates if len(tokens & o) / len(tokens | o) >= 0.75]
            if near:
                clashes.append(f"{name}: {prompt!r} nearly copies {' '.join(sorted(near[0]))!r}")
    assert not clashes, "\n".join(clashes)

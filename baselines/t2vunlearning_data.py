"""T2VUnlearning training data: conditioning probes, pseudo data ``x_t`` from the frozen pipeline, prompt sets.

Everything family-specific is left to the pipeline itself (docs/erasers/t2vunlearning.md, steps 2 and 4):

* **Conditioning probe.** The pipeline is called with one prompt and ``guidance_scale=1`` (no CFG) and stopped at
  its first denoiser call; that call's keyword arguments (text embeddings, masks, pooled vectors, rotary tables,
  embedded guidance) are the conditioning of the prompt. A pre-hook on the first text encoder records the token
  ids, which locate the concept tokens.
* **Pseudo data.** ``x_t`` is the denoiser input at step ``k`` of the pipeline's own sampler (its scheduler, CFG
  ``g_s``), run from fresh noise with the adapters off and stopped there (no cache). Steps are counted by
  wrapping ``scheduler.step`` on the instance for the duration of the call.
* **Prompts.** The paper's published training prompts where the release has them (``PUBLISHED_PROMPTS``: the
  nudity prompt pairs, the face templates), read from ``--data-dir``, the data cache or a pinned download; else
  prompts built from the concept file: targets = the first halves of its ``pairs`` (else its keywords), preserve
  prompts = the targets with the concept word replaced by each ``preserve`` concept, the pairs' second halves and
  the preserve names. Augmentation: a local chat LLM through ``transformers`` (step 4), or built-in templates.
"""

from __future__ import annotations

import inspect
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from benchmark.errors import ErasebenchError
from benchmark.hooks import HookSet
from benchmark.specs import ConceptSpec

log = logging.getLogger("erasebench.t2vunlearning")


class _Stop(Exception):
    """Raised inside a denoiser pre-hook to end a pipeline call early."""


@dataclass
class Conditioning:
    """The denoiser call of one prompt, minus the latent and the timestep."""

    prompt: str
    kwargs: dict[str, Any]
    input_ids: list[int]
    valid_ids: int  # ids (from the start) that are real tokens, not padding
    concept_ids: list[int] = field(default_factory=list)  # positions of concept tokens among the ids

    def text_positions(self, text_len: int) -> tuple[list[int], int]:
        """Concept positions and the valid length in the coordinates of a site's ``text_len`` text tokens.

        Pipelines may crop a template prefix off the encoder output (HunyuanVideo's ``crop_start``); the offset
        is ``len(ids) - text_len``.
        """
        offset = len(self.input_ids) - text_len
        if offset < 0:
            raise ErasebenchError(
                f"prompt {self.prompt!r}: the text encoder saw {len(self.input_ids)} tokens but the site has {text_len} text tokens"
            )
        positions = [p - offset for p in self.concept_ids if 0 <= p - offset < text_len]
        valid = min(max(self.valid_ids - offset, 0), text_len)
        return positions, valid


def _flatten_bound(signature: inspect.Signature, args: tuple, kwargs: dict) -> dict[str, Any]:
    bound = signature.bind(*args, **kwargs)
    out: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            raise ErasebenchError("the denoiser was called with extra positional arguments; cannot replay the call")
        else:
            out[name] = value
    return out


def _detach(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, tuple):
        return tuple(_detach(v) for v in value)
    if isinstance(value, list):
        return [_detach(v) for v in value]
    if isinstance(value, dict):
        return {k: _detach(v) for k, v in value.items()}
    return value


def find_token_positions(ids: list[int], tokenizer: Any, words: list[str]) -> list[int]:
    """Positions of ``words`` (each tokenised alone, with and without a leading space, as given and lower-cased)."""
    positions: set[int] = set()
    for word in words:
        variants = {word, " " + word, word.lower(), " " + word.lower()}
        for variant in variants:
            sub = list(tokenizer(variant, add_special_tokens=False)["input_ids"])
            unk = getattr(tokenizer, "unk_token_id", None)
            if not sub or (unk is not None and unk in sub):
                continue
            n = len(sub)
            for i in range(len(ids) - n + 1):
                if ids[i : i + n] == sub:
                    positions.update(range(i, i + n))
    return sorted(positions)


def valid_length(ids: list[int], tokenizer: Any, attention_mask: Any = None) -> int:
    """Real tokens at the start of ``ids``: the encoder's attention mask if it got one, else up to the padding."""
    if attention_mask is not None:
        return int(torch.as_tensor(attention_mask).reshape(-1).sum().item())
    pad = getattr(tokenizer, "pad_token_id", None)
    eos = getattr(tokenizer, "eos_token_id", None)
    if pad is None or pad not in ids:
        return len(ids)
    if pad == eos:  # CLIP-style: the first end-of-text is the real EOS, the rest is padding
        return ids.index(pad) + 1
    return ids.index(pad)


class PipelineDriver:
    """Drives a diffusers video pipeline for training: conditioning probes, ``x_t`` sampling, denoiser replay."""

    def __init__(self, pipe: Any, denoiser_attr: str, text_encoder_attr: str, tokenizer_attr: str, call_kwargs: dict[str, Any]):
        self.pipe = pipe
        self.denoiser = getattr(pipe, denoiser_attr)
        self.text_encoder = getattr(pipe, text_encoder_attr)
        self.tokenizer = getattr(pipe, tokenizer_attr)
        self.signature = inspect.signature(self.denoiser.forward)
        params = list(self.signature.parameters)
        if not params or "timestep" not in self.signature.parameters:
            raise ErasebenchError(f"denoiser {type(self.denoiser).__name__} has no (latent, timestep) call signature")
        self.latent_name = params[0]
        self.call_kwargs = dict(call_kwargs)
        accepted = inspect.signature(pipe.__call__).parameters
        self._accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
        self._accepted = set(accepted)
        self._batch_ok: bool | None = None

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    def _run_until(self, kwargs: dict[str, Any], step: int) -> dict[str, Any]:
        """Call the pipeline and return the first denoiser call made after ``step`` scheduler steps."""
        scheduler = self.pipe.scheduler
        original = scheduler.step
        counter = {"steps": 0}
        captured: dict[str, Any] = {}

        def counting_step(*args: Any, **kw: Any) -> Any:
            counter["steps"] += 1
            return original(*args, **kw)

        def pre_hook(module: Any, args: tuple, kw: dict) -> None:
            if counter["steps"] == step:
                captured["call"] = _flatten_bound(self.signature, args, kw)
                raise _Stop

        hooks = HookSet()
        hooks.pre("stop-at-step", self.denoiser, pre_hook, with_kwargs=True)
        scheduler.step = counting_step
        try:
            self.pipe(**kwargs)
        except _Stop:
            pass
        except TypeError as exc:
            raise ErasebenchError(f"pipeline call for t2vunlearning training failed: {exc}") from None
        finally:
            hooks.clear()
            try:
                del scheduler.step
            except AttributeError:
                pass
        if "call" not in captured:
            raise ErasebenchError(f"the pipeline finished before reaching sampling step {step}")
        return captured["call"]

    def _kwargs(self, **extra: Any) -> dict[str, Any]:
        out = {**self.call_kwargs, **extra, "output_type": "latent"}
        if not self._accepts_any:
            out = {k: v for k, v in out.items() if k in self._accepted}
        return out

    def probe(self, prompt: str, steps: int, concept_words: list[str]) -> Conditioning:
        seen: list[tuple[Any, Any]] = []

        def te_hook(module: Any, args: tuple, kw: dict) -> None:
            ids = args[0] if args else kw.get("input_ids")
            seen.append((ids, kw.get("attention_mask")))

        with HookSet() as hooks:
            hooks.pre("record-ids", self.text_encoder, te_hook, with_kwargs=True)
            generator = torch.Generator(device=self.device).manual_seed(0)
            call = self._run_until(self._kwargs(prompt=prompt, guidance_scale=1.0, num_inference_steps=steps, generator=generator), 0)
        if not seen or seen[0][0] is None:
            raise ErasebenchError("the pipeline did not call its text encoder with input ids; cannot locate concept tokens")
        ids_tensor, mask = seen[0]
        ids = [int(i) for i in ids_tensor[0].tolist()]
        return Conditioning(
            prompt=prompt,
            kwargs={k: _detach(v) for k, v in call.items()},
            input_ids=ids,
            valid_ids=valid_length(ids, self.tokenizer, None if mask is None else mask[0]),
            concept_ids=find_token_positions(ids, self.tokenizer, concept_words) if prompt else [],
        )

    def latent_shape(self, cond: Conditioning) -> tuple[int, ...]:
        return tuple(cond.kwargs[self.latent_name].shape)

    def sample_xt(self, prompts: list[str], step: int, steps: int, guidance: float, seeds: list[int]) -> tuple[torch.Tensor, float]:
        """``x_t`` after ``step`` of ``steps`` sampler steps with CFG ``guidance``, one row per prompt, and ``t_k``."""
        generators = [torch.Generator(device=self.device).manual_seed(int(s)) for s in seeds]
        call = self._run_until(
            self._kwargs(prompt=list(prompts), guidance_scale=guidance, num_inference_steps=steps, generator=generators), step
        )
        latent = call[self.latent_name][: len(prompts)].detach().clone()
        timestep = call["timestep"]
        value = float(timestep.reshape(-1)[0].item()) if isinstance(timestep, torch.Tensor) else float(timestep)
        return latent, value

    def call_many(self, pairs: list[tuple[Conditioning, torch.Tensor]], timestep: float) -> list[torch.Tensor]:
        """Several (conditioning, latent) rows in one batched denoiser call (same timestep).

        Tensors whose first dimension is the probe's batch (1) are concatenated; the others (rotary tables,
        scalar timesteps) are shared. Falls back to one call per row when the batched call fails.
        """
        if len(pairs) == 1 or self._batch_ok is False:
            return [self.call(c, x, timestep) for c, x in pairs]
        merged: dict[str, Any] = {}
        for key, first in pairs[0][0].kwargs.items():
            if isinstance(first, torch.Tensor) and first.dim() >= 1 and first.shape[0] == 1:
                merged[key] = torch.cat([c.kwargs[key] for c, _ in pairs], dim=0)
            else:
                merged[key] = first
        batch = Conditioning(prompt="<batch>", kwargs=merged, input_ids=[], valid_ids=0)
        try:
            out = self.call(batch, torch.cat([x for _, x in pairs], dim=0), timestep)
        except (RuntimeError, ValueError):
            self._batch_ok = False
            return [self.call(c, x, timestep) for c, x in pairs]
        if out.shape[0] != len(pairs):
            self._batch_ok = False
            return [self.call(c, x, timestep) for c, x in pairs]
        self._batch_ok = True
        return list(out.split(1, dim=0))

    def call(self, cond: Conditioning, latent: torch.Tensor, timestep: float) -> torch.Tensor:
        kwargs = dict(cond.kwargs)
        ref_latent = kwargs[self.latent_name]
        kwargs[self.latent_name] = latent.to(device=ref_latent.device, dtype=ref_latent.dtype)
        ref_t = kwargs["timestep"]
        kwargs["timestep"] = torch.full_like(ref_t, timestep) if isinstance(ref_t, torch.Tensor) else type(ref_t)(timestep)
        if "return_dict" in self.signature.parameters:
            kwargs["return_dict"] = False
        out = self.denoiser(**kwargs)
        if isinstance(out, tuple):
            return out[0]
        return getattr(out, "sample", out)


# ---- prompts -------------------------------------------------------------------------------------


def concept_words(concepts: list[ConceptSpec]) -> list[str]:
    words: list[str] = []
    for c in concepts:
        for w in (*c.keywords, c.display_name, c.name):
            if w and w not in words:
                words.append(w)
    return words


def _word_re(word: str) -> re.Pattern:
    return re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)


def default_targets(concepts: list[ConceptSpec]) -> list[str]:
    out: list[str] = []
    for c in concepts:
        found = [p[0] for p in c.pairs] or list(c.keywords) or [c.display_name]
        out.extend(p for p in found if p not in out)
    return out


def default_preserves(concepts: list[ConceptSpec], targets: list[str]) -> list[str]:
    out: list[str] = []

    def add(p: str) -> None:
        if p and p not in out and p not in targets:
            out.append(p)

    words = concept_words(concepts)
    for c in concepts:
        for prompt in targets:
            for word in words:
                pattern = _word_re(word)
                if pattern.search(prompt):
                    for other in c.preserve:
                        add(pattern.sub(other, prompt))
                    break
        for pair in c.pairs:
            add(pair[1])
        for other in c.preserve:
            add(other)
    return out


# ---- the paper's published training prompts ------------------------------------------------------

RELEASE_REPO = "TobisawaMisakii/T2VUnlearning"
RELEASE_COMMIT = "f626c6f10f72c611d2ab739ff23c1a933a1671d0"


@dataclass(frozen=True)
class PromptFile:
    """One file of the release at ``RELEASE_REPO@RELEASE_COMMIT``: ``pairs`` (``prompt`` / ``normal prompt``
    columns: target and preserve prompt) or ``templates`` (``prompt`` column: actions without a subject, the
    identity's name goes in front)."""

    path: str
    sha256: str
    form: Literal["pairs", "templates"]

    def origin(self) -> str:
        return f"{RELEASE_REPO}@{RELEASE_COMMIT[:7]} {self.path}"


# Which concepts have published training prompts (docs/erasers/t2vunlearning.md "Training prompts"): a concept
# name first, then a concept kind.
PUBLISHED_PROMPTS: dict[str, PromptFile] = {
    "nudity": PromptFile(
        "evaluation/data/10prompt_pairs.csv", "7b46b3523c0e1d2481c4960d93bdc99d8c93cd7b3cd48acbc5529f4fd0d40e7e", "pairs"
    ),
    "identity": PromptFile(
        "evaluation/data/face_ori.csv", "5ac4f98a956a26622fba0bf507beeaff3c7885841888123dfb13e4dbef74e13b", "templates"
    ),
}


def published_file(concept: ConceptSpec) -> PromptFile | None:
    return PUBLISHED_PROMPTS.get(concept.name) or PUBLISHED_PROMPTS.get(concept.kind)


def read_prompt_file(file: PromptFile, data_dir: str | Path | None) -> list[dict[str, Any]]:
    """The file's rows, found like a suite's data file (``--data-dir`` in the release's layout or by name, the data
    cache, else downloaded from the pinned commit unless offline) and checked against its sha256.

    Raises ``MissingDataError`` when it is nowhere and cannot be downloaded, ``SuiteError`` when a copy is wrong."""
    from benchmark.suites import SourceFile, SourceSpec, SuiteSpec, fetch_source_files, parse_data

    source = SourceSpec(repo=RELEASE_REPO, commit=RELEASE_COMMIT, files=(SourceFile(path=file.path, sha256=file.sha256),), format="csv")
    spec = SuiteSpec(name="t2vunlearning-training-prompts", version="1", description="T2VUnlearning training prompts", source=source)
    ((_, path, raw),) = fetch_source_files(spec, Path(__file__), data_dir)
    return parse_data(source, raw, path.name)


def published_prompts(concept: ConceptSpec, file: PromptFile, rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Targets and preserve prompts of one concept from a published file.

    ``pairs``: targets = the ``prompt`` column, preserve = the ``normal prompt`` column, then the concept's
    ``preserve`` names. ``templates``: each distinct template once, in file order; targets = ``"<display name>
    <template>"``, preserve = ``"<preserve concept> <template>"`` for every ``preserve`` entry."""
    if file.form == "pairs":
        missing = {"prompt", "normal prompt"} - set(rows[0] if rows else {})
        if missing:
            raise ErasebenchError(f"{file.origin()} has no column {sorted(missing)[0]!r}; the pinned file is malformed")
        targets = [r["prompt"].strip() for r in rows]
        preserves = [r["normal prompt"].strip() for r in rows] + list(concept.preserve)
        return targets, preserves
    templates: list[str] = []
    for r in rows:
        t = r.get("prompt", "").strip()
        if t and t not in templates:
            templates.append(t)
    targets = [f"{concept.display_name} {t}" for t in templates]
    preserves = [f"{other} {t}" for other in concept.preserve for t in templates]
    return targets, preserves


@dataclass
class TrainingPrompts:
    """The prompt sets a fit trains on, and where each concept's came from (pinned in ``settings()``)."""

    targets: list[str]
    preserves: list[str]
    sources: list[dict[str, Any]]

    def data_pins(self) -> list[dict[str, str]]:
        """The published files used (path and sha256): part of the eraser's fingerprint."""
        return [{"file": s["file"], "sha256": s["sha256"]} for s in self.sources if s["source"] == "published"]


def training_prompts(concepts: list[ConceptSpec], mode: str, data_dir: str | Path | None) -> TrainingPrompts:
    """Per concept: the published prompts (``mode`` ``auto`` or ``published``) or the concept-derived ones
    (``concept``, or ``auto`` when the concept has no published file). ``auto`` falls back to the concept-derived
    prompts with one log line when the published file is missing; ``published`` makes that an error."""
    from benchmark.suites import MissingDataError

    targets: list[str] = []
    preserves: list[str] = []
    sources: list[dict[str, Any]] = []

    def add(items: list[str], into: list[str]) -> None:
        into.extend(p for p in items if p not in into)

    erased_words = [_word_re(w) for w in concept_words(concepts)]
    for c in concepts:
        file = published_file(c) if mode != "concept" else None
        if mode == "published" and file is None:
            raise ErasebenchError(
                f"t2vunlearning prompt_source=published: concept {c.name!r} (kind {c.kind}) has no published training "
                f"prompts (published: {', '.join(PUBLISHED_PROMPTS)}); use prompt_source=auto or concept"
            )
        note = None
        if file is not None:
            try:
                rows = read_prompt_file(file, data_dir)
            except MissingDataError as exc:
                if mode == "published":
                    raise ErasebenchError(f"t2vunlearning prompt_source=published: {exc}") from None
                note = str(exc)
                log.warning(
                    "t2vunlearning: the paper's training prompts for %r (%s) are not available, so it trains on prompts "
                    "built from the concept file (recorded as prompt source 'concept-fallback'): %s", c.name, file.origin(), exc,
                )
            else:
                t, p = published_prompts(c, file, rows)
                add(t, targets)
                add(p, preserves)
                sources.append({"concept": c.name, "source": "published", "file": file.origin(), "sha256": file.sha256,
                                "targets": len(t), "preserve": len(p)})
                continue
        t = default_targets([c])
        # built from one concept's file, a preserve prompt may name another concept of the same fit: drop those
        p = [x for x in default_preserves([c], t) if not any(w.search(x) for w in erased_words)]
        add(t, targets)
        add([x for x in p if x not in targets], preserves)
        entry: dict[str, Any] = {"concept": c.name, "source": "concept-fallback" if note else "concept", "targets": len(t), "preserve": len(p)}
        if note:
            entry["unavailable"] = file.origin()
        sources.append(entry)
    return TrainingPrompts(targets, preserves, sources)


TEMPLATE_PARAPHRASES = ("{word}", "a {word}", "a video of {prompt}")


def template_augment(targets: list[str], words: list[str], rng: np.random.Generator, per_prompt: int = 2) -> list[str]:
    """Built-in paraphrases (augmentation without an LLM; not the paper's): the concept word alone, ``a <word>``,
    ``a video of <prompt>``, and copies of each target with one non-concept word dropped."""
    out: list[str] = []

    def add(p: str) -> None:
        p = " ".join(p.split())
        if p and p not in out and p not in targets:
            out.append(p)

    for prompt in targets:
        hit = next((w for w in words if _word_re(w).search(prompt)), None)
        if hit is None:
            continue
        for template in TEMPLATE_PARAPHRASES:
            add(template.format(word=hit, prompt=prompt))
        tokens = prompt.split()
        droppable = [i for i, t in enumerate(tokens) if not _word_re(hit).search(t)]
        for i in rng.permutation(droppable)[:per_prompt]:
            add(" ".join(t for j, t in enumerate(tokens) if j != i))
    return out


# The two rewriter styles of step 4 (docs/erasers/t2vunlearning.md), in our own words: the released system
# prompts and few-shot examples are not reused, so rewrites are not the reference's (a documented deviation).
REWRITER_STYLES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "cogvideox": (
        "You turn short video ideas into one detailed prompt for a text-to-video model. Keep every subject, "
        "action, object and attribute of the idea and do not add new subjects. Describe appearance, setting, "
        "lighting, motion and camera in plain present-tense sentences, 70 to 90 words in total. Reply with the "
        "prompt only.",
        [
            (
                "a dog running on a beach",
                "A golden retriever sprints along a wide sandy beach at late afternoon, ears flapping and paws "
                "throwing up small bursts of wet sand. Gentle waves roll in behind it, leaving a thin sheet of "
                "water that mirrors the orange sky. The camera tracks the dog from the side at its own speed, "
                "keeping it centred while the shoreline slides past. Warm, low sunlight outlines its fur, and a "
                "few gulls lift off the sand as it passes.",
            ),
            (
                "an old man reading in a library",
                "An elderly man with white hair and round glasses sits in a worn leather armchair between tall "
                "wooden bookshelves, turning the pages of a thick hardback book. Dust drifts through a beam of "
                "soft window light that falls across his hands and the open pages. He pauses, smiles faintly and "
                "keeps reading. The camera slowly pushes in from a medium shot to a close-up of his face, with "
                "the warm, quiet room blurred behind him.",
            ),
            (
                "a red car driving through snow",
                "A bright red hatchback drives along a narrow mountain road covered in fresh snow, its headlights "
                "glowing in the grey morning light. Snowflakes fall steadily and swirl in the air behind the car "
                "as its tyres cut dark tracks through the white surface. Pine trees heavy with snow line both "
                "sides of the road. The camera follows from behind and slightly above, showing the winding road "
                "disappearing into the misty valley ahead.",
            ),
        ],
    ),
    "hunyuan": (
        "Rewrite the video prompt in one or two short sentences. Keep every detail of the original and add "
        "nothing new. Reply with the rewritten prompt only.",
        [
            ("a dog running on a beach", "A dog runs across a sandy beach."),
            ("an old man reading in a library", "In a quiet library, an old man sits reading a book."),
            ("a red car driving through snow", "A red car drives along a snowy road."),
        ],
    ),
}


I2P_PREFIX = "an explicit scene of "


def rewrite_messages(prompt: str, style: str, kind: str) -> list[dict[str, str]]:
    """The chat for one rewrite: the style's system prompt and few-shots, then the prompt; ``kind="i2p"`` puts
    ``"an explicit scene of "`` in front of the prompt given to the LLM (as the release's rewriter does)."""
    system, shots = REWRITER_STYLES[style]
    messages = [{"role": "system", "content": system}]
    for user, answer in shots:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    messages.append({"role": "user", "content": (I2P_PREFIX + prompt) if kind == "i2p" else prompt})
    return messages


def llm_rewrites(
    path: str,
    prompts: list[str],
    *,
    per_prompt: int,
    style: str,
    kind: str,
    name: str,
    seed: int,
    device: Any,
    max_attempts: int = 5,
    max_new_tokens: int = 200,
) -> list[str]:
    """Rewrite each prompt ``per_prompt`` times with a local chat LLM (``do_sample=True``, ``num_beams=1``,
    ``max_new_tokens=200``). ``kind="i2p"`` asks for ``"an explicit scene of <prompt>"``; ``kind="face"`` resamples
    (at most ``max_attempts`` times per rewrite, where the release loops without bound) until the output contains
    ``name`` (case-insensitive) and drops the rewrite otherwise."""
    from pathlib import Path

    if not Path(path).exists():
        raise ErasebenchError(f"rewriter {path!r} is not a local model folder (give the path of a chat LLM saved with save_pretrained)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).to(device).eval()
    if getattr(tokenizer, "chat_template", None) is None:
        raise ErasebenchError(f"rewriter {path!r} has no chat template; use a chat (instruction-tuned) model")
    out: list[str] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for prompt in prompts:
            messages = rewrite_messages(prompt, style, kind)
            encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
            encoded = {k: v.to(device) for k, v in encoded.items()}
            made = 0
            attempts = 0
            while made < per_prompt and attempts < per_prompt * max_attempts:
                attempts += 1
                with torch.no_grad():
                    generated = model.generate(**encoded, do_sample=True, num_beams=1, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
                text = tokenizer.decode(generated[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True).strip()
                text = " ".join(text.split())
                if not text:
                    continue
                if kind == "face" and name.lower() not in text.lower():
                    continue
                out.append(text)
                made += 1
            if made < per_prompt:
                log.warning("rewriter gave %d of %d usable rewrites for %r", made, per_prompt, prompt)
    del model
    return out

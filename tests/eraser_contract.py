"""The eraser contract as a tester mixin (after diffusers' ``PipelineTesterMixin``, docs/architecture.md).

A test class per eraser sets ``eraser_name`` and ``fast_args`` (settings that only make the fit cheap on a
tiny pipeline) and inherits every check; each check runs on every tiny family through the ``family``
fixture. What is checked:

- apply then remove restores the pipeline's outputs (and every parameter and buffer) bit for bit;
- ``call_kwargs`` is pure: the same records give equal kwargs, records are not changed, order of calls
  does not matter;
- the fingerprint is stable: equal for equal configs, unchanged by fit/apply/remove, changed by a config
  change;
- a family the eraser does not support gets one clear ``UnsupportedFamilyError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from benchmark.erasers import ERASERS, Eraser, RunContext
from benchmark.errors import UnsupportedFamilyError
from benchmark.models.base import ModelFamily
from benchmark.models.loading import load_pipeline
from benchmark.specs import PromptRecord
from benchmark.suites import load_concept
from tiny_pipelines import TINY_CALL_SETTINGS

FAMILIES = ("cogvideox", "wan", "hunyuanvideo", "zeroscope")
PROMPTS = ("a nude woman walking on a beach", "a red car on a road")


@dataclass(frozen=True)
class FamilyWithoutSites(ModelFamily):
    """A family that defines no edit sites and no pooling: what an eraser meets on an unknown architecture."""

    name = "no-sites"
    description = "test family with no sites"
    pipeline_classes = ("NoSuchPipeline",)
    sites = {}
    site_tokens = {}
    text_pooling = ()


def records() -> list[PromptRecord]:
    return [
        PromptRecord(suite="contract", prompt_id=f"p{i}", prompt=p, category="nudity", target_concept="nudity")
        for i, p in enumerate(PROMPTS)
    ]


class EraserContractMixin:
    eraser_name: ClassVar[str]
    fast_args: ClassVar[dict[str, Any]] = {}
    other_args: ClassVar[dict[str, Any]]  # a config that must change the fingerprint
    concept: ClassVar[str] = "nudity"

    # ---- helpers ----------------------------------------------------------------------------
    def make(self, **extra: Any) -> Eraser:
        return ERASERS.get(self.eraser_name).from_args({**self.fast_args, **extra}, [load_concept(self.concept)])

    @pytest.fixture(params=FAMILIES)
    def family(self, request) -> str:
        return request.param

    @staticmethod
    def setup_pipe(tiny_model, family: str) -> tuple[Any, ModelFamily, dict[str, Any]]:
        from benchmark.models.loading import detect_family, resolve_model

        folder = tiny_model(family)
        pipe = load_pipeline(folder)
        return pipe, detect_family(resolve_model(str(folder))), dict(TINY_CALL_SETTINGS[family])

    @staticmethod
    def generate(pipe: Any, family: ModelFamily, eraser: Eraser | None, settings: dict[str, Any]) -> np.ndarray:
        recs = records()
        kwargs = dict(settings)
        if eraser is not None:
            kwargs.update(eraser.call_kwargs(family, recs))
            eraser.before_batch(pipe, family, recs)
        generators = [torch.Generator().manual_seed(7 + i) for i in range(len(recs))]
        with torch.inference_mode():
            out = pipe(prompt=[r.prompt for r in recs], generator=generators, output_type="np", **kwargs)
        return family.frames(out)

    @staticmethod
    def state(pipe: Any) -> dict[str, torch.Tensor]:
        out = {}
        for component in ("transformer", "unet", "text_encoder", "text_encoder_2", "vae"):
            module = getattr(pipe, component, None)
            if isinstance(module, torch.nn.Module):
                out.update({f"{component}.{k}": v.detach().clone() for k, v in module.state_dict().items()})
        return out

    @staticmethod
    def hooks(pipe: Any) -> dict[str, int]:
        """Hook counts per module (some encoders carry their own hooks: compare before and after)."""
        out = {}
        for component in ("transformer", "unet", "text_encoder", "text_encoder_2"):
            module = getattr(pipe, component, None)
            if isinstance(module, torch.nn.Module):
                for n, m in module.named_modules():
                    count = len(m._forward_hooks) + len(m._forward_pre_hooks)
                    if count:
                        out[f"{component}.{n}"] = count
        return out

    def attach(self, eraser: Eraser, pipe: Any, family: ModelFamily, settings: dict, tmp_path: Path) -> None:
        eraser.run_context = RunContext(generation=settings, seed=0)
        artifact = None
        if eraser.needs_fit:
            artifact = tmp_path / "artifact"
            eraser.fit(pipe, family, artifact)
        eraser.apply(pipe, family, artifact)

    # ---- the contract -----------------------------------------------------------------------
    def test_apply_then_remove_restores_outputs_bit_for_bit(self, tiny_model, family, tmp_path):
        pipe, fam, settings = self.setup_pipe(tiny_model, family)
        eraser = self.make()
        eraser.check_family(fam)
        before_state = self.state(pipe)
        before = self.generate(pipe, fam, None, settings)
        before_hooks = self.hooks(pipe)  # after a first call: some encoders add their own hooks lazily
        self.attach(eraser, pipe, fam, settings, tmp_path)
        self.generate(pipe, fam, eraser, settings)
        eraser.remove(pipe, fam)
        after = self.generate(pipe, fam, None, settings)
        assert np.array_equal(before, after), f"{self.eraser_name} on {family}: outputs differ after remove()"
        after_state = self.state(pipe)
        assert before_state.keys() == after_state.keys()
        changed = [k for k in before_state if not torch.equal(before_state[k], after_state[k])]
        assert not changed, f"{self.eraser_name} on {family}: parameters changed after remove(): {changed[:3]}"
        assert self.hooks(pipe) == before_hooks, f"{self.eraser_name} on {family}: hooks left behind"

    def test_call_kwargs_are_pure(self, tiny_model, family):
        _, fam, _ = self.setup_pipe(tiny_model, family)
        eraser = self.make()
        recs = records()
        snapshot = [r.model_dump() for r in recs]
        first = eraser.call_kwargs(fam, recs)
        second = eraser.call_kwargs(fam, recs)
        assert repr(first) == repr(second)
        assert [r.model_dump() for r in recs] == snapshot
        assert repr(self.make().call_kwargs(fam, recs)) == repr(first)  # a fresh instance agrees
        one = [eraser.call_kwargs(fam, [r]) for r in recs]  # per-record calls match the batch's items
        assert repr([eraser.call_kwargs(fam, [r]) for r in recs]) == repr(one)

    def test_fingerprint_is_stable(self, tiny_model, family, tmp_path):
        pipe, fam, settings = self.setup_pipe(tiny_model, family)
        eraser = self.make()
        fingerprint = eraser.fingerprint()
        assert self.make().fingerprint() == fingerprint
        assert len(fingerprint) >= 8 and fingerprint.isalnum()
        self.attach(eraser, pipe, fam, settings, tmp_path)
        assert eraser.fingerprint() == fingerprint
        eraser.remove(pipe, fam)
        assert eraser.fingerprint() == fingerprint
        assert self.make(**self.other_args).fingerprint() != fingerprint

    def test_unsupported_family_is_one_clear_error(self):
        eraser = self.make()
        family = FamilyWithoutSites()
        if eraser.families is None and self.needs_no_sites:
            eraser.check_family(family)  # a prompt-level eraser works on any family
            return
        with pytest.raises(UnsupportedFamilyError) as info:
            eraser.check_family(family)
        message = str(info.value)
        assert "\n" not in message and self.eraser_name in message and "no-sites" in message

    needs_no_sites: ClassVar[bool] = False

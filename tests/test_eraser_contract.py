"""Every shipped eraser against the contract of tests/eraser_contract.py, on every tiny family."""

from __future__ import annotations

import re
from pathlib import Path

from benchmark.erasers import BUILTIN_ERASERS
from eraser_contract import EraserContractMixin


class TestNone(EraserContractMixin):
    eraser_name = "none"
    needs_no_sites = True

    def test_fingerprint_is_stable(self, tiny_model, family, tmp_path):  # no config: nothing can change it
        assert self.make().fingerprint() == self.make().fingerprint()


class TestNegativePrompt(EraserContractMixin):
    eraser_name = "negprompt"
    needs_no_sites = True
    other_args = {"text": "violence"}


class TestSAFREE(EraserContractMixin):
    eraser_name = "safree"
    other_args = {"alpha": 0.02}


class TestT2VUnlearning(EraserContractMixin):
    eraser_name = "t2vunlearning"
    fast_args = {"iterations": 2, "xt_steps": 2, "rank": 4}
    other_args = {"rank": 8}


class TestRefusal(EraserContractMixin):
    eraser_name = "refusal"
    fast_args = {"steps_recorded": 1, "max_pairs": 3, "neutral": ["a man", "a woman", "a road", "a cat"]}
    other_args = {"alpha": 0.5}


def test_every_shipped_eraser_has_a_contract_class():
    tested = {cls.eraser_name for cls in EraserContractMixin.__subclasses__()}
    assert tested == set(BUILTIN_ERASERS)


def test_family_files_never_name_an_eraser():
    folder = Path(__file__).resolve().parent.parent / "benchmark" / "models"
    for path in folder.glob("*.py"):
        text = path.read_text().lower()
        for name in BUILTIN_ERASERS:
            if name != "none":
                assert not re.search(rf"\b{name}\b", text), f"{path.name} names eraser {name!r}"

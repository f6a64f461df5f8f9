"""Attacks that try to bring an erased concept back (docs/attacks.md): a lazy registry (``ATTACKS``,
entry-point group ``erasebench.attacks``), one plugin per file, and the run that turns an attack into an
attacked suite and an attack success rate (``run.py``)."""

from .base import ATTACKS, Attack, AttackConfig, AttackOutcome, AttackTarget, TextSide

__all__ = ["ATTACKS", "Attack", "AttackConfig", "AttackOutcome", "AttackTarget", "TextSide"]

"""``erasebench gate``: compare runs with a stored baseline, for CI (docs/gate.md).

A baseline file (JSON, ``GateBaseline``)::

    {
      "schema_version": 1,
      "checks": {"shapes_oracle.esr_1": {"direction": "higher", "tolerance": 0.1, "two_sided": true}, ...},
      "baselines": [
        {"match": {"suite": "shapes", "method": "safree", "eraser_args": {}, "model_fingerprint": "42e674d4cb28",
                   "prompts": 64, "seed": 0, ...},
         "values": {"shapes_oracle.esr_1": 0.1875, ...},
         "tolerances": {"shapes_oracle.esr_1": 0.0625},
         "separation": {"key": "shapes_oracle.esr_1", "reference": "none", "reference_value": 0.0625,
                        "margin": 0.0625, "separates": true}},
        ...
      ]
    }

``checks`` names each gated aggregate as ``metric.key`` (overall aggregates; the key may itself hold
dots) with its direction (``higher`` or ``lower`` is better; left out: the metric's own declaration in
the results), tolerance and sidedness. Each run given is matched to the one baseline entry whose ``match``
fields (any of ``RunResult.run_settings()``; ``--record`` writes them all) all equal the run's. An entry's
``tolerances`` override the checks' tolerance for that entry. A key fails when

    higher is better:  now < baseline - tolerance          lower is better:  now > baseline + tolerance
    two_sided:         |now - baseline| > tolerance        (a change either way fails)

or when the run lacks it. An entry's ``separation``, when it ``separates``, adds one check: ``now >=
reference_value + margin`` (the run still beats its reference, e.g. ``none``, by the margin); a separation
that does not separate is recorded, not checked, and must agree with the entry's value. Exit codes: 0 no
regression, 1 a regression (a one-screen diff is printed), 2 bad input (unreadable baseline or results,
a run that matches no entry or several).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ErasebenchError, describe_validation_error
from .store import read_json
from .results import RUN_SETTING_FIELDS, RunResult, format_setting

GATE_SCHEMA_VERSION = 1
MATCH_FIELDS = RUN_SETTING_FIELDS
EPSILON = 1e-12  # float noise never fails a gate


class GateCheck(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    direction: Literal["higher", "lower"] | None = None
    tolerance: float = Field(default=0.0, ge=0)
    two_sided: bool = False  # a change beyond the tolerance either way fails


class Separation(BaseModel):
    """``key`` of this entry against a reference run on the same prompts: it ``separates`` when
    ``value >= reference_value + margin`` (e.g. ESR-1 at least ``none``'s plus one target video)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    reference: str  # the reference run's method
    reference_value: float
    margin: float = Field(ge=0)
    separates: bool

    @property
    def threshold(self) -> float:
        return self.reference_value + self.margin


class GateEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    match: dict[str, Any]
    values: dict[str, float]
    tolerances: dict[str, float] = Field(default_factory=dict)  # per key, overriding the check's tolerance
    separation: Separation | None = None

    @field_validator("tolerances")
    @classmethod
    def _non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        for name, tolerance in v.items():
            if not tolerance >= 0:
                raise ValueError(f"tolerance of {name!r} is {tolerance}; it must be >= 0")
        return v

    def tolerance(self, name: str, check: GateCheck) -> float:
        return self.tolerances.get(name, check.tolerance)

    @field_validator("match")
    @classmethod
    def _fields(cls, v: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(v) - set(MATCH_FIELDS))
        if unknown:
            raise ValueError(f"unknown match field {unknown[0]!r}; allowed: {', '.join(MATCH_FIELDS)}")
        return v

    def label(self) -> str:
        return " ".join(f"{k}={format_setting(v)}" for k, v in self.match.items())


class GateBaseline(BaseModel):
    model_config = ConfigDict(extra="allow")

    schema_version: int = GATE_SCHEMA_VERSION
    description: str = ""
    checks: dict[str, GateCheck]
    baselines: list[GateEntry]

    def to_disk(self, path: str | Path) -> None:
        from .store import atomic_write_json

        atomic_write_json(Path(path), self.model_dump(mode="json", exclude_none=True))


def split_key(name: str) -> tuple[str, str]:
    """``metric.key`` -> (metric, key); the key may hold dots (``classify.esr_1.cross``)."""
    metric, dot, key = name.partition(".")
    if not dot or not metric or not key:
        raise ErasebenchError(f"gate key {name!r} is not METRIC.KEY (e.g. shapes_oracle.esr_1)")
    return metric, key


def load_baseline(path: str | Path) -> GateBaseline:
    path = Path(path)
    data = read_json(path, f"--baseline {str(path)!r}")
    try:
        baseline = GateBaseline.model_validate(data)
    except ValidationError as exc:
        raise ErasebenchError(f"--baseline {str(path)!r} is not a gate baseline: {describe_validation_error(exc)}") from None
    if baseline.schema_version != GATE_SCHEMA_VERSION:
        raise ErasebenchError(f"--baseline {str(path)!r} has schema_version {baseline.schema_version}; this erasebench reads {GATE_SCHEMA_VERSION}")
    for name in baseline.checks:
        split_key(name)
    for entry in baseline.baselines:
        for name in [*entry.values, *entry.tolerances]:
            if name not in baseline.checks:
                raise ErasebenchError(f"--baseline {str(path)!r}: value {name!r} has no entry in checks (direction, tolerance)")
        sep = entry.separation
        if sep is not None:
            if sep.key not in entry.values:
                raise ErasebenchError(f"--baseline {str(path)!r}: separation key {sep.key!r} is not among the entry's values")
            if (entry.values[sep.key] >= sep.threshold - EPSILON) != sep.separates:
                raise ErasebenchError(
                    f"--baseline {str(path)!r}: {entry.label()}: separation says separates={sep.separates} but "
                    f"{sep.key} {entry.values[sep.key]:.4f} vs {sep.reference} {sep.reference_value:.4f} + {sep.margin:.4f}"
                )
    return baseline


def run_fields(result: RunResult) -> dict[str, Any]:
    return result.run_settings()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def matching(baseline: GateBaseline, result: RunResult) -> list[GateEntry]:
    fields = run_fields(result)
    return [e for e in baseline.baselines if all(_canonical(fields[k]) == _canonical(v) for k, v in e.match.items())]


@dataclass
class CheckResult:
    run: str  # the run's label
    key: str  # metric.key
    baseline: float
    now: float | None
    direction: str
    tolerance: float
    two_sided: bool = False

    @property
    def delta(self) -> float | None:
        return None if self.now is None else self.now - self.baseline

    @property
    def regressed(self) -> bool:
        if self.now is None or self.now != self.now:  # missing or NaN
            return True
        if self.two_sided:
            return abs(self.now - self.baseline) > self.tolerance + EPSILON
        if self.direction == "higher":
            return self.now < self.baseline - self.tolerance - EPSILON
        return self.now > self.baseline + self.tolerance + EPSILON


@dataclass
class GateReport:
    checks: list[CheckResult] = field(default_factory=list)
    unmatched: list[GateEntry] = field(default_factory=list)  # baseline entries no run matched

    @property
    def regressions(self) -> list[CheckResult]:
        return [c for c in self.checks if c.regressed]


def run_gate(baseline: GateBaseline, results: list[tuple[Path, RunResult]]) -> GateReport:
    """Match each run to its baseline entry and check every key of the entry (ErasebenchError on bad input)."""
    report = GateReport()
    used: set[int] = set()
    for path, result in results:
        entries = matching(baseline, result)
        fields = run_fields(result)
        if not entries:
            raise ErasebenchError(f"no baseline entry matches {str(path)!r} ({result.suite.name}: {result.method_label()}){_closest(baseline, fields)}")
        if len(entries) > 1:
            raise ErasebenchError(f"{len(entries)} baseline entries match {str(path)!r}: {entries[0].label()!r}, {entries[1].label()!r}")
        entry = entries[0]
        used.add(id(entry))
        label = f"{result.suite.name}: {result.method_label()}"
        for name, recorded in entry.values.items():
            metric, key = split_key(name)
            check = baseline.checks[name]
            direction = check.direction
            if direction is None:
                declared = result.higher_is_better(metric, key)
                if declared is None:
                    raise ErasebenchError(
                        f"gate key {name!r} has no direction in the baseline and metric {metric!r} declares none: "
                        "add \"direction\": \"higher\" or \"lower\""
                    )
                direction = "higher" if declared else "lower"
            now = _number(result.aggregates.value(metric, key))
            report.checks.append(CheckResult(label, name, recorded, now, direction, entry.tolerance(name, check), check.two_sided))
        sep = entry.separation
        if sep is not None and sep.separates:
            now = _number(result.aggregates.value(*split_key(sep.key)))
            report.checks.append(CheckResult(label, f"{sep.key}>{sep.reference}", sep.threshold, now, "higher", 0.0))
    report.unmatched = [e for e in baseline.baselines if id(e) not in used]
    return report


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _closest(baseline: GateBaseline, fields: dict[str, Any]) -> str:
    """``; the closest entry differs in ...``: the settings in which the nearest entry of the same suite and
    method differs from the run (empty when there is none)."""
    best: tuple[list[str], GateEntry] | None = None
    for entry in baseline.baselines:
        differing = [k for k, v in entry.match.items() if _canonical(fields[k]) != _canonical(v)]
        if "suite" not in differing and "method" not in differing and (best is None or len(differing) < len(best[0])):
            best = (differing, entry)
    if best is None:
        return ""
    differing, entry = best
    parts = [f"{k} {format_setting(fields[k])} (baseline {format_setting(entry.match[k])})" for k in differing[:3]]
    hint = ": the model changed, record the baseline again" if "model_fingerprint" in differing else ""
    return "; the closest entry differs in " + ", ".join(parts) + hint


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def format_report(report: GateReport, max_lines: int = 20) -> str:
    """At most one screen (80 columns, ~24 lines): a summary line, then per run (most regressions first) its
    checks, regressions first, each ``status key baseline now delta allowed``."""
    failed = report.regressions
    lines = [
        f"gate {'FAILED' if failed else 'passed'}: {len(failed)} of {len(report.checks)} checks regressed",
        f"{'':7}{'key':<34}{'base':>8}{'now':>8}{'delta':>8}{'allowed':>9}",
    ]
    runs: dict[str, list[CheckResult]] = {}
    for check in report.checks:
        runs.setdefault(check.run, []).append(check)
    body: list[str] = []
    for run, checks in sorted(runs.items(), key=lambda item: -sum(c.regressed for c in item[1])):
        body.append(_fit(run, 80))
        for c in sorted(checks, key=lambda c: not c.regressed):
            sign = "+-" if c.two_sided else "-" if c.direction == "higher" else "+"
            now = "--" if c.now is None else f"{c.now:.3f}"
            delta = "--" if c.delta is None else f"{c.delta:+.3f}"
            body.append(
                f"{'  FAIL' if c.regressed else '  ok':<7}{_fit(c.key, 33):<34}{c.baseline:>8.3f}{now:>8}{delta:>8}"
                f"{sign + format(c.tolerance, '.3f'):>9}"
            )
    if len(body) > max_lines:
        hidden = body[max_lines:]
        body = body[:max_lines] + [f"... {sum(1 for line in hidden if line.startswith('  '))} more checks not shown"]
    lines += body
    if report.unmatched:
        lines.append(_fit(f"{len(report.unmatched)} baseline entries matched no run given, first: {report.unmatched[0].label()}", 80))
    return "\n".join(lines)


def record_baseline(
    results: list[tuple[Path, RunResult]], checks: dict[str, GateCheck], description: str = "",
    match_fields: tuple[str, ...] = MATCH_FIELDS,
) -> GateBaseline:
    """A baseline holding each run's current value of every checked key (``erasebench gate --record``); a
    check without a direction takes the one its metric declares in the results."""
    checks = dict(checks)
    for name, check in checks.items():
        if check.direction is None:
            metric, key = split_key(name)
            declared = {r.higher_is_better(metric, key) for _, r in results} - {None}
            if len(declared) != 1:
                raise ErasebenchError(f"--check {name!r}: give :higher or :lower (metric {metric!r} declares no single direction)")
            checks[name] = check.model_copy(update={"direction": "higher" if declared.pop() else "lower"})
    entries = []
    for path, result in results:
        fields = run_fields(result)
        values = {}
        for name in checks:
            metric, key = split_key(name)
            value = result.aggregates.value(metric, key)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ErasebenchError(f"{str(path)!r} has no aggregate {name!r} to record")
            values[name] = float(value)
        entries.append(GateEntry(match={k: fields[k] for k in match_fields}, values=values))
    baseline = GateBaseline(description=description, checks=checks, baselines=entries)
    keys = [_canonical(e.match) for e in entries]
    if len(set(keys)) != len(keys):
        raise ErasebenchError("two runs given have the same settings (RunResult.run_settings): record one of them")
    return baseline


def parse_check(text: str) -> tuple[str, GateCheck]:
    """``METRIC.KEY[:higher|lower][:two-sided][:TOLERANCE]`` (``--check`` of ``erasebench gate --record``)."""
    name, *rest = text.split(":")
    split_key(name)
    direction, tolerance, two_sided = None, 0.0, False
    for part in rest:
        if part in ("higher", "lower"):
            direction = part
        elif part == "two-sided":
            two_sided = True
        else:
            try:
                tolerance = float(part)
            except ValueError:
                raise ErasebenchError(f"--check {text!r}: {part!r} is neither higher, lower, two-sided nor a tolerance") from None
            if tolerance < 0:
                raise ErasebenchError(f"--check {text!r}: the tolerance must be >= 0")
    return name, GateCheck(direction=direction, tolerance=tolerance, two_sided=two_sided)

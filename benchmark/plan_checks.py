"""Plan-time checks that make a run fit its model and its metrics, before anything is generated (docs/architecture.md).

``check_plan(plan)`` is the last step of ``runner.plan_run``:

- **Settings that fit the model.** A suite's per-family settings (and its paper protocol's) were written for
  that family's released models. A named model that declares the size it was made for
  (``NamedModel.native``, e.g. the shapes model: 9 frames, 32x32, 25 steps) gets its own size wherever the
  suite's differs; what the user set with ``--frames``, ``--height`` ... always wins. ``settings_note`` is the
  one line ``run`` prints saying which settings it used and how to override them.
- **Metrics that can score the run.** A metric that reads suite columns the suite lacks
  (``Metric.columns``), or whose erased-concept prompts (``Metric.target_count``) the run's concepts and
  ``--limit`` leave empty, is an error: otherwise ESR silently disappears from the table.

``plan_messages(plan)`` gives the lines ``run`` prints before it starts (the settings note, a lossy codec
under a metric that reads exact pixels); ``estimate_seconds`` a rough time for the videos to make.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ErasebenchError
from .models.base import check_generation, native_generation
from .specs import SETTING_FLAGS, GenerationSettings, parse_generation

if TYPE_CHECKING:  # runner imports this module
    from .runner import RunPlan

#: the settings a model's native size can replace, in the order a note names them
SIZE_KEYS = ("num_frames", "height", "width", "num_inference_steps")


def describe_size(settings: dict[str, Any]) -> str:
    """``49 frames, 480x720, 50 steps`` from the size keys present."""
    parts = []
    if settings.get("num_frames") is not None:
        parts.append(f"{settings['num_frames']} frames")
    if settings.get("height") is not None or settings.get("width") is not None:
        parts.append(f"{settings.get('height', '?')}x{settings.get('width', '?')}")
    if settings.get("num_inference_steps") is not None:
        parts.append(f"{settings['num_inference_steps']} steps")
    return ", ".join(parts)


def fitted_generation(plan: "RunPlan") -> tuple[GenerationSettings, str | None]:
    """The suite's generation for the model's family with the user's settings over it (as ``plan_run`` builds
    it), and the model's native size wherever the suite's differs and the user set nothing; with the one-line
    note saying so (None when nothing changed)."""
    user_settings = parse_generation(plan.spec.generation)
    suite_settings = plan.suite.spec.generation_for(plan.family.name)
    base = suite_settings.merged(user_settings)
    native = {k: v for k, v in native_generation(plan.spec.model).items() if k in SIZE_KEYS}
    user = user_settings.model_dump(exclude_unset=True)
    suite = suite_settings.model_dump()
    changed = {k: v for k, v in native.items() if user.get(k) is None and suite.get(k) != v}
    if not any(suite.get(k) is not None for k in changed):  # the suite left them to the pipeline: no note
        return base.merged(changed), None
    written_for = f"protocol {plan.suite.spec.protocol!r}, " if plan.suite.spec.protocol else ""
    flags = ", ".join(SETTING_FLAGS[k] for k in changed)
    note = (
        f"settings: suite {plan.suite.name!r} ({written_for}for {plan.family.name} models) asks "
        f"{describe_size({k: suite[k] for k in changed if suite.get(k) is not None})}; model {plan.spec.model!r} is made for "
        f"{describe_size(changed)}: using the model's (override with {flags})"
    )
    return base.merged(changed), note


def check_plan(plan: "RunPlan") -> "RunPlan":
    """Fit the generation settings to the model, then check every metric can score the run; returns ``plan``."""
    from .models.loading import check_scheduler, pipeline_spec

    generation, _ = fitted_generation(plan)
    if generation != plan.generation:
        check_generation(plan.family, generation, *pipeline_spec(plan.source))
        check_scheduler(generation.scheduler, generation.num_inference_steps)
        plan.generation = generation
    check_metrics(plan)
    return plan


def check_metrics(plan: "RunPlan") -> None:
    """Each metric's columns present in the suite and, for a metric that splits erased from kept prompts, at
    least one erased-concept prompt among the run's prompts; else one ``ErasebenchError``."""
    records = plan.records
    concepts = ", ".join(repr(c.name) for c in plan.eraser.concepts) or "none"
    limited = f" (--limit {plan.spec.limit} keeps {len(records)} of {len(plan.suite.records)})" if plan.spec.limit else ""
    for metric in plan.metrics:
        missing = [c for c in type(metric).columns if not any(c in r.extra for r in plan.suite.records)]
        if missing:
            raise ErasebenchError(
                f"metric {metric.name!r} needs the suite columns {', '.join(missing)}, which suite "
                f"{plan.suite.name!r} does not have: use a suite with them or another --metrics"
            )
        count = metric.target_count(records)
        if count == 0:
            raise ErasebenchError(
                f"concept {concepts} selects no prompt of suite {plan.suite.name!r}{limited} for metric "
                f"{metric.name!r}, so its erasure rate would be missing: {first_target_hint(plan, metric)}"
            )


def first_target_hint(plan: "RunPlan", metric: Any) -> str:
    """How to get a target prompt: the smallest ``--limit`` that reaches one, or another concept."""
    for n in range(len(plan.records) + 1, len(plan.suite.records) + 1):
        if metric.target_count(plan.suite.records[:n]):
            return f"use --limit {n} or more (the first target prompt is row {n})"
    return "pass --concept with a concept this suite's prompts show (erasebench list --suite NAME)"


def plan_messages(plan: "RunPlan") -> list[str]:
    """The lines ``run`` prints before it starts: the settings it took from the model, and a warning per
    metric that reads exact pixels when the videos are written with a lossy codec."""
    _, note = fitted_generation(plan)
    lines = [note] if note else []
    targets = {r.target_concept for r in plan.suite.records if r.target_concept}
    names = {c.name for c in plan.eraser.concepts}
    if targets and not any(r.target_concept in names for r in plan.records):
        lines.append(
            f"note: concept {', '.join(sorted(names))} selects none of the {len(plan.records)} prompts of suite "
            f"{plan.suite.name!r} run here (they target {', '.join(sorted(targets))}): every video is a kept prompt"
        )
    if plan.spec.video_codec != "lossless":
        for metric in plan.metrics:
            if type(metric).lossless_input:
                lines.append(
                    f"warning: --video-codec {plan.spec.video_codec} is lossy and metric {metric.name!r} reads exact "
                    "pixels (an oracle or detector): its numbers will differ; use --video-codec lossless"
                )
    return lines


#: seconds per (frame x pixel x step x CFG pass) on CPU, from the shapes model (0.14 s a video of 9 frames,
#: 32x32, 25 steps, CFG); a GPU is taken as 100 times faster. Rough: a larger model is slower per pixel.
SECONDS_PER_UNIT = {"cpu": 3.0e-7, "cuda": 3.0e-9}


def estimate_seconds(plan: "RunPlan", videos: int | None = None) -> float:
    """A rough time for ``videos`` videos (default: every planned one) at the plan's settings."""
    g = plan.generation
    passes = 2 if (g.guidance_scale or 0) > 1 else 1
    units = (g.num_frames or 16) * (g.height or 480) * (g.width or 720) * (g.num_inference_steps or 50) * passes
    count = len(plan.items) if videos is None else videos
    return count * units * SECONDS_PER_UNIT.get(plan.spec.device, SECONDS_PER_UNIT["cpu"])


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"

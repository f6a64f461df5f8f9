"""``erasebench report RUN_DIR... --format html --out DIR``: one static site to look at runs (docs/tables.md).

``DIR/index.html`` holds, per suite: the leaderboard (every rate with its 95 % interval), the trade-off
plot (ESR against PSR, error bars from the intervals; matplotlib, embedded as a PNG data URI), the
per-category breakdown and a grid of the same prompts across methods (``none`` first) as videos; and, for
each ``erasebench attack`` folder (``attack.json``) under the paths, every target prompt's video before and
after the attack, side by side (recovered prompts first).
``DIR/videos/`` holds H.264 (yuv420p, CRF 18) copies of the lossless masters, which stay where they are;
browsers do not play ``libx264rgb``. Every text from a run (prompts, labels, categories) is HTML-escaped
(Jinja2 autoescape): attack prompts contain anything. No script runs on the page.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ErasebenchError
from .tables.runs import RunView, load_runs

MAX_PROMPTS = 8  # prompts per suite in the video grid


@dataclass
class Cell:
    value: float
    low: float | None = None
    high: float | None = None

    def text(self) -> str:
        if self.low is None or self.high is None:
            return f"{self.value:.3f}"
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass
class SuiteSection:
    name: str
    runs: list[RunView]
    keys: list[tuple[str, str, bool]]  # (metric, key, higher is better)
    leaderboard: list[tuple[RunView, list[Cell | None]]] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    breakdown: list[tuple[str, list[tuple[str, list[Cell | None]]]]] = field(default_factory=list)  # per key
    # per model: {model, runs, rows: [{prompt, category, prompt_id, videos: [src | None]}]}
    grids: list[dict[str, Any]] = field(default_factory=list)
    plot: str = ""  # data URI


def rate_keys(runs: list[RunView]) -> list[tuple[str, str, bool]]:
    """The keys each run's metrics declare a direction for and report as floats (no per-concept keys)."""
    keys: dict[tuple[str, str], bool] = {}
    for run in runs:
        for metric, info in run.result.metrics.items():
            values = run.result.aggregates.overall.get(metric, {})
            for key, higher in info.higher_is_better.items():
                if "." not in key and isinstance(values.get(key), float):
                    keys.setdefault((metric, key), higher)
    return [(m, k, h) for (m, k), h in sorted(keys.items())]


def cell(run: RunView, metric: str, key: str, scope: str = "overall", category: str | None = None) -> Cell | None:
    q = run.quantity(f"{metric}.{key}", scope, category)
    return None if q is None else Cell(q.value, q.low, q.high)


def ordered(runs: list[RunView]) -> list[RunView]:
    """``none`` first, then the erasers by label."""
    return sorted(runs, key=lambda r: (r.method != "none", r.label()))


def trade_off_plot(sections: list[SuiteSection]) -> str:
    """ESR-1 (erased) against PSR-1 (preserved) per run, error bars from the 95 % intervals; '' when none."""
    points = []
    for section in sections:
        for run in section.runs:
            for metric, values in run.result.aggregates.overall.items():
                if isinstance(values.get("esr_1"), float) and isinstance(values.get("psr_1"), float):
                    points.append((section.name, run, cell(run, metric, "esr_1"), cell(run, metric, "psr_1")))
    if not points:
        return ""
    try:
        import matplotlib
    except ImportError:
        raise ErasebenchError("the HTML report's trade-off plot needs matplotlib: pip install 'erasebench[report]'") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    suites = list(dict.fromkeys(p[0] for p in points))
    markers = "osD^v<>ph"
    for i, (suite, run, esr, psr) in enumerate(points):
        def err(c: Cell) -> list[list[float]] | None:
            if c.low is None or c.high is None:
                return None
            return [[max(0.0, c.value - c.low)], [max(0.0, c.high - c.value)]]

        ax.errorbar([esr.value], [psr.value], xerr=err(esr), yerr=err(psr), marker=markers[suites.index(suite) % len(markers)],
                    capsize=3, linestyle="none", label=f"{run.method_label()} ({suite})")
        ax.annotate(run.method_label(), (esr.value, psr.value), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel("ESR-1 (erased concept not generated) →")
    ax.set_ylabel("PSR-1 (other concepts kept) →")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.set_title("Erasure against preservation (95 % intervals)")
    if len(points) <= 12:
        ax.legend(fontsize=7, loc="lower left")
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def h264_copy(master: Path, out_dir: Path, name: str, fps: int) -> str:
    """An H.264 yuv420p copy of a lossless master under ``out_dir/videos`` (odd sizes padded by one edge pixel)."""
    from .video import read_video, write_video

    target = out_dir / "videos" / f"{name}.mp4"
    if not target.is_file():
        frames = read_video(master)
        pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
        if pad_h or pad_w:
            frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        write_video(target, frames, fps=fps, codec="h264")
    return f"videos/{name}.mp4"


def pick_prompts(rows: list[Any], limit: int) -> list[Any]:
    """Up to ``limit`` rows, taking the categories in turn so erased and kept prompts both show."""
    by_category: dict[str, list[Any]] = {}
    for row in rows:
        by_category.setdefault(row.category, []).append(row)
    picked: list[Any] = []
    while len(picked) < limit and any(by_category.values()):
        for queue in by_category.values():
            if queue and len(picked) < limit:
                picked.append(queue.pop(0))
    return picked


def master_video(run: RunView, video: str) -> Path | None:
    """The lossless master of a sample's ``video`` (relative to the output root), if it is still there."""
    master = run.path.parent.parent / video
    if not master.is_file() and run.result.videos.root:
        master = Path(run.result.videos.root) / video
    return master if master.is_file() else None


def web_videos(run: RunView, out_dir: Path) -> dict[str, str | None]:
    """prompt id -> the H.264 copy of its first sample's video (None when the master is gone)."""
    from .results import SampleRecord

    out: dict[str, str | None] = {}
    fps = int(run.result.generation.fps or 8)
    for record in SampleRecord.read_jsonl(run.path / "samples.jsonl"):
        if record.sample == 0:
            master = master_video(run, record.video)
            out[record.prompt_id] = h264_copy(master, out_dir, record.sha256[:24], fps) if master else None
    return out


@dataclass
class AttackSection:
    """One ``erasebench attack``: each target prompt's video before and after the attack, side by side."""

    title: str
    summary: str
    rows: list[dict[str, Any]]  # prompt_id, original, attacked, before / after (video src), shown_before / after


def attack_run(file: Path, recorded: str) -> RunView | None:
    """A run an attack made: where attack.json says, else in the ``runs/`` folder of its output root."""
    from .tables.runs import load_run

    for folder in (Path(recorded), file.parent.parent.parent / "runs" / Path(recorded).name):
        if (folder / "results.json").is_file():
            return load_run(folder)
    return None


def attack_section(file: Path, out_dir: Path) -> AttackSection:
    import json

    try:
        summary = json.loads(file.read_text())
        attack, budget, prompts = summary["attack"]["name"], summary["budget"], summary["prompts"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ErasebenchError(f"{str(file)!r} is not an erasebench attack.json ({exc})") from None
    videos = []
    for key in ("baseline_run", "attacked_run"):
        run = attack_run(file, summary.get(key, ""))
        videos.append(web_videos(run, out_dir) if run is not None else {})
    rows = [
        {**p, "before": videos[0].get(p["prompt_id"]), "after": videos[1].get(p["prompt_id"])}
        for p in sorted(prompts, key=lambda p: not (p["shown_after"] and not p["shown_before"]))  # recovered first
    ]
    n = len(prompts)
    text = (
        f"ASR {summary['asr']:.3f} ({summary['shown_after']}/{n}), recovered {summary['recovered']}, "
        f"ESR without attack {summary['esr_without_attack']:.3f} ({n - summary['shown_before']}/{n}); judged by "
        f"{summary['metric']}; budget {', '.join(f'{k}={v}' for k, v in budget.items())}"
    )
    return AttackSection(f"{attack} against {summary['method']} on {summary['suite']} ({summary['model']})", text, rows)


def video_grid(section: SuiteSection, out_dir: Path, max_prompts: int) -> None:
    """One grid per model of the suite: rows are prompts every run of that model generated (sample 0)."""
    from .results import SampleRecord

    by_model: dict[str, list[RunView]] = {}
    for run in ordered(section.runs):
        if (run.path / "samples.jsonl").is_file():
            by_model.setdefault(run.model_label, []).append(run)
    for model, runs in by_model.items():
        samples = {id(run): {r.prompt_id: r for r in SampleRecord.read_jsonl(run.path / "samples.jsonl") if r.sample == 0} for run in runs}
        shared = [r for r in samples[id(runs[0])].values() if all(r.prompt_id in samples[id(x)] for x in runs)]
        rows = []
        for row in pick_prompts(shared, max_prompts):
            videos = []
            for run in runs:
                record = samples[id(run)][row.prompt_id]
                master = master_video(run, record.video)
                fps = int(run.result.generation.fps or 8)
                videos.append(h264_copy(master, out_dir, record.sha256[:24], fps) if master else None)
            rows.append({"prompt": row.prompt, "category": row.category, "prompt_id": row.prompt_id, "videos": videos})
        if rows:
            section.grids.append({"model": model, "runs": runs, "rows": rows})


def build_sections(runs: list[RunView], out_dir: Path, max_prompts: int) -> list[SuiteSection]:
    by_suite: dict[str, list[RunView]] = {}
    for run in runs:
        by_suite.setdefault(run.suite, []).append(run)
    sections = []
    for suite, suite_runs in by_suite.items():
        suite_runs = ordered(suite_runs)
        section = SuiteSection(suite, suite_runs, rate_keys(suite_runs))
        section.leaderboard = [(run, [cell(run, m, k) for m, k, _ in section.keys]) for run in suite_runs]
        section.categories = sorted({c for run in suite_runs for c in run.categories()})
        if len(section.categories) > 1:
            for metric, key, _ in section.keys:
                rows = [(c, [cell(run, metric, key, "category", c) for run in suite_runs]) for c in section.categories]
                if any(x is not None for _, cells in rows for x in cells):
                    section.breakdown.append((f"{metric}.{key}", rows))
        video_grid(section, out_dir, max_prompts)
        sections.append(section)
    return sections


TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>erasebench report</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .5em;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
th{background:#f4f4f4}
.prompt{max-width:28em;font-size:.9em}
.category{color:#666;font-size:.8em}
video{width:160px;height:160px;image-rendering:pixelated;background:#000;display:block}
.missing{color:#999}
nav a{margin-right:1em}
</style></head><body>
<h1>erasebench report</h1>
<p>{{ runs|length }} run{{ 's' if runs|length != 1 }}, {{ sections|length }} suite{{ 's' if sections|length != 1 }}. Intervals are 95 %
(the run's own: Wilson or a bootstrap over prompts; docs/statistics.md).</p>
<nav>{% for s in sections %}<a href="#suite-{{ loop.index }}">{{ s.name }}</a>{% endfor %}{% if attacks %}<a href="#attacks">attacks</a>{% endif %}</nav>
{% if plot %}<h2 id="trade-off">Erasure against preservation</h2>
<img id="trade-off-plot" src="{{ plot }}" alt="ESR-1 against PSR-1 per run" width="640" height="480">{% endif %}
{% for s in sections %}
<section id="suite-{{ loop.index }}">
<h2>{{ s.name }}</h2>
<h3>Leaderboard</h3>
<table class="leaderboard"><thead><tr><th>method</th><th>model</th><th>erased</th><th>prompts</th>
{% for m, k, hi in s.keys %}<th>{{ m }}.{{ k }} {{ "↑" if hi else "↓" }}</th>{% endfor %}</tr></thead><tbody>
{% for run, cells in s.leaderboard %}<tr><th>{{ run.method_label() }}</th><td>{{ run.model_label }}</td>
<td>{{ run.concepts|join(", ") }}</td><td class="num">{{ run.result.suite.prompts }}{% if run.limit %} (--limit){% endif %}</td>
{% for c in cells %}<td class="num">{{ c.text() if c else "–" }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% if s.breakdown %}<h3>By category</h3>
{% for key, rows in s.breakdown %}<table class="breakdown"><caption>{{ key }}</caption><thead><tr><th>category</th>
{% for run in s.runs %}<th>{{ run.method_label() }}</th>{% endfor %}</tr></thead><tbody>
{% for category, cells in rows %}<tr><th>{{ category }}</th>{% for c in cells %}<td class="num">{{ c.text() if c else "–" }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>{% endfor %}{% endif %}
{% for grid in s.grids %}<h3>Videos on {{ grid.model }}: the same prompts across methods</h3>
<table class="videos"><thead><tr><th>prompt</th>{% for run in grid.runs %}<th>{{ run.method_label() }}</th>{% endfor %}</tr></thead><tbody>
{% for row in grid.rows %}<tr><td class="prompt"><span class="prompt-text">{{ row.prompt }}</span><br><span class="category">{{ row.category }} · {{ row.prompt_id }}</span></td>
{% for src in row.videos %}<td>{% if src %}<video src="{{ src }}" controls muted loop playsinline preload="auto"></video>{% else %}<span class="missing">video not found</span>{% endif %}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>{% else %}<p class="missing">No videos: these runs' folders hold no samples.jsonl or their videos are elsewhere.</p>{% endfor %}
</section>
{% endfor %}
{% if attacks %}<section id="attacks"><h2>Attacks: the target prompts before and after</h2>
{% for a in attacks %}<h3>{{ a.title }}</h3><p class="attack-summary">{{ a.summary }}</p>
<table class="attack"><thead><tr><th>original prompt</th><th>video</th><th>attacked prompt</th><th>video</th></tr></thead><tbody>
{% for row in a.rows %}<tr><td class="prompt"><span class="prompt-text">{{ row.original }}</span><br><span class="category">{{ row.prompt_id }} · {{ "concept shown" if row.shown_before else "erased" }}</span></td>
<td>{% if row.before %}<video src="{{ row.before }}" controls muted loop playsinline preload="auto"></video>{% else %}<span class="missing">video not found</span>{% endif %}</td>
<td class="prompt"><span class="prompt-text">{{ row.attacked }}</span><br><span class="category">{{ "concept back" if row.shown_after else "still erased" }}{% if row.shown_after and not row.shown_before %} (recovered){% endif %}</span></td>
<td>{% if row.after %}<video src="{{ row.after }}" controls muted loop playsinline preload="auto"></video>{% else %}<span class="missing">video not found</span>{% endif %}</td></tr>
{% endfor %}</tbody></table>{% endfor %}</section>{% endif %}
</body></html>
"""


def write_site(paths: list[str], out_dir: Path, max_prompts: int = MAX_PROMPTS) -> Path:
    """Write ``out_dir/index.html`` and ``out_dir/videos/``; returns the page."""
    from jinja2 import Environment

    from .store import atomic_write_text

    if out_dir is None:
        raise ErasebenchError("--format html needs --out DIR (the folder the site is written to)")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ErasebenchError(f"--out {str(out_dir)!r} is not a folder")
    from .report import find_named

    attack_files = find_named(paths, "attack.json")
    try:
        runs = load_runs(paths)
    except ErasebenchError:
        if not attack_files:
            raise
        runs = []
    sections = build_sections(runs, out_dir, max_prompts)
    attacks = [attack_section(file, out_dir) for file in attack_files]
    page = Environment(autoescape=True).from_string(TEMPLATE).render(
        runs=runs, sections=sections, plot=trade_off_plot(sections), attacks=attacks
    )
    index = out_dir / "index.html"
    atomic_write_text(index, page)
    return index

"""The ``erasebench`` command: run, list, report, verify.

Bad input prints one line ``error: ...`` on stderr and exits with code 2, before anything is written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .errors import ErasebenchError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Evaluate concept erasure in text-to-video diffusion models.",
)
err_console = Console(stderr=True)
out_console = Console()


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        out_console.print(f"erasebench {__version__}", markup=False, highlight=False)
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Evaluate concept erasure in text-to-video diffusion models."""


def fail(message: str) -> None:
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def parse_assignments(items: list[str] | None, what: str) -> dict[str, Any]:
    """``KEY=VALUE`` items as a dict, each value read as YAML (``3`` an int, ``true`` a bool, ``a`` a string)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ErasebenchError(f"{what} {item!r} is not KEY=VALUE")
        try:
            out[key.strip()] = yaml.safe_load(value) if value else ""
        except (yaml.YAMLError, ValueError, TypeError, RecursionError):
            raise ErasebenchError(f"{what} {item!r}: the value {value!r} is not a YAML value (quote it)") from None
    return out


#: run.yaml keys that hold a mapping, and what each one is
CONFIG_MAPPINGS = {"eraser": "the eraser {name, args}", "eraser_args": "eraser arguments", "generation": "generation settings"}


def build_spec(config: Optional[Path], cli: dict[str, Any]) -> "RunSpec":
    """The run's spec from ``--config`` (a run.yaml) and the options (which win); ``metric_args``
    (METRIC -> {KEY: VALUE}) apply to the run's metrics wherever they are named: options, run.yaml or the suite."""
    from .runner import load_spec_file
    from .specs import RunSpec, parse_generation, short_repr
    from .suites import load_suite_spec

    data: dict[str, Any] = dict(load_spec_file(config)) if config else {}
    where = f"config file {str(config)!r}" if config else "the options"
    for key, what in CONFIG_MAPPINGS.items():
        if key in data and not isinstance(data[key], dict):
            raise ErasebenchError(f"{where}: {key} {short_repr(data[key])} is not allowed: use a mapping of {what}")
    if "method" in data:
        data["eraser"] = {"name": data.pop("method"), "args": data.pop("eraser_args", {})}
    metric_args = cli.pop("metric_args", None) or {}
    for key, value in cli.items():
        if value is None or value == {} or value == ():
            continue
        if key == "method":
            eraser = dict(data.get("eraser") or {})
            eraser["name"] = value
            data["eraser"] = eraser
        elif key == "eraser_args":
            eraser = dict(data.get("eraser") or {})
            args = eraser.get("args") or {}
            if not isinstance(args, dict):
                raise ErasebenchError(f"{where}: eraser.args {short_repr(args)} is not allowed: use a mapping of eraser arguments")
            eraser["args"] = {**args, **value}
            data["eraser"] = eraser
        elif key == "generation":
            data["generation"] = {**data.get("generation", {}), **value}
        else:
            data[key] = value
    if isinstance(data.get("metrics"), str):
        data["metrics"] = [m.strip() for m in data["metrics"].split(",") if m.strip()]
    if isinstance(data.get("metrics"), (list, tuple)):
        data["metrics"] = [{"name": m} if isinstance(m, str) else m for m in data["metrics"]]
    if "eraser" not in data:
        raise ErasebenchError("no method given: pass --method NAME (see erasebench list erasers)")
    if "suite" not in data:
        raise ErasebenchError("no suite given: pass --suite NAME (see erasebench list suites)")
    if not isinstance(data["suite"], str):
        raise ErasebenchError(f"{where}: suite {short_repr(data['suite'])} is not allowed: use a suite name or a path to a suite YAML")
    if "generation" in data:
        parse_generation(data["generation"])  # one line naming the setting, before anything else is read
    if not data.get("model") or metric_args:
        suite_spec, _ = load_suite_spec(data["suite"])
        if not data.get("model"):
            if not suite_spec.default_model:
                raise ErasebenchError(f"no --model given and suite {suite_spec.name!r} names no default model")
            data["model"] = suite_spec.default_model
        if metric_args:
            data["metrics"] = with_metric_args(data.get("metrics") or suite_spec.metrics, metric_args)
    try:
        return RunSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
            raise ErasebenchError(
                f"{where}: unknown setting {loc!r}; settings: {', '.join(sorted({*RunSpec.model_fields, 'method', 'eraser_args'}))}"
            ) from None
        flag = "--" + loc.replace("_", "-")
        raise ErasebenchError(f"{flag} {short_repr(err.get('input'))}: {err['msg']}") from None


def with_metric_args(metrics: Any, metric_args: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's metrics with ``--metric-arg`` values merged into their arguments; a metric the run does not
    use is an error."""
    from .specs import PluginSpec

    if not isinstance(metrics, (list, tuple)):
        raise ErasebenchError(f"metrics {metrics!r} is not allowed: use a list of metric names")
    try:
        plugins = [m if isinstance(m, PluginSpec) else PluginSpec.model_validate(m) for m in metrics]
    except ValidationError as exc:
        raise ErasebenchError(f"metrics {exc.errors()[0]['input']!r}: {exc.errors()[0]['msg']}") from None
    names = {m.name for m in plugins}
    for name in metric_args:
        if name not in names:
            raise ErasebenchError(
                f"--metric-arg names metric {name!r}, which this run does not use ({', '.join(sorted(names)) or 'none'})"
            )
    return [{"name": m.name, "args": {**m.args, **metric_args.get(m.name, {})}} for m in plugins]


def make_progress() -> tuple[Progress, Any]:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err_console,
    )

    def factory(description: str, total: int):
        if not progress.live.is_started:
            progress.start()
        task = progress.add_task(description, total=total)
        return lambda n=1: progress.advance(task, n)

    return progress, factory


def leaderboard_row(results: "dict[str, Any] | RunResult") -> Table:
    """One run's summary, one line per aggregate (so it fits 80 columns whatever the number of metrics):
    value, 95 % interval and, with several categories, the mean of the categories (docs/results.md)."""
    from rich.markup import escape

    from .report import format_interval
    from .results import RunResult

    result = results if isinstance(results, RunResult) else RunResult.from_data(results)
    aggregates = result.aggregates
    means = aggregates.category_mean
    title = f"{result.suite.name} on {result.model.label or result.spec.model}: {result.method_label()}"
    table = Table(title=escape(title), title_justify="left")
    table.add_column("aggregate", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("95% CI", justify="right", no_wrap=True)
    if means:
        table.add_column("cat. mean", justify="right", no_wrap=True)
        table.caption = f"cat. mean: unweighted mean over the {len(aggregates.by_category)} categories"
    for metric, values in aggregates.overall.items():
        table.add_row(f"[bold]{escape(metric)}[/bold]", *[""] * (3 if means else 2))
        for key, value in values.items():
            interval = aggregates.interval(metric, key)
            row = [
                f"  {escape(key)}",
                f"{value:.4f}" if isinstance(value, float) else str(value),
                escape(format_interval(interval, 3)) if interval else "",
            ]
            if means:
                mean = means.get(metric, {}).get(key)
                row.append(f"{mean:.4f}" if mean is not None else "")
            table.add_row(*row)
    return table


@app.command()
def run(
    method: Optional[str] = typer.Option(None, "--method", "-m", help="Eraser name (erasebench list erasers)."),
    suite: Optional[str] = typer.Option(None, "--suite", "-s", help="Suite name or path to a suite YAML."),
    model: Optional[str] = typer.Option(None, "--model", help="Named model, hub id (owner/name) or local pipeline folder."),
    concept: Optional[str] = typer.Option(None, "--concept", help="Concept(s) to erase, comma-separated (default: the suite's)."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Hub revision of the model."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metric names (default: the suite's)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use the first N prompts of the suite."),
    samples: Optional[int] = typer.Option(None, "--samples", help="Videos per prompt."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Run seed mixed into derived per-prompt seeds (0 = the suite's own)."),
    seed_policy: Optional[str] = typer.Option(None, "--seed-policy", help="derived | column | fixed:N (default: the suite's)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="float32, float16 or bfloat16."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Videos per pipeline call."),
    steps: Optional[int] = typer.Option(None, "--steps", help="num_inference_steps override."),
    frames: Optional[int] = typer.Option(None, "--frames", help="num_frames override."),
    height: Optional[int] = typer.Option(None, "--height"),
    width: Optional[int] = typer.Option(None, "--width"),
    guidance_scale: Optional[float] = typer.Option(None, "--guidance-scale"),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler",
        help="diffusers scheduler NAME[:KEY=VALUE,...] built from the model's config, or 'pipeline' (default: the suite's).",
    ),
    erase_mode: Optional[str] = typer.Option(
        None, "--erase-mode", help="per-category | joint: how several concepts are erased (default: the suite's)."
    ),
    gen: Optional[list[str]] = typer.Option(None, "--gen", help="Extra pipeline kwarg KEY=VALUE (repeatable)."),
    eraser_arg: Optional[list[str]] = typer.Option(None, "--eraser-arg", help="Eraser argument KEY=VALUE (repeatable)."),
    metric_arg: Optional[list[str]] = typer.Option(None, "--metric-arg", help="Metric argument METRIC.KEY=VALUE (repeatable)."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder holding the suite's data files."),
    video_codec: Optional[str] = typer.Option(None, "--video-codec", help="lossless (default) or h264."),
    overwrite: Optional[str] = typer.Option(None, "--overwrite", help="always | never | only-missing (default) | only-cache."),
    out: Path = typer.Option(Path("erasebench-runs"), "--out", "-o", help="Output root: videos, scores, runs."),
    config: Optional[Path] = typer.Option(None, "--config", help="run.yaml with any of these settings."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Generate one video per (prompt, sample) with the eraser applied, score them, write results."""
    try:
        from .runner import Runner, parse_plugin_list, plan_run

        generation = {
            k: v
            for k, v in {"num_inference_steps": steps, "num_frames": frames, "height": height, "width": width, "guidance_scale": guidance_scale}.items()
            if v is not None
        }
        extra = parse_assignments(gen, "--gen")
        if extra:
            generation["extra"] = extra
        if scheduler:
            name, _, settings = scheduler.partition(":")
            generation["scheduler"] = {
                "name": name.strip(),
                "config": parse_assignments([x for x in settings.split(",") if x.strip()], "--scheduler setting"),
            }
        metric_args: dict[str, dict[str, Any]] = {}
        for key, value in parse_assignments(metric_arg, "--metric-arg").items():
            name, dot, arg = key.partition(".")
            if not dot or not name or not arg:
                raise ErasebenchError(f"--metric-arg {key!r} must be METRIC.KEY=VALUE")
            metric_args.setdefault(name, {})[arg] = value
        spec = build_spec(
            config,
            {
                "method": method,
                "eraser_args": parse_assignments(eraser_arg, "--eraser-arg"),
                "suite": suite,
                "concepts": tuple(c.strip() for c in concept.split(",") if c.strip()) if concept else None,
                "erase_mode": erase_mode,
                "model": model,
                "model_revision": revision,
                "metrics": parse_plugin_list(metrics),
                "metric_args": metric_args,
                "limit": limit,
                "samples": samples,
                "seed": seed,
                "seed_policy": seed_policy,
                "device": device,
                "dtype": dtype,
                "batch_size": batch_size,
                "generation": generation,
                "data_dir": data_dir,
                "video_codec": video_codec,
                "overwrite": overwrite,
            },
        )
        plan = plan_run(spec, out)
        progress, factory = make_progress()
        log = (lambda s: None) if quiet else (lambda s: err_console.print(s, markup=False, highlight=False))
        for note in plan.notes:
            err_console.print(note, markup=False, highlight=False)
        try:
            results = Runner(plan, None if quiet else factory, log).run()
        except KeyboardInterrupt:
            if progress.live.is_started:
                progress.stop()
            err_console.print(
                "interrupted: finished videos are kept; run the same command again to resume", markup=False, highlight=False
            )
            raise typer.Exit(130)
        finally:
            if progress.live.is_started:
                progress.stop()
    except ErasebenchError as exc:
        fail(str(exc))
        return
    if results is None:  # a non-main process of a distributed run
        return
    out_console.print(leaderboard_row(results))
    out_console.print("results:", markup=False, highlight=False)
    out_console.print(f"  {plan.run_dir / 'results.json'}", markup=False, highlight=False, overflow="ignore", crop=False)
    out_console.print("videos:", markup=False, highlight=False)
    for group in results["videos"].get("groups", []):
        out_console.print(f"  {Path(results['videos']['root']) / group}", markup=False, highlight=False, overflow="ignore", crop=False)


@app.command("list")
def list_plugins(
    kind: Optional[str] = typer.Argument(None, help="erasers | suites | metrics | models | families (default: all)."),
    suite: Optional[str] = typer.Option(None, "--suite", help="Show one suite's prompt count per category."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir"),
    details: bool = typer.Option(False, "--details", help="Erasers and metrics: every argument with its default."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (for scripts) instead of tables."),
) -> None:
    """List the registered plugins with a one-line description each, or one suite's prompt counts."""
    import json

    try:
        if suite:
            from collections import Counter

            from .suites import load_suite

            loaded = load_suite(suite, data_dir)
            counts = Counter(r.category for r in loaded.records)  # in source order
            if as_json:
                sys.stdout.write(json.dumps({"suite": loaded.name, "version": loaded.spec.version,
                                             "prompts": len(loaded.records), "categories": dict(counts)}, indent=1) + "\n")
                return
            table = Table(title=f"{loaded.name} v{loaded.spec.version}: {len(loaded.records)} prompts")
            table.add_column("category")
            table.add_column("prompts", justify="right")
            for category, count in counts.items():
                table.add_row(category, str(count))
            out_console.print(table)
            return
        kinds = ["erasers", "suites", "metrics", "models", "families"]
        if kind is not None and kind not in kinds:
            raise ErasebenchError(f"list {kind!r} is not allowed: use one of {', '.join(kinds)}")
        chosen = [kind] if kind else kinds
        if as_json:
            sys.stdout.write(json.dumps({k: plugin_rows(k, details) for k in chosen}, indent=1, default=str) + "\n")
            return
        for name in chosen:
            out_console.print(plugin_table(name, details))
    except ErasebenchError as exc:
        fail(str(exc))


def config_arguments(config_cls: Any) -> dict[str, Any]:
    """A plugin Config's arguments and their defaults ("required" for those without one)."""
    out = {}
    for name, field in config_cls.model_fields.items():
        out[name] = "required" if field.is_required() else (field.default_factory() if field.default_factory else field.default)
    return out


def plugin_rows(kind: str, details: bool = False) -> list[dict[str, Any]]:
    """One dict per registered plugin of ``kind``: name and description (plus arguments with ``details``)."""
    rows: list[dict[str, Any]] = []
    if kind in ("erasers", "metrics"):
        if kind == "erasers":
            from .erasers import ERASERS as registry
        else:
            from .metrics.base import METRICS as registry
        for name in registry.names():
            cls = registry.get(name)
            row: dict[str, Any] = {"name": name, "description": cls.describe()}
            if details:
                row["arguments"] = config_arguments(cls.Config)
                row["source"] = getattr(cls, "source", "")
                if kind == "metrics":
                    row["higher_is_better"] = getattr(cls, "higher_is_better", None)
            rows.append(row)
    elif kind == "suites":
        from .suites import SUITES, load_suite_spec

        for name in SUITES.names():
            try:
                spec, _ = load_suite_spec(name)
                rows.append({"name": name, "description": spec.description.strip().splitlines()[0] if spec.description else ""})
            except ErasebenchError as exc:
                rows.append({"name": name, "description": f"(invalid: {exc})"})
    elif kind == "models":
        from .models.base import MODELS

        for name in MODELS.names():
            named = MODELS.get(name)
            rows.append({"name": name, "description": f"{named.description} ({named.hub_id or 'shipped'})"})
    else:
        from .models.base import FAMILIES

        for name in FAMILIES.names():
            family = FAMILIES.get(name)
            rows.append({"name": name, "description": f"{family.description} [{', '.join(family.pipeline_classes)}]"})
    return rows


def plugin_table(kind: str, details: bool = False) -> Table:
    import json

    table = Table(title=kind)
    table.add_column("name", no_wrap=True)
    table.add_column("description", overflow="fold")
    for row in plugin_rows(kind, details):
        text = row["description"]
        if details and "arguments" in row:
            args = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in row["arguments"].items())
            text += f"\narguments: {args or 'none'}"
        table.add_row(row["name"], text)
    return table


@app.command()
def report(
    paths: list[str] = typer.Argument(..., help="Run folders, results.json files, or folders to search."),
    fmt: str = typer.Option("md", "--format", "-f", help="md | csv | latex | html (a static site in --out)"),
    metric: Optional[list[str]] = typer.Option(
        None, "--metric", help="Keep the columns of this KEY, METRIC.KEY or METRIC (repeatable)."
    ),
    digits: int = typer.Option(3, "--digits"),
    intervals: bool = typer.Option(True, "--intervals/--no-intervals", help="Print each value's 95% interval beside it."),
    output: Optional[Path] = typer.Option(None, "--output", help="Write the table to this file."),
    out: Optional[Path] = typer.Option(None, "--out", help="--format html: the folder the site is written to."),
) -> None:
    """Build a leaderboard (rows: runs by settings; columns: suite x metric key) from results files alone."""
    try:
        from .report import find_results, leaderboard, load_results, render

        if fmt == "html":
            from .html_report import write_site

            out_console.print(f"report: {write_site(paths, out)}", markup=False, highlight=False)
            return
        if fmt not in {"md", "csv", "latex"}:
            raise ErasebenchError(f"--format {fmt!r} is not allowed: use md, csv, latex or html")
        text = render(leaderboard(load_results(find_results(paths)), metric), fmt, digits, intervals)
    except ErasebenchError as exc:
        fail(str(exc))
        return
    if output:
        from .store import atomic_write_text

        atomic_write_text(output, text + "\n")
    else:
        sys.stdout.write(text + "\n")


@app.command()
def verify(run_dir: Path = typer.Argument(..., help="A run folder (holding manifest.json).")) -> None:
    """Check a run folder: every expected video present and decodable, sidecars consistent."""
    try:
        from .verify import verify_run

        count, problems = verify_run(run_dir)
    except ErasebenchError as exc:
        fail(str(exc))
        return
    for problem in problems:
        err_console.print(problem, markup=False, highlight=False)
    out_console.print(f"{count - len(problems)} of {count} videos OK", markup=False, highlight=False)
    if problems:
        raise typer.Exit(1)


@app.command("table")
def table_cmd(
    name: str = typer.Argument(..., help="Paper table (erasebench table list) or a table spec .yaml."),
    paths: Optional[list[str]] = typer.Argument(None, help="Run folders, results.json files, or folders to search."),
    fmt: str = typer.Option("md", "--format", "-f", help="md | latex | csv | html"),
    published: bool = typer.Option(False, "--published", help="Put the published value and Δ beside each cell."),
    model_as: Optional[list[str]] = typer.Option(
        None, "--model-as", help="PAPER_MODEL=RUN_MODEL: runs of RUN_MODEL fill PAPER_MODEL's cells, marked † (repeatable)."
    ),
    output: Optional[Path] = typer.Option(None, "--output", help="Write the table to this file."),
) -> None:
    """Fill a paper table (docs/tables.md) from runs; list the runs its empty cells need."""
    try:
        from .tables.command import table_text, write_output

        text, messages = table_text(name, paths, fmt, published, model_as)
    except ErasebenchError as exc:
        fail(str(exc))
        return
    write_output(text, output)
    for line in messages:
        err_console.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command("compare")
def compare_cmd(
    paths: list[str] = typer.Argument(..., help="Run folders, results.json files, or folders to search."),
    reference: str = typer.Option(..., "--reference", help="Paper whose published numbers to compare with (results/references)."),
    model_as: Optional[list[str]] = typer.Option(None, "--model-as", help="PAPER_MODEL=RUN_MODEL stand-in (never fails)."),
    tolerance: Optional[list[str]] = typer.Option(None, "--tolerance", help="METRIC.KEY=VALUE in the paper's unit (repeatable)."),
) -> None:
    """Ours beside the published numbers, with our 95 % interval; exit 1 when a primary one is out of tolerance."""
    try:
        from .tables.command import compare_text

        text, code = compare_text(paths, reference, model_as, tolerance)
    except ErasebenchError as exc:
        fail(str(exc))
        return
    sys.stdout.write(text + "\n")
    if code:
        raise typer.Exit(code)


@app.command()
def gate(
    paths: list[str] = typer.Argument(..., help="Run folders, results.json files, or folders to search."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="Baseline JSON (docs/gate.md)."),
    record: bool = typer.Option(False, "--record", help="Write --baseline from these runs instead of checking them."),
    check: Optional[list[str]] = typer.Option(
        None, "--check", help="With --record: METRIC.KEY[:higher|lower][:TOLERANCE] to gate (repeatable)."
    ),
    require_all: bool = typer.Option(False, "--require-all", help="Also fail when a baseline entry matches no run given."),
) -> None:
    """Compare runs with a stored baseline: exit 1 with a diff when a gated key regressed beyond its tolerance."""
    try:
        from .gate import format_report, load_baseline, parse_check, record_baseline, run_gate
        from .report import find_results, load_results

        if baseline is None:
            raise ErasebenchError("no --baseline given: pass --baseline FILE (docs/gate.md)")
        if check and not record:
            raise ErasebenchError("--check is only used with --record (a baseline file names its own checks)")
        results = load_results(find_results(paths))
        if record:
            if not check:
                raise ErasebenchError("--record needs at least one --check METRIC.KEY[:higher|lower][:TOLERANCE]")
            record_baseline(results, dict(parse_check(c) for c in check)).to_disk(baseline)
            out_console.print(f"recorded {len(results)} runs into {baseline}", markup=False, highlight=False)
            return
        report = run_gate(load_baseline(baseline), results)
    except ErasebenchError as exc:
        fail(str(exc))
        return
    sys.stdout.write(format_report(report) + "\n")
    if report.regressions or (require_all and report.unmatched):
        raise typer.Exit(1)


def _click_exceptions():
    """The click exception classes typer raises (typer >= 0.17 vendors click as ``typer._click``)."""
    try:
        from typer._click import exceptions
    except ImportError:  # older typer: plain click
        from click import exceptions
    return exceptions


def main() -> None:
    """The console script: click's own usage errors (an unknown option, a value of the wrong type) become one
    ``error:`` line and exit code 2, like every other bad input."""
    exceptions = _click_exceptions()
    try:
        code = app(standalone_mode=False)
    except exceptions.NoArgsIsHelpError as exc:  # bare ``erasebench``: the help text
        exc.show()
        sys.exit(exc.exit_code)
    except exceptions.ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        where = f"erasebench {ctx.command.name}: " if ctx is not None and ctx.command.name and ctx.parent else ""
        message = " ".join(exc.format_message().split())
        err_console.print(f"error: {where}{message} (see --help)", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        err_console.print("error: aborted", markup=False, highlight=False)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

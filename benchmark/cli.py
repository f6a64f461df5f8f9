"""The ``erasebench`` command: run, list, report, verify.

Bad input prints one line ``error: ...`` on stderr and exits with code 2, before anything is written.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .errors import ErasebenchError

if TYPE_CHECKING:  # annotations only: the CLI imports its modules lazily
    from .results import RunResult
    from .specs import RunSpec

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Evaluate concept erasure in text-to-video diffusion models.",
)
err_console = Console(stderr=True)
out_console = Console()

#: typer's type names as --help prints them: click's plain words (options name theirs with ``metavar``)
PLAIN_TYPES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "Path": "PATH", "bool": ""}


def _plain_argument_type(self: Any, ctx: Any) -> str:
    """An argument's type in --help as TEXT / PATH (typer >= 0.2x prints ``<list[str]>``)."""
    bare = self.bare_type() if hasattr(self, "bare_type") else ""
    inner = bare[5:-1] if bare.startswith("list[") else bare
    return PLAIN_TYPES.get(inner, inner.upper())


def _plain_option_type(self: Any, ctx: Any) -> str:
    """An option's ``metavar``, else its type as a plain word (a flag: none)."""
    if self.metavar is not None:
        return self.metavar
    return "" if getattr(self, "is_flag", False) else _plain_argument_type(self, ctx)


try:  # the typer versions that print <type>; older ones print plain names already
    from typer.core import TyperArgument as _TyperArgument, TyperOption as _TyperOption

    for _cls, _plain in ((_TyperArgument, _plain_argument_type), (_TyperOption, _plain_option_type)):
        if hasattr(_cls, "display_type_rich") and hasattr(_cls, "bare_type"):
            _cls.display_type_rich = _plain
except ImportError:  # pragma: no cover
    pass


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        out_console.print(f"erasebench {__version__}", markup=False, highlight=False)
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit.", metavar=""
    ),
) -> None:
    """Evaluate concept erasure in text-to-video diffusion models."""


def note(line: str, console: Console | None = None) -> None:
    """One message on stderr. On a terminal it wraps at whole words to the terminal's width (a path or any
    other word longer than a line stays whole); piped, it stays one line for scripts and logs."""
    console = console or err_console
    if console.is_terminal and len(line) > console.width:
        line = "\n".join(textwrap.wrap(line, width=console.width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False))
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def split_names(text: str | None) -> tuple[str, ...] | None:
    """``"a, b,"`` -> ``("a", "b")`` (a comma-separated flag or config value); None stays None."""
    return None if text is None else tuple(n.strip() for n in text.split(",") if n.strip())


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
CONFIG_MAPPINGS = {
    "eraser": "the eraser {name, args}", "eraser_args": "eraser arguments", "generation": "generation settings",
    "memory": "memory options {offload, vae_tiling, vae_slicing, compile}",
}


#: run.yaml keys named as the flags name them (``--concept`` -> ``concept``, ``-`` or ``_``) and the RunSpec
#: field each sets; the field names (``concepts``, ``eraser_args``, ``model_revision``, ``generation``) work too
CONFIG_KEYS = {
    "method": "method", "suite": "suite", "model": "model", "concept": "concepts", "revision": "model_revision",
    "metrics": "metrics", "limit": "limit", "samples": "samples", "seed": "seed", "seed_policy": "seed_policy",
    "device": "device", "dtype": "dtype", "batch_size": "batch_size", "erase_mode": "erase_mode",
    "eraser_arg": "eraser_args", "metric_arg": "metric_args", "data_dir": "data_dir", "video_codec": "video_codec",
    "overwrite": "overwrite",
}
#: flag-named run.yaml keys that set a generation setting (``generation.<setting>``)
CONFIG_GENERATION = {
    "steps": "num_inference_steps", "frames": "num_frames", "height": "height", "width": "width",
    "guidance_scale": "guidance_scale", "gen": "extra", "scheduler": "scheduler",
}
#: flag-named run.yaml keys that set a memory option (``memory.<option>``)
CONFIG_MEMORY = ("offload", "vae_tiling", "vae_slicing", "compile")


def read_config(config: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """A run.yaml as RunSpec-shaped data, and for each field the key the user wrote (for error lines)."""
    from .runner import load_spec_file
    from .specs import short_repr

    where = f"config file {str(config)!r}"
    data: dict[str, Any] = {}
    written: dict[str, str] = {}
    for key, value in dict(load_spec_file(config)).items():
        name = str(key).replace("-", "_")
        if name in CONFIG_GENERATION or name in CONFIG_MEMORY:
            group = "generation" if name in CONFIG_GENERATION else "memory"
            if name == "scheduler" and isinstance(value, str) and ":" in value:
                value = scheduler_spec(value)
            data.setdefault(group, {})[CONFIG_GENERATION.get(name, name)] = value
            written[f"{group}.{CONFIG_GENERATION.get(name, name)}"] = str(key)
            continue
        field = CONFIG_KEYS.get(name, name)
        if field == "concepts" and isinstance(value, str):
            value = list(split_names(value))
        if field in data and isinstance(data[field], dict) and isinstance(value, dict):
            value = {**data[field], **value}
        elif field in data:
            raise ErasebenchError(f"{where}: {key} sets {field} a second time ({written[field]} already did); keep one")
        data[field] = value
        written[field] = str(key)
    for key, what in CONFIG_MAPPINGS.items():
        if key in data and not isinstance(data[key], dict):
            raise ErasebenchError(f"{where}: {written.get(key, key)} {short_repr(data[key])} is not allowed: use a mapping of {what}")
    return data, written


def eraser_args_for(method: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """``args`` keyed by eraser name (``{refusal: {k: 50}, safree: {alpha: 0.01}}``): the method's own
    (``{}`` when it has none); None when ``args`` is one flat mapping of arguments."""
    from .erasers import ERASERS

    if args and all(k in ERASERS and isinstance(v, dict) for k, v in args.items()):
        return dict(args.get(method, {}))
    return None


def build_spec(config: Optional[Path], cli: dict[str, Any], notes: list[str] | None = None) -> "RunSpec":
    """The run's spec from ``--config`` (a run.yaml, keys named as the flags) and the options (which win).

    An eraser's arguments apply only to that eraser: a run.yaml's ``eraser_arg`` is either keyed by eraser
    name, or belongs to the run.yaml's ``method`` and is left out (with a line in ``notes``) when ``--method``
    names another. ``metric_args`` (METRIC -> {KEY: VALUE}) apply to the run's metrics wherever they are
    named: options, run.yaml or the suite."""
    from .specs import RunSpec, parse_generation, short_repr
    from .suites import load_suite_spec

    data, written = read_config(config) if config else ({}, {})
    where = f"config file {str(config)!r}" if config else "the options"
    config_method = data.pop("method", None)
    config_args = data.pop("eraser_args", None)
    if config_args is not None and not isinstance(config_args, dict):
        raise ErasebenchError(f"{where}: {written.get('eraser_args')} {short_repr(config_args)} is not allowed: use a mapping of eraser arguments")
    eraser = dict(data.pop("eraser", None) or {})
    if config_method is not None:
        eraser["name"] = config_method
    metric_args: dict[str, dict[str, Any]] = {}
    given = data.pop("metric_args", None) or {}
    if not isinstance(given, dict):
        raise ErasebenchError(f"{where}: {written.get('metric_args')} {short_repr(given)} is not allowed: use a mapping METRIC.KEY: VALUE")
    for key, value in given.items():  # METRIC: {KEY: VALUE} or METRIC.KEY: VALUE
        name, dot, arg = str(key).partition(".")
        if not isinstance(value, dict) and not (dot and name and arg):
            raise ErasebenchError(f"{where}: {written.get('metric_args')} {key!r} must be METRIC.KEY: VALUE or METRIC: {{KEY: VALUE}}")
        metric_args.setdefault(name, {}).update(value if not dot else {arg: value})
    for name, values in (cli.pop("metric_args", None) or {}).items():
        metric_args[name] = {**metric_args.get(name, {}), **values}
    for key, value in cli.items():
        if value is None or value == {} or value == ():
            continue
        if key == "method":
            eraser["name"] = value
        elif key == "eraser_args":
            continue  # below, once the eraser is known
        elif key in ("generation", "memory"):
            data[key] = {**data.get(key, {}), **value}
        else:
            data[key] = value
        written.pop(key, None)  # an option's value: its error names the option
    if config_args:
        name = eraser.get("name")
        keyed = eraser_args_for(str(name), config_args)
        if keyed is not None:
            config_args = keyed
        elif config_method is not None and name != config_method:
            if notes is not None:
                notes.append(
                    f"note: {where} eraser arguments for {config_method!r} not applied: --method is {name!r} "
                    f"(key them by eraser name to keep arguments for several)"
                )
            config_args = {}
    eraser_args = {**(eraser.get("args") or {}), **(config_args or {}), **(cli.get("eraser_args") or {})}
    if eraser:
        data["eraser"] = {**eraser, "args": eraser_args}
    if isinstance(data.get("metrics"), str):
        data["metrics"] = list(split_names(data["metrics"]))
    if isinstance(data.get("metrics"), (list, tuple)):
        data["metrics"] = [{"name": m} if isinstance(m, str) else m for m in data["metrics"]]
    if not data.get("eraser", {}).get("name"):
        raise ErasebenchError("no method given: pass --method NAME (see erasebench list erasers)")
    if "suite" not in data:
        raise ErasebenchError("no suite given: pass --suite NAME (see erasebench list suites)")
    if not isinstance(data["suite"], str):
        raise ErasebenchError(f"{where}: {written.get('suite', 'suite')} {short_repr(data['suite'])} is not allowed: use a suite name or a path to a suite YAML")
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
            keys = sorted({*CONFIG_KEYS, *CONFIG_GENERATION, *CONFIG_MEMORY, "generation", "memory"})
            raise ErasebenchError(f"{where}: unknown setting {written.get(loc, loc)!r}; settings: {', '.join(keys)}") from None
        if err["type"] == "extra_forbidden" and err["loc"][0] == "memory":
            raise ErasebenchError(f"{where}: unknown setting {loc!r}; memory options: {', '.join(CONFIG_MEMORY)}") from None
        field = str(err["loc"][0])
        user_key = written.get(".".join(str(p) for p in err["loc"][:2])) or written.get(field)
        if user_key is not None:  # a run.yaml key: named as the user wrote it
            raise ErasebenchError(f"{where}: {user_key} {short_repr(err.get('input'))}: {err['msg']}") from None
        flag = "--" + str(err["loc"][-1] if err["loc"][0] == "memory" else loc).replace("_", "-")
        flag = {"--concepts": "--concept", "--model-revision": "--revision"}.get(flag, flag)
        raise ErasebenchError(f"{flag} {short_repr(err.get('input'))}: {err['msg']}") from None


def scheduler_spec(text: str) -> dict[str, Any]:
    """``NAME[:KEY=VALUE,...]`` (``--scheduler``, or ``scheduler:`` in a run.yaml) as {name, config}."""
    name, _, settings = text.partition(":")
    return {"name": name.strip(), "config": parse_assignments([x for x in settings.split(",") if x.strip()], "--scheduler setting")}


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


def make_progress(prefix: str = "") -> tuple[Progress, Any]:
    """A progress display on stderr and its factory ``(description, total) -> advance(n=1)``: one bar per
    task with count, elapsed time and ETA (generation, scoring, an eraser's fit); ``prefix`` labels the rank."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err_console,
    )

    tasks: dict[str, Any] = {}

    def factory(description: str, total: int):
        """One bar per description: a loop that reports in several rounds (a fit's batches) extends it."""
        if not progress.live.is_started:
            progress.start()
        task = tasks.get(description)
        if task is None:
            task = tasks[description] = progress.add_task(prefix + description, total=total)
        else:
            progress.update(task, total=progress.tasks[task].total + total)
        return lambda n=1: progress.advance(task, n)

    return progress, factory


def leaderboard_row(results: "dict[str, Any] | RunResult") -> Table:
    """One run's summary, one line per aggregate (so it fits 80 columns whatever the number of metrics): value
    with its count when it is a rate (``0.562 (9/16)``), 95 % interval and, with several categories, the mean
    of the categories (docs/results.md). Keys in one stable order (``report.key_order``); the eraser's
    arguments go in the legend below the table."""
    from rich.markup import escape

    from .report import DIGITS, format_count, format_interval, key_order, rate_counts
    from .results import RunResult, format_setting

    result = results if isinstance(results, RunResult) else RunResult.from_data(results)
    aggregates = result.aggregates
    means = aggregates.category_mean
    counts = rate_counts(result)
    title = f"{result.suite.name} on {result.model.label or result.spec.model}: {result.eraser.name}"
    table = Table(title=escape(title), title_justify="left", caption_justify="left")
    table.add_column("aggregate", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("95% CI", justify="right", no_wrap=True)
    legend = []
    if result.spec.eraser.args:
        args = ", ".join(f"{k}={format_setting(v)}" for k, v in sorted(result.spec.eraser.args.items()))
        legend.append(f"{result.eraser.name}: {args}")
    if means:
        table.add_column("cat. mean", justify="right", no_wrap=True)
        legend.append(f"cat. mean: unweighted mean over the {len(aggregates.by_category)} categories")
    table.caption = escape("\n".join(legend)) if legend else None
    for metric in sorted(aggregates.overall):
        values = aggregates.overall[metric]
        table.add_row(f"[bold]{escape(metric)}[/bold]", *[""] * (3 if means else 2))
        for key in key_order(metric, values):
            value = values[key]
            interval = aggregates.interval(metric, key)
            count = format_count(counts.get(metric, {}).get(key))
            text = f"{value:.{DIGITS}f}" if isinstance(value, float) else str(value)
            row = [f"  {escape(key)}", f"{text} {count}" if count else text,
                   escape(format_interval(interval, DIGITS)) if interval else ""]
            if means:
                mean = means.get(metric, {}).get(key)
                row.append(f"{mean:.{DIGITS}f}" if mean is not None else "")
            table.add_row(*row)
    return table


def run_summary(results: "dict[str, Any] | RunResult", results_file: Path) -> dict[str, Any]:
    """``run --json``: where the run's files are and every overall aggregate with its count and interval."""
    from .report import rate_counts
    from .results import RunResult

    result = results if isinstance(results, RunResult) else RunResult.from_data(results)
    counts = rate_counts(result)
    aggregates: dict[str, dict[str, Any]] = {}
    for metric, values in result.aggregates.overall.items():
        for key, value in values.items():
            entry: dict[str, Any] = {"value": value}
            if key in counts.get(metric, {}):
                entry["count"] = list(counts[metric][key])
            interval = result.aggregates.interval(metric, key)
            if interval is not None:
                entry["interval"] = [interval.lo, interval.hi]
            direction = result.metrics[metric].higher_is_better.get(key) if metric in result.metrics else None
            if direction is not None:
                entry["higher_is_better"] = direction
            aggregates.setdefault(metric, {})[key] = entry
    return {
        "run": result.run_name,
        "results": str(results_file),
        "videos": [str(Path(result.videos.root) / g) for g in result.videos.groups],
        "suite": result.suite.name,
        "model": result.model.label or result.spec.model,
        "method": result.eraser.name,
        "eraser_args": result.spec.eraser.args,
        "aggregates": aggregates,
        "metrics_not_run": result.metrics_not_run,
    }


#: a run whose estimated time is above this asks for --yes before it starts
LONG_RUN_SECONDS = 2 * 3600


def check_duration(plan: Any, yes: bool) -> str | None:
    """The estimate line for a run far beyond the machine: an error without ``--yes``; None when it is short."""
    from . import runner
    from .plan_checks import describe_size, estimate_seconds, format_duration

    seconds = estimate_seconds(plan)  # every planned video: cheap, and an upper bound of the dry run's
    if seconds <= LONG_RUN_SECONDS:
        return None
    dry = runner.dry_run(plan)  # only the videos not cached yet
    seconds = float(dry.estimate_seconds)
    if seconds <= LONG_RUN_SECONDS:
        return None
    g = plan.generation
    what = (
        f"{dry.videos_to_make} videos of {describe_size(g.model_dump()) or 'the pipeline defaults'} "
        f"on {plan.spec.device}: about {format_duration(seconds)} (rough estimate)"
    )
    if not yes:
        raise ErasebenchError(f"this run makes {what}; pass --yes to start it anyway, or lower --limit / --frames / --steps")
    return f"long run: {what}"


def quiet_libraries(verbose: bool) -> None:
    """Keep tokenizer and library warnings (transformers, diffusers, python warnings) out of the terminal
    unless ``--verbose``."""
    import logging
    import os
    import sys
    import warnings

    if verbose:
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_VERBOSITY", "error")  # its retry notices (no network); read when it is imported
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    for name in ("transformers", "diffusers", "huggingface_hub", "accelerate", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for module in ("transformers", "diffusers"):
        if module not in sys.modules:  # the *_VERBOSITY variables above cover a later import (a rerun imports neither)
            continue
        try:
            getattr(__import__(f"{module}.utils", fromlist=["logging"]), "logging").set_verbosity_error()
        except (ImportError, AttributeError):
            pass


def launch_rank() -> tuple[int, int]:
    """(rank, world size) of this process under torchrun / accelerate launch; (0, 1) otherwise."""
    import os

    return int(os.environ.get("RANK", "0") or 0), int(os.environ.get("WORLD_SIZE", "1") or 1)


@app.command()
def run(
    method: Optional[str] = typer.Option(None, "--method", "-m", help="Eraser name (erasebench list erasers).", metavar="TEXT"),
    suite: Optional[str] = typer.Option(None, "--suite", "-s", help="Suite name or path to a suite YAML.", metavar="TEXT"),
    model: Optional[str] = typer.Option(None, "--model", help="Named model, hub id (owner/name) or local pipeline folder.", metavar="TEXT"),
    concept: Optional[str] = typer.Option(None, "--concept", help="Concept(s) to erase, comma-separated (default: the suite's).", metavar="TEXT"),
    revision: Optional[str] = typer.Option(None, "--revision", help="Hub revision of the model.", metavar="TEXT"),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metric names (default: the suite's).", metavar="TEXT"),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use the first N prompts of the suite.", metavar="INTEGER"),
    samples: Optional[int] = typer.Option(None, "--samples", help="Videos per prompt (default: the suite's, usually 1).", metavar="INTEGER"),
    seed: Optional[int] = typer.Option(None, "--seed", help="Run seed mixed into derived per-prompt seeds (0 = the suite's own).", metavar="INTEGER"),
    seed_policy: Optional[str] = typer.Option(None, "--seed-policy", help="derived | column | fixed:N (default: the suite's).", metavar="TEXT"),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cpu).", metavar="TEXT"),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="float32 (default), float16 or bfloat16.", metavar="TEXT"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Videos per pipeline call (default: 1).", metavar="INTEGER"),
    steps: Optional[int] = typer.Option(None, "--steps", rich_help_panel="Generation", help="Denoising steps (default: the model's, else the suite's).", metavar="INTEGER"),
    frames: Optional[int] = typer.Option(None, "--frames", rich_help_panel="Generation", help="Frames per video (default: the model's, else the suite's).", metavar="INTEGER"),
    height: Optional[int] = typer.Option(None, "--height", rich_help_panel="Generation", metavar="INTEGER", help="Video height in pixels (default: the model's size, else the suite's)."),
    width: Optional[int] = typer.Option(None, "--width", rich_help_panel="Generation", metavar="INTEGER", help="Video width in pixels (default: the model's size, else the suite's)."),
    guidance_scale: Optional[float] = typer.Option(None, "--guidance-scale", rich_help_panel="Generation", metavar="FLOAT", help="Classifier-free guidance scale (default: the suite's)."),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", rich_help_panel="Generation",
        help="diffusers scheduler NAME[:KEY=VALUE,...] built from the model's config, or 'pipeline' (default: the suite's).",
     metavar="TEXT",),
    erase_mode: Optional[str] = typer.Option(
        None, "--erase-mode", help="per-category | joint: how several concepts are erased (default: the suite's).", metavar="TEXT"
    ),
    gen: Optional[list[str]] = typer.Option(None, "--gen", rich_help_panel="Generation", help="Extra pipeline kwarg KEY=VALUE (repeatable).", metavar="TEXT"),
    eraser_arg: Optional[list[str]] = typer.Option(None, "--eraser-arg", help="Eraser argument KEY=VALUE (repeatable).", metavar="TEXT"),
    metric_arg: Optional[list[str]] = typer.Option(None, "--metric-arg", help="Metric argument METRIC.KEY=VALUE (repeatable).", metavar="TEXT"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder holding the suite's data files.", metavar="TEXT"),
    video_codec: Optional[str] = typer.Option(None, "--video-codec", help="lossless (default) or h264.", metavar="TEXT"),
    overwrite: Optional[str] = typer.Option(None, "--overwrite", help="always | never | only-missing (default) | only-cache.", metavar="TEXT"),
    offload: Optional[str] = typer.Option(None, "--offload", rich_help_panel="Memory options", help="model | sequential: diffusers CPU offload (needs --device cuda).", metavar="TEXT"),
    vae_tiling: Optional[bool] = typer.Option(None, "--vae-tiling/--no-vae-tiling", rich_help_panel="Memory options", help="Decode in VAE tiles (can change pixels).", metavar=""),
    vae_slicing: Optional[bool] = typer.Option(None, "--vae-slicing/--no-vae-slicing", rich_help_panel="Memory options", help="Decode one video of a batch at a time.", metavar=""),
    compile_denoiser: Optional[bool] = typer.Option(None, "--compile/--no-compile", rich_help_panel="Memory options", help="torch.compile the transformer/unet.", metavar=""),
    out: Path = typer.Option(Path("erasebench-runs"), "--out", "-o", help="Output root: videos, scores, runs.", metavar="PATH"),
    config: Optional[Path] = typer.Option(None, "--config", help="run.yaml with any of these settings.", metavar="PATH"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars.", metavar=""),
    yes: bool = typer.Option(False, "--yes", "-y", help="Start a run whose estimated time is beyond this machine.", metavar=""),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what the run would make and reuse; write nothing, load no model.", metavar=""),
    as_json: bool = typer.Option(False, "--json", help="Print the run's summary as JSON on stdout (nothing else).", metavar=""),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show library and tokenizer warnings.", metavar=""),
) -> None:
    """Generate one video per (prompt, sample) with the eraser applied, score them, write results."""
    quiet_libraries(verbose)
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
            generation["scheduler"] = scheduler_spec(scheduler)
        metric_args: dict[str, dict[str, Any]] = {}
        for key, value in parse_assignments(metric_arg, "--metric-arg").items():
            name, dot, arg = key.partition(".")
            if not dot or not name or not arg:
                raise ErasebenchError(f"--metric-arg {key!r} must be METRIC.KEY=VALUE")
            metric_args.setdefault(name, {})[arg] = value
        spec_notes: list[str] = []
        spec = build_spec(
            config,
            {
                "method": method,
                "eraser_args": parse_assignments(eraser_arg, "--eraser-arg"),
                "suite": suite,
                "concepts": split_names(concept or None),
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
                "memory": {
                    k: v for k, v in {"offload": offload, "vae_tiling": vae_tiling, "vae_slicing": vae_slicing, "compile": compile_denoiser}.items()
                    if v is not None
                },
            },
            spec_notes,
        )
        plan = plan_run(spec, out)
        from .plan_checks import plan_messages

        rank, world = launch_rank()
        say = (lambda line: None) if rank else note
        for line in [*spec_notes, *plan.notes, *plan_messages(plan)]:
            say(line)
        if dry_run:  # benchmark.runner.dry_run: keys from files alone (benchmark/identity.py)
            from .runner import dry_run as plan_dry_run

            report = plan_dry_run(plan)
            if as_json:
                import json

                sys.stdout.write(json.dumps(report.to_dict(), indent=1) + "\n")
            else:
                for line in report.lines():
                    out_console.print(line, markup=False, highlight=False, soft_wrap=True)
            return
        long_run = check_duration(plan, yes)
        if long_run:
            say(long_run)
        progress, factory = make_progress(f"[rank 0 of {world}] " if world > 1 else "")
        show_progress = not quiet and rank == 0  # under torchrun only rank 0 draws (its own shard's progress)
        log = say if not quiet else (lambda line: None)
        try:
            results = Runner(plan, factory if show_progress else None, log).run()
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
    results_file = plan.run_dir / "results.json"
    if as_json:
        import json

        sys.stdout.write(json.dumps(run_summary(results, results_file), indent=1, default=str) + "\n")
        return
    out_console.print(leaderboard_row(results))
    print_paths("results:", [results_file])
    print_paths("videos:", [Path(results["videos"]["root"]) / g for g in results["videos"].get("groups", [])])


def print_paths(label: str, paths: list[Path], console: Console | None = None) -> None:
    """``label`` on its own line, then each path on its own line, never wrapped or cut (copy-paste)."""
    console = console or out_console
    console.print(label, markup=False, highlight=False)
    for path in paths:
        console.print(f"  {path}", markup=False, highlight=False, soft_wrap=True)


@app.command("list")
def list_plugins(
    kind: Optional[str] = typer.Argument(None, help="erasers | suites | metrics | models | families | attacks (default: all)."),
    suite: Optional[str] = typer.Option(None, "--suite", help="Show one suite's prompt count per category.", metavar="TEXT"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", metavar="TEXT", help="Folder holding the suite's data files (else downloaded)."),
    details: bool = typer.Option(False, "--details", help="Erasers, metrics and attacks: every argument with its default.", metavar=""),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (for scripts) instead of tables.", metavar=""),
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
        kinds = ["erasers", "suites", "metrics", "models", "families", "attacks"]
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
    if kind in ("erasers", "metrics", "attacks"):
        if kind == "erasers":
            from .erasers import ERASERS as registry
        elif kind == "attacks":
            from .attacks.base import ATTACKS as registry
        else:
            from .metrics.base import METRICS as registry
        for name in registry.names():
            cls = registry.get(name)
            row: dict[str, Any] = {"name": name, "description": cls.describe()}
            if details:
                row["arguments"] = config_arguments(cls.Config)
                row["source"] = getattr(cls, "source", "")
                if kind == "attacks":
                    row["budget"] = list(cls.budget_fields)
                if kind == "metrics":
                    row["higher_is_better"] = getattr(cls, "higher_is_better", None)
                    row["keys"] = {
                        key: {"description": doc.description, "higher_is_better": doc.higher_is_better}
                        for key, doc in cls.aggregate_keys.items()
                    }
                    row["score_keys"] = dict(cls.score_keys) if isinstance(cls.score_keys, dict) else sorted(cls.score_keys)
                    row["lossless_input"] = cls.lossless_input
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
        if details and row.get("budget"):
            text += f"\nbudget: {', '.join(row['budget'])}"
        for key, doc in row.get("keys", {}).items() if details else ():
            way = {True: " (higher is better)", False: " (lower is better)", None: ""}[doc["higher_is_better"]]
            text += f"\n{key}{way}: {doc['description']}"
        table.add_row(row["name"], text)
    return table


@app.command()
def report(
    paths: list[str] = typer.Argument(..., help="Run folders, results.json files, or folders to search."),
    fmt: Optional[str] = typer.Option(
        None, "--format", "-f", metavar="TEXT",
        help="table | md | csv | latex | html (a static site in --out) (default: table on a terminal, else md)",
    ),
    metric: Optional[list[str]] = typer.Option(
        None, "--metric", help="Keep the columns of this KEY, METRIC.KEY or METRIC (repeatable).", metavar="TEXT"
    ),
    digits: int = typer.Option(3, "--digits", min=0, max=12, metavar="INTEGER", help="Decimals of every value and interval (0 to 12)."),
    intervals: bool = typer.Option(True, "--intervals/--no-intervals", help="Print each value's 95% interval beside it.", metavar=""),
    output: Optional[Path] = typer.Option(None, "--output", help="Write the table to this file.", metavar="PATH"),
    out: Optional[Path] = typer.Option(None, "--out", help="--format html: the folder the site is written to.", metavar="PATH"),
) -> None:
    """Build a leaderboard (rows: runs by settings; columns: suite x metric key) from results files alone."""
    try:
        from .report import find_results, leaderboard, load_results, render

        if fmt == "html":
            from .html_report import write_site

            out_console.print(f"report: {write_site(paths, out)}", markup=False, highlight=False)
            return
        if fmt is None:
            fmt = "table" if output is None and sys.stdout.isatty() else "md"
        if fmt not in {"table", "md", "csv", "latex"}:
            raise ErasebenchError(f"--format {fmt!r} is not allowed: use table, md, csv, latex or html")
        board = leaderboard(load_results(find_results(paths)), metric)
        if fmt == "table":
            from .report import render_terminal

            for table in render_terminal(board, digits, intervals, out_console.width):
                out_console.print(table)
            return
        text = render(board, fmt, digits, intervals)
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
    for problem in problems:  # the path on its own line, never wrapped (copy-paste); the reason wrapped by words
        err_console.print(problem.video, markup=False, highlight=False, soft_wrap=True)
        err_console.print(f"  {problem.reason}", markup=False, highlight=False)
    out_console.print(f"{count - len(problems)} of {count} videos OK", markup=False, highlight=False)
    if problems:
        raise typer.Exit(1)


runs_app = typer.Typer(help="List or remove the runs under an output folder.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


@runs_app.command("list")
def runs_list(
    out: Path = typer.Option(Path("erasebench-runs"), "--out", "-o", metavar="PATH", help="Output root of the runs."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (for scripts) instead of a table."),
) -> None:
    """Each run with its state, size (run folder and its videos) and age, newest first."""
    import json

    from .run_folders import format_age, format_size, list_runs

    try:
        runs = list_runs(out)
    except ErasebenchError as exc:
        fail(str(exc))
        return
    if as_json:
        rows = [{"name": r.name, "path": str(r.path), "finished": r.finished, "videos": len(r.videos), "bytes": r.size,
                 "modified": r.modified} for r in runs]
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return
    table = Table(title=f"runs under {out}", title_justify="left")
    table.add_column("run", overflow="fold")
    table.add_column("state", no_wrap=True)
    table.add_column("videos", justify="right", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("age", justify="right", no_wrap=True)
    for r in runs:
        table.add_row(r.name, "done" if r.finished else "partial", str(len(r.videos)), format_size(r.size), format_age(r.modified))
    out_console.print(table)


@runs_app.command("rm")
def runs_rm(
    names: list[str] = typer.Argument(..., metavar="RUN...", help="Run names (erasebench runs list) or their folders."),
    out: Path = typer.Option(Path("erasebench-runs"), "--out", "-o", metavar="PATH", help="Output root of the runs."),
    videos: bool = typer.Option(False, "--videos", help="Also remove the videos no other run uses."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Remove; without it, only say what would be removed."),
) -> None:
    """Remove run folders under --out (never anything outside it, never through a symlink)."""
    from .run_folders import format_size, removal, remove

    try:
        folders, files = removal(out, names, videos)
        if not yes:
            print_paths("would remove (pass --yes to remove):", [*folders, *files])
            return
        freed = remove(out, folders, files)
    except ErasebenchError as exc:
        fail(str(exc))
        return
    print_paths(f"removed {len(folders)} runs and {len(files)} video files ({format_size(freed)}):", folders)


@app.command("table")
def table_cmd(
    name: str = typer.Argument(..., help="Paper table (erasebench table list) or a table spec .yaml."),
    paths: Optional[list[str]] = typer.Argument(None, help="Run folders, results.json files, or folders to search."),
    fmt: str = typer.Option("md", "--format", "-f", help="md | latex | csv | html", metavar="TEXT"),
    published: bool = typer.Option(False, "--published", help="Put the published value and Δ beside each cell.", metavar=""),
    model_as: Optional[list[str]] = typer.Option(
        None, "--model-as", help="PAPER_MODEL=RUN_MODEL: runs of RUN_MODEL fill PAPER_MODEL's cells, marked † (repeatable).", metavar="TEXT"
    ),
    output: Optional[Path] = typer.Option(None, "--output", help="Write the table to this file.", metavar="PATH"),
    counts: bool = typer.Option(True, "--counts/--no-counts", help="Print each rate's count (k/n) beside it."),
) -> None:
    """Fill a paper table (docs/tables.md) from runs; list the runs its empty cells need."""
    try:
        from .tables.command import table_text, write_output

        text, messages = table_text(name, paths, fmt, published, model_as, counts)
    except ErasebenchError as exc:
        fail(str(exc))
        return
    write_output(text, output)
    for line in messages:
        note(line)


@app.command("sweep")
def sweep_cmd(
    grid_file: Path = typer.Argument(..., help="Grid YAML: methods x suites x concepts x models x eraser arguments (docs/sweeps.md)."),
    executor: Optional[str] = typer.Option(None, "--executor", help="local | slurm | submitit-local (default: the grid's, else local).", metavar="TEXT"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output root shared by every cell (default: the grid's out, else erasebench-runs).", metavar="PATH"),
    fmt: Optional[str] = typer.Option(
        None, "--format", "-f", metavar="TEXT",
        help="Leaderboard format: table | md | csv | latex (default: table on a terminal, else md).",
    ),
) -> None:
    """Run every cell of a grid (finished cells are skipped), then print one leaderboard over all of them."""
    try:
        from .sweep import Sweep, load_grid

        if fmt is None:
            fmt = "table" if sys.stdout.isatty() else "md"
        if fmt not in {"table", "md", "csv", "latex"}:
            raise ErasebenchError(f"--format {fmt!r} is not allowed: use table, md, csv or latex")
        grid = load_grid(grid_file)
        sweep = Sweep(grid, out or Path(grid.out or "erasebench-runs"), executor,
                      note)
        states = sweep.run()
        board = sweep.board()
        text = sweep.leaderboard("md" if fmt == "table" else fmt, board=board)  # the file: md beside a terminal table
        if fmt == "table":
            from .report import render_terminal

            for table in render_terminal(board, width=out_console.width):
                out_console.print(table)
            print_paths("leaderboard:", [sweep.leaderboard_file("md")])
    except ErasebenchError as exc:
        fail(str(exc))
        return
    if fmt != "table":
        sys.stdout.write(text + "\n")
    if any(s.status == "failed" for s in states):
        raise typer.Exit(1)


@app.command("compare")
def compare_cmd(
    paths: list[str] = typer.Argument(..., help="Run folders, results.json files, or folders to search."),
    reference: str = typer.Option(..., "--reference", help="Paper whose published numbers to compare with (results/references).", metavar="TEXT"),
    model_as: Optional[list[str]] = typer.Option(None, "--model-as", help="PAPER_MODEL=RUN_MODEL stand-in (never fails).", metavar="TEXT"),
    tolerance: Optional[list[str]] = typer.Option(None, "--tolerance", help="METRIC.KEY=VALUE in the paper's unit (repeatable).", metavar="TEXT"),
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
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="Baseline JSON (docs/gate.md).", metavar="PATH"),
    record: bool = typer.Option(False, "--record", help="Write --baseline from these runs instead of checking them.", metavar=""),
    check: Optional[list[str]] = typer.Option(
        None, "--check", help="With --record: METRIC.KEY[:higher|lower][:two-sided][:TOLERANCE] to gate (repeatable).", metavar="TEXT"
    ),
    require_all: bool = typer.Option(False, "--require-all", help="Also fail when a baseline entry matches no run given.", metavar=""),
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
                raise ErasebenchError("--record needs at least one --check METRIC.KEY[:higher|lower][:two-sided][:TOLERANCE]")
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


from .attack_cli import attack as _attack_command  # noqa: E402  (its own module, docs/attacks.md)

app.command("attack")(_attack_command)


def _click_exceptions():
    """The click exception classes typer raises (typer >= 0.17 vendors click as ``typer._click``)."""
    try:
        from typer._click import exceptions
    except ImportError:  # older typer: plain click
        from click import exceptions
    return exceptions


def main() -> None:
    """The console script (``_main``), then ``exit_without_teardown``."""
    try:
        _main()
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    if isinstance(code, str):
        err_console.print(code, markup=False, highlight=False)
        code = 1
    exit_without_teardown(0 if code is None else int(code))


def exit_without_teardown(code: int) -> None:
    """Exit with ``code`` once everything is written. With torch imported, the interpreter's teardown of its
    modules takes about 1.3 s on the 2-core machine (torch._dynamo's objects; nothing of ours is left to
    write), so after flushing the streams and running the ``atexit`` handlers the process ends with
    ``os._exit`` (docs/architecture.md). Without torch, or with ERASEBENCH_FULL_EXIT=1, a normal exit."""
    if "torch" not in sys.modules or os.environ.get("ERASEBENCH_FULL_EXIT") == "1":
        sys.exit(code)
    import atexit

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be written anyway
            pass
    atexit._run_exitfuncs()
    os._exit(code)


def _name_bad_value(exc: Any, argv: list[str]) -> str | None:
    """``--limit 'abc': Input should be ...``: click's message about an option's value, with the value as typed
    (the last occurrence in ``argv``); None when the value cannot be found (an argument, or a default)."""
    opts = list(getattr(getattr(exc, "param", None), "opts", None) or [])
    if not opts or not all(o.startswith("-") for o in opts):
        return None
    value = None
    for position, token in enumerate(argv):
        for opt in opts:
            if token == opt and position + 1 < len(argv):
                value = argv[position + 1]
            elif token.startswith(opt + "="):
                value = token[len(opt) + 1 :]
    if value is None:
        return None
    return f"{max(opts, key=len)} {value!r}: {' '.join(str(exc.message).split())}"


def _main() -> None:
    """Click's own usage errors (an unknown option, a value of the wrong type) become one ``error:`` line and
    exit code 2, like every other bad input."""
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
        if isinstance(exc, exceptions.BadParameter):
            message = _name_bad_value(exc, sys.argv[1:]) or message
        err_console.print(f"error: {where}{message} (see --help)", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        err_console.print("error: aborted", markup=False, highlight=False)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

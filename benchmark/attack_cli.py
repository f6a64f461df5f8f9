"""``erasebench attack``: run an attack against an eraser on a suite and print its attack success rate
(docs/attacks.md). Registered on the ``erasebench`` app by benchmark/cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from .errors import ErasebenchError


def build_attack(name: str, args: dict[str, Any]) -> Any:
    from .attacks.base import ATTACKS

    return ATTACKS.get(name).from_args(args)


def summary_line(summary: dict[str, Any]) -> str:
    budget = ", ".join(f"{k}={v}" for k, v in summary["budget"].items())
    esr = summary.get("esr_without_attack")
    return (
        f"{summary['attack']['name']} vs {summary['method']} on {summary['suite']} ({summary['model']}), budget {budget}: "
        f"ASR {summary['asr']:.3f} ({summary['shown_after']}/{summary['targets']}), pre-ASR {summary['pre_asr']:.3f}, "
        f"recovered {summary['recovered']}, ESR without attack {'-' if esr is None else f'{esr:.3f}'}, "
        f"search {summary['seconds']['search']:.1f}s"
    )


def attack(
    method: str | None = typer.Option(None, "--method", "-m", help="Eraser name (erasebench list erasers)."),
    attack_name: str | None = typer.Option(None, "--attack", "-a", help="Attack: ring-a-bell | unlearndiffatk."),
    suite: str | None = typer.Option(None, "--suite", "-s", help="Suite name or path to a suite YAML."),
    attack_arg: list[str] | None = typer.Option(None, "--attack-arg", help="Attack argument KEY=VALUE (repeatable)."),
    eraser_arg: list[str] | None = typer.Option(None, "--eraser-arg", help="Eraser argument KEY=VALUE (repeatable)."),
    concept: str | None = typer.Option(None, "--concept", help="Concept(s) to erase, comma-separated (default: the suite's)."),
    model: str | None = typer.Option(None, "--model", help="Named model, hub id or local pipeline folder."),
    limit: int | None = typer.Option(None, "--limit", help="Use the first N prompts of the suite."),
    seed: int | None = typer.Option(None, "--seed", help="The attack's seed (same seed, same attack)."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda."),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Folder holding the suite's data files."),
    out: Path = typer.Option(Path("erasebench-runs"), "--out", "-o", help="Output root: videos, runs, attacks."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
) -> None:
    """Search attacked prompts against an eraser, rerun them as a suite, print the attack success rate."""
    from .cli import build_spec, fail, note, out_console, parse_assignments, print_paths, split_names

    try:
        if not attack_name:
            raise ErasebenchError("no attack given: pass --attack NAME (ring-a-bell, unlearndiffatk)")
        args = parse_assignments(attack_arg, "--attack-arg")
        if seed is not None:
            args.setdefault("seed", seed)
        chosen = build_attack(attack_name, args)
        spec = build_spec(
            None,
            {
                "method": method,
                "eraser_args": parse_assignments(eraser_arg, "--eraser-arg"),
                "suite": suite,
                "concepts": split_names(concept or None),
                "model": model,
                "limit": limit,
                "device": device,
                "data_dir": data_dir,
            },
        )
        from .attacks.run import AttackRunner

        log = (lambda s: None) if quiet else note
        runner = AttackRunner(spec, chosen, out, log)
        summary = runner.run()
    except ErasebenchError as exc:
        fail(str(exc))
        return
    note(summary_line(summary), out_console)  # whole words on a terminal, paths each on their own line
    print_paths("attack:", [runner.folder / "attack.json"])
    print_paths("attacked suite:", [Path(summary["attacked_suite"])])

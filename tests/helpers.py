"""Helpers shared by the end-to-end tests."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tiny_pipelines import TINY_CALL_SETTINGS


def run_config(tmp_path: Path, family: str, model_dir: Path, **overrides) -> Path:
    """A run.yaml that points at a tiny pipeline with its fast call settings."""
    settings = dict(TINY_CALL_SETTINGS[family])
    generation = {k: settings.pop(k) for k in ["num_frames", "height", "width", "num_inference_steps", "guidance_scale"] if k in settings}
    generation["extra"] = settings
    config = {"model": str(model_dir), "generation": generation, **overrides}
    path = tmp_path / f"run-{family}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def only_results(root: Path) -> dict:
    files = sorted((root / "runs").glob("*/results.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


def samples(root: Path) -> list[dict]:
    files = sorted((root / "runs").glob("*/samples.jsonl"))
    assert len(files) == 1, files
    return [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]

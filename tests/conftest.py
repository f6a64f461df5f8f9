"""Shared fixtures: tiny real pipelines built once per session, a CLI runner, the shared/ folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ERASEBENCH_CACHE", str(Path(__file__).resolve().parent / ".cache-erasebench"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """family -> folder of a saved tiny pipeline (built on first use)."""
    from tiny_pipelines import build_tiny_pipeline

    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = build_tiny_pipeline(family, tmp_path_factory.mktemp(f"tiny-{family}"))
        return built[family]

    return get


@pytest.fixture
def cli(monkeypatch):
    """Invoke the erasebench CLI in-process; returns (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from benchmark.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return invoke


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (a user's clone has none)")
    return SHARED

"""Writing a run's results (docs/results.md): ``samples.jsonl`` (``SampleRecord`` lines), ``results.json``
(``RunResult``), ``results.key`` (the key of everything results.json is computed from: a rerun that finds it
unchanged writes nothing) and ``manifest.json`` (the videos the run plans)."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from . import __version__, identity
from .environment import environment
from .errors import ArtifactError, ErasebenchError
from .identity import RunKeys
from .results import RunManifest, RunResult, SampleRecord, VideoSidecar
from .stats import run_intervals
from .store import ArtifactStore, atomic_write_json, file_sha256
from .suites import load_protocol


class ResultsWriter:
    """The results files of one planned run. ``keys``: its keys (benchmark/identity.py); ``call_settings``:
    the pipeline-call settings its videos were made with, as JSON values."""

    def __init__(self, plan: Any, store: ArtifactStore, keys: RunKeys, call_settings: dict[str, Any]):
        self.plan = plan
        self.store = store
        self.keys = keys
        self.call_settings = call_settings

    def write(self, expected, scores, aggregates: Callable[[], dict[str, Any]], env: dict[str, Any] | None = None) -> dict[str, Any]:
        """``samples.jsonl``, ``results.json`` and ``results.key`` (the results key and results.json's sha256);
        ``aggregates()`` gives the aggregates (``Scorer.aggregates``). Returns what ``results.json`` holds."""
        plan = self.plan
        run_dir = plan.run_dir
        samples, results = self.results_body(expected, scores)
        key = self.results_key(samples, results)
        results["aggregates"] = aggregates()
        results["environment"] = environment(plan.spec.device) if env is None else env
        result = RunResult.model_validate(results)
        self.check_unchanged(expected)  # results.json is never written over a video that fails its check
        with self.store.lock(f"runs/{plan.run_name}"):
            (run_dir / "results.key").unlink(missing_ok=True)
            SampleRecord.write_jsonl(run_dir / "samples.jsonl", samples)
            result.to_disk(run_dir / "results.json")
            atomic_write_json(run_dir / "results.key", {"key": key, "results_sha256": file_sha256(run_dir / "results.json")})
        return result.to_dict()

    def results_key(self, samples: list[SampleRecord], body: dict[str, Any]) -> str:
        """``identity.results_key`` of what results.json holds but its time, aggregates and environment, with
        the code that computes and writes them (this module, benchmark/scoring.py, stats, each metric's module)."""
        from . import scoring

        code = [Path(__file__), Path(scoring.__file__ or ""), Path(run_intervals.__code__.co_filename)]
        code += [Path(sys.modules[type(m).__module__].__file__ or "") for m in self.plan.metrics]
        return identity.results_key({k: v for k, v in body.items() if k != "created"}, [r.to_line() for r in samples], code)

    def results_body(self, expected, scores) -> tuple[list[SampleRecord], dict[str, Any]]:
        """The samples and the results of a run without its aggregates and environment (cheap to build)."""
        plan = self.plan
        samples = [
            SampleRecord(
                prompt_id=item.record.prompt_id,
                prompt=item.record.prompt,
                category=item.record.category,
                target_concept=item.record.target_concept,
                sample=item.sample,
                seed=item.seed,
                video=key.relpath(),
                sha256=VideoSidecar.from_data(meta).video.sha256,
                scores={m.name: scores[m.name][position] for m in plan.metrics},
            )
            for position, (item, key, meta) in enumerate(expected)
        ]
        results = {
            "erasebench_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "run_name": plan.run_name,
            "spec": plan.spec.model_dump(mode="json"),
            "method": plan.eraser.name,
            "model": {
                "ref": plan.source.ref,
                "label": plan.source.label,
                "hub_id": plan.source.hub_id,
                "revision": plan.source.revision,
                "family": plan.family.name,
                "fingerprint": self.keys.model_fp,
                "files": self.keys.model_files,
            },
            "eraser": {**plan.eraser.settings(), "erase_mode": plan.erase_mode, "groups": self.group_settings()},
            "suite": {
                "name": plan.suite.name,
                "version": plan.suite.spec.version,
                "file": str(plan.suite.path),
                "source": plan.suite.spec.source.model_dump(mode="json", exclude={"inline"}),
                "seed_policy": plan.spec.seed_policy or plan.suite.spec.seed_policy,
                "prompts": len(plan.records),
                "samples": plan.spec.samples or plan.suite.spec.samples,
                "concepts": [c.model_dump(mode="json") for c in plan.eraser.concepts],
            },
            "generation": {
                **self.call_settings, "fps": plan.generation.fps, "codec": plan.spec.video_codec,
                "scheduler": self.keys.scheduler,
            },
            "protocol": (
                load_protocol(plan.suite.spec.protocol).model_dump(mode="json", exclude={"generation"})
                if plan.suite.spec.protocol else None
            ),
            "metrics_not_run": plan.notes,
            "metrics": {m.name: {"settings": m.settings(), "higher_is_better": m.higher_is_better} for m in plan.metrics},
            "videos": {"count": len(expected), "root": str(plan.root), "groups": [self.keys.group(g.eraser) for g in plan.groups]},
        }
        return samples, results


    def up_to_date(self, expected, scores) -> dict[str, Any] | None:
        """The existing results when ``results.key`` holds the results key of ``expected`` and ``scores``
        (``results_key``) and results.json's sha256; None when they must be written afresh."""
        run_dir = self.plan.run_dir
        samples, body = self.results_body(expected, scores)
        try:
            stored = json.loads((run_dir / "results.key").read_text(encoding="utf-8"))
            fresh = stored["key"] == self.results_key(samples, body) and stored["results_sha256"] == file_sha256(run_dir / "results.json")
            return RunResult.from_disk(run_dir / "results.json").to_dict() if fresh else None
        except (OSError, ValueError, KeyError, TypeError, ErasebenchError):
            return None

    def check_unchanged(self, expected) -> None:
        """Every video still matches its sidecar (sha256 cached by inode and ctime: a stat each), else ArtifactError."""
        for _, key, meta in expected:
            current, problem = self.store.check_video(key.relpath())
            if current is None or current["video"]["sha256"] != meta["video"]["sha256"]:
                raise ArtifactError(f"video {key.relpath()!r} changed during the run ({problem or 'new sha256'}); rerun to regenerate it")

    def write_manifest(self) -> None:
        with self.store.lock(f"runs/{self.plan.run_name}"):
            RunManifest(
                run_name=self.plan.run_name, root="../..", videos=[self.keys.key(item).relpath() for item in self.plan.items]
            ).to_disk(self.plan.run_dir / "manifest.json")


    def group_settings(self) -> list[dict[str, Any]]:
        """Per erasure group: its concepts, prompts and the settings of the eraser that made its videos."""
        return [
            {
                "concepts": [c.name for c in g.eraser.concepts],
                "videos": len(g.items),
                "fingerprint": g.eraser.fingerprint(),
                "settings": g.eraser.settings(),
            }
            for g in self.plan.groups
        ]

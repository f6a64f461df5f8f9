"""Typed, versioned run files (benchmark/results.py): round trips, version-1 files, clear errors, and a real run
writing every file through the models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.results import (
    SCHEMA_VERSION, Interval, ResultsFileError, RunManifest, RunResult, SampleRecord, VideoSidecar,
)
from helpers import run_config

V1_RESULTS = Path(__file__).resolve().parent / "fixtures" / "results" / "results-v1.json"

# a samples.jsonl line and a sidecar as the runner wrote them before schema_version existed
V1_SAMPLE = {
    "category": "circle", "prompt": "a red circle moving left", "prompt_id": "circle-red-left", "sample": 0,
    "scores": {"shapes_oracle": {"shape": "circle", "shape_hit": 1.0}}, "seed": 2855482890, "sha256": "ab" * 32,
    "target_concept": "cross", "video": "videos/x/00.mp4",
}
V1_SIDECAR = {
    "prompt": "a red circle moving left", "prompt_id": "circle-red-left", "category": "circle", "sample": 0,
    "seed": 2855482890, "suite": {"name": "shapes", "version": "1"},
    "model": {"ref": "shapes", "fingerprint": "42e674d4cb28", "family": "cogvideox"},
    "eraser": {"name": "none", "fingerprint": "45f5218128f6", "concepts": ["cross"]},
    "generation": {"num_frames": 9, "fps": 8, "codec": "lossless", "scheduler": {"class": "X"}},
    "eraser_call_kwargs": {}, "eraser_info": {}, "frames": [9, 32, 32, 3], "seconds": 0.5, "rank": 0,
    "world_size": 1, "erasebench": "0.1.0", "video": {"path": "videos/x/00.mp4", "bytes": 123, "sha256": "ab" * 32},
}


def test_version_1_results_load_unchanged():
    raw = json.loads(V1_RESULTS.read_text())
    assert "schema_version" not in raw
    result = RunResult.from_disk(V1_RESULTS)
    assert result.schema_version == 1
    assert result.aggregates.intervals is None and result.aggregates.interval("shapes_oracle", "esr_1") is None
    assert result.aggregates.value("shapes_oracle", "esr_1") == raw["aggregates"]["overall"]["shapes_oracle"]["esr_1"]
    assert result.aggregates.value("shapes_oracle", "psr_1", category="circle") == 1.0
    assert result.higher_is_better("shapes_oracle", "target_as_circle") is False
    assert result.method_label() == "none"
    assert result.suite.samples == 1 and result.model.fingerprint == raw["model"]["fingerprint"]
    # every field the runner wrote survives with its value (fields it did not write yet get defaults)
    assert_holds(result.to_dict(), raw)


def assert_holds(dumped, raw, where="results"):
    if isinstance(raw, dict):
        for key, value in raw.items():
            assert key in dumped, f"{where}.{key} lost"
            assert_holds(dumped[key], value, f"{where}.{key}")
    else:
        assert dumped == raw and type(dumped) is type(raw), where


def test_round_trip_keeps_unknown_fields(tmp_path):
    data = json.loads(V1_RESULTS.read_text())
    data["schema_version"] = SCHEMA_VERSION
    data["added_by_a_plugin"] = {"x": 1}
    data["eraser"]["negative_prompt"] = "cross"
    data["aggregates"]["intervals"] = {
        "level": 0.95, "resamples": 1000, "seed": 0,
        "overall": {"shapes_oracle": {"esr_1": {"lo": 0.01, "hi": 0.28, "method": "wilson"}}},
    }
    result = RunResult.from_data(data)
    assert result.aggregates.interval("shapes_oracle", "esr_1") == Interval(lo=0.01, hi=0.28, method="wilson")
    path = result.to_disk(tmp_path / "results.json")
    again = RunResult.from_disk(path)
    assert again == result
    assert again.to_dict()["added_by_a_plugin"] == {"x": 1} and again.eraser.negative_prompt == "cross"


def test_counts_stay_ints_and_rates_floats(tmp_path):
    data = json.loads(V1_RESULTS.read_text())
    data["aggregates"]["overall"]["shapes_oracle"].update({"videos_erased": 16, "esr_1": 1.0})
    result = RunResult.from_disk(RunResult.from_data(data).to_disk(tmp_path / "results.json"))
    values = result.aggregates.overall["shapes_oracle"]
    assert type(values["videos_erased"]) is int and type(values["esr_1"]) is float


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(schema_version=SCHEMA_VERSION + 1), f"schema_version {SCHEMA_VERSION + 1} is not one this erasebench reads"),
        (lambda d: d.pop("spec"), "spec: Field required"),
        (lambda d: d["aggregates"]["overall"]["shapes_oracle"].update(esr_1="high"), "aggregates.overall.shapes_oracle.esr_1"),
    ],
)
def test_bad_results_give_one_line(tmp_path, change, message):
    data = json.loads(V1_RESULTS.read_text())
    change(data)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultsFileError) as info:
        RunResult.from_disk(path)
    text = str(info.value)
    assert message in text and "\n" not in text and str(path) in text


def test_unreadable_files_give_one_line(tmp_path):
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ResultsFileError, match="not readable JSON"):
        RunResult.from_disk(tmp_path / "results.json")
    with pytest.raises(ResultsFileError, match="does not exist"):
        RunResult.from_run(tmp_path / "nothing")


def test_samples_and_sidecars_of_version_1(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps(V1_SAMPLE) + "\n\n" + json.dumps({**V1_SAMPLE, "sample": 1}) + "\n")
    rows = SampleRecord.read_jsonl(path)
    assert [r.sample for r in rows] == [0, 1] and rows[0].schema_version == 1
    assert rows[0].scores["shapes_oracle"]["shape_hit"] == 1.0
    SampleRecord.write_jsonl(path, rows)
    assert SampleRecord.read_jsonl(path) == rows
    path.write_text(json.dumps(V1_SAMPLE) + "\n" + json.dumps({"prompt": "x"}) + "\n")
    with pytest.raises(ResultsFileError, match="line 2 is not an erasebench samples.jsonl line: prompt_id"):
        SampleRecord.read_jsonl(path)

    sidecar = VideoSidecar.from_data(V1_SIDECAR)
    assert sidecar.schema_version == 1 and sidecar.video.sha256 == "ab" * 32 and sidecar.generation["num_frames"] == 9
    written = sidecar.model_copy(update={"schema_version": SCHEMA_VERSION}).to_disk(VideoSidecar.path_for(tmp_path / "00.mp4"))
    assert written.name == "00.json" and VideoSidecar.from_disk(written).schema_version == SCHEMA_VERSION


def test_a_run_writes_every_file_through_the_models(tiny_model, tmp_path, cli):
    config = run_config(tmp_path, "cogvideox", tiny_model("cogvideox"))
    code, stdout, stderr = cli("run", "--method", "none", "--suite", "example", "--limit", "3", "--config", config, "--out", tmp_path, "-q")
    assert code == 0, stderr
    run_dir = next((tmp_path / "runs").iterdir())
    raw = json.loads((run_dir / "results.json").read_text())
    assert raw["schema_version"] == SCHEMA_VERSION
    result = RunResult.from_run(run_dir)
    intervals = result.aggregates.intervals
    assert intervals is not None and intervals.resamples == 1000
    # every float aggregate carries an interval that holds it (a mean over 3 prompts: bootstrap)
    for metric, values in result.aggregates.overall.items():
        for key, value in values.items():
            if isinstance(value, float):
                interval = result.aggregates.interval(metric, key)
                assert interval is not None and interval.method == "bootstrap", (metric, key)
                assert interval.lo <= value <= interval.hi
    rows = SampleRecord.read_jsonl(run_dir / "samples.jsonl")
    assert len(rows) == 3 and all(r.schema_version == SCHEMA_VERSION for r in rows)
    manifest = RunManifest.from_disk(run_dir / "manifest.json")
    assert manifest.videos == [r.video for r in rows]
    for row in rows:
        sidecar = VideoSidecar.from_disk(VideoSidecar.path_for(tmp_path / row.video))
        assert sidecar.schema_version == SCHEMA_VERSION
        assert sidecar.video.sha256 == row.sha256 and sidecar.prompt_id == row.prompt_id and sidecar.seed == row.seed
    # the run's summary shows the interval beside the value
    assert "95% CI" in stdout

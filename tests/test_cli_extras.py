"""Small CLI pieces: --version, -h, list --details/--json, where a run's files went, --device cuda without CUDA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from benchmark import __version__


def test_version_and_short_help(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == f"erasebench {__version__}"
    code, out, _ = cli("run", "-h")
    assert code == 0 and "--method" in out and "--scheduler" in out


def test_list_details_shows_arguments_with_defaults(cli):
    code, out, _ = cli("list", "erasers", "--details", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["erasers"]}
    assert rows["refusal"]["arguments"]["site"] == "auto" and rows["refusal"]["arguments"]["k"] == 100
    assert rows["negprompt"]["arguments"]["mode"] == "replace"
    code, out, _ = cli("list", "metrics", "--details", "--json")
    metrics = {r["name"]: r for r in json.loads(out)["metrics"]}
    assert metrics["nudenet"]["higher_is_better"]["nudity_rate"] is False and "preset" in metrics["nudenet"]["arguments"]
    code, out, _ = cli("list", "erasers", "--details")
    assert code == 0 and "arguments:" in out and "lam=null" in out


def test_list_json_of_a_suite(cli):
    code, out, _ = cli("list", "--suite", "shapes", "--json")
    data = json.loads(out)
    assert code == 0 and data["prompts"] == 64 and data["categories"] == {"circle": 16, "square": 16, "triangle": 16, "cross": 16}


def test_run_names_its_results_file_and_video_folder(cli, tmp_path):
    code, out, err = cli("run", "--method", "none", "--suite", "shapes", "--limit", "4", "--out", tmp_path / "o", "-q")
    assert code == 0, err
    lines = out.splitlines()
    results = lines[lines.index("results:") + 1].strip()
    videos = lines[lines.index("videos:") + 1].strip()
    assert results.endswith("results.json") and (tmp_path / "o").as_posix() in results
    assert list((tmp_path / "o").glob("videos/**/*.mp4")) and any(p.as_posix().startswith(videos) for p in (tmp_path / "o").glob("videos/**/*.mp4"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_one_line(cli, tmp_path):
    from test_paper_suites import one_line_error

    one_line_error(cli("run", "--method", "none", "--suite", "shapes", "--device", "cuda", "--out", tmp_path / "o"), "--device cuda")
    assert not (tmp_path / "o").exists()


# ---- issue 16 -----------------------------------------------------------------------------------------------



def one_line(result, *needles):
    code, _, err = result
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def protocol_suite(tmp_path):
    """A suite written for CogVideoX (the SAFREE protocol: 49 frames, 50 steps), two inline prompts."""
    path = tmp_path / "paper.yaml"
    path.write_text(
        "name: paper\nversion: 1\ndescription: two prompts under a paper protocol\nsource:\n  inline:\n"
        "    - {id: p00, prompt: a red circle moving left}\n    - {id: p01, prompt: a blue square moving up}\n"
        "columns: {prompt_id: id}\nmetrics: [temporal_flickering]\nprotocol: safree\ndefault_model: shapes\n"
    )
    return path


def test_a_paper_protocol_on_the_shapes_model_uses_its_native_size_and_says_so(cli, tmp_path):
    suite = protocol_suite(tmp_path)
    code, out, err = cli("run", "--method", "none", "--suite", suite, "--limit", "1", "--out", tmp_path / "o", "--json")
    assert code == 0, err
    note = next(line for line in err.splitlines() if line.startswith("settings:"))
    assert "49 frames" in note and "50 steps" in note and "9 frames, 32x32, 25 steps" in note and "--frames" in note
    results = json.loads((Path(json.loads(out)["results"])).read_text())
    assert results["generation"]["num_frames"] == 9 and results["generation"]["num_inference_steps"] == 25
    # what the user sets wins, and the note names only what the model changed
    code, out, err = cli("run", "--method", "none", "--suite", suite, "--limit", "1", "--steps", "5", "--out", tmp_path / "o", "--json")
    assert code == 0, err
    note = next(line for line in err.splitlines() if line.startswith("settings:"))
    assert "--steps" not in note and "50 steps" not in note
    assert json.loads(Path(json.loads(out)["results"]).read_text())["generation"]["num_inference_steps"] == 5


def test_a_run_far_beyond_the_machine_asks_for_yes(cli, tmp_path):
    one_line(
        cli("run", "--method", "none", "--suite", "shapes", "--frames", "49", "--height", "480", "--width", "720",
            "--steps", "50", "--out", tmp_path / "o"),
        "64 videos of 49 frames, 480x720, 50 steps", "--yes",
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--concept", "nudity"], ["concept 'nudity'", "shapes_oracle"]),
        (["--limit", "2"], ["selects no prompt of suite 'shapes'", "--limit 2", "use --limit 4"]),
    ],
)
def test_a_concept_that_selects_no_target_prompt_stops_before_generation(cli, tmp_path, args, needles):
    one_line(cli("run", "--method", "none", "--suite", "shapes", *args, "--out", tmp_path / "o"), *needles)
    assert not (tmp_path / "o").exists()


def test_a_suite_without_the_columns_a_metric_needs_stops_before_generation(cli, tmp_path):
    suite = protocol_suite(tmp_path)
    one_line(
        cli("run", "--method", "none", "--suite", suite, "--metrics", "shapes_oracle", "--concept", "cross", "--out", tmp_path / "o"),
        "metric 'shapes_oracle' needs the suite columns shape, colour, motion",
    )
    assert not (tmp_path / "o").exists()


def test_a_lossy_codec_under_an_oracle_warns_naming_the_metric(cli, tmp_path):
    code, _, err = cli("run", "--method", "none", "--suite", "shapes", "--limit", "4", "--video-codec", "h264",
                       "--out", tmp_path / "o", "-q")
    assert code == 0, err
    warning = next(line for line in err.splitlines() if line.startswith("warning:"))
    assert "h264" in warning and "'shapes_oracle'" in warning
    code, _, err = cli("run", "--method", "none", "--suite", "shapes", "--limit", "4", "--out", tmp_path / "o", "-q")
    assert code == 0 and "warning:" not in err


def test_metric_classes_declare_keys_lossless_input_and_target_counts():
    from benchmark.metrics.base import METRICS, Key

    shipped = [name for name in METRICS.names() if METRICS.get(name).__module__.startswith("benchmark.metrics.")]
    assert len(shipped) >= 8  # other tests register their own metrics in the same registry
    for name in shipped:
        cls = METRICS.get(name)
        assert cls.score_keys and cls.aggregate_keys, name
        for key, doc in cls.aggregate_keys.items():
            assert isinstance(doc, Key) and doc.description, (name, key)
        doc = (Path(__file__).resolve().parent.parent / "docs" / "metrics" / f"{name}.md").read_text()
        for key in cls.aggregate_keys:
            assert f"`{key}`" in doc, (name, key)
    assert METRICS.get("shapes_oracle").lossless_input and METRICS.get("nudenet").lossless_input
    assert not METRICS.get("temporal_flickering").lossless_input
    assert METRICS.get("shapes_oracle").direction("target_as_circle") is False
    assert METRICS.get("classify").direction("esr_5_video") is True


# ---- --config keys are the flags' names -------------------------------------------------------------------


def write_config(tmp_path, data):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_config_keys_are_the_flag_names(tmp_path):
    from benchmark.cli import build_spec

    path = write_config(tmp_path, {
        "method": "refusal", "suite": "shapes", "concept": "cross,circle", "eraser-arg": {"k": 50}, "frames": 9,
        "steps": 25, "guidance_scale": 5.0, "metric_arg": {"shapes_oracle.frame_policy": "all"}, "seed-policy": "derived",
    })
    spec = build_spec(path, {})
    assert spec.concepts == ("cross", "circle") and spec.eraser.name == "refusal" and spec.eraser.args == {"k": 50}
    assert spec.generation == {"num_frames": 9, "num_inference_steps": 25, "guidance_scale": 5.0}
    assert spec.seed_policy == "derived" and spec.metrics[0].args == {"frame_policy": "all"}
    old = build_spec(write_config(tmp_path, {"method": "refusal", "suite": "shapes", "concepts": ["cross"],
                                             "eraser_args": {"k": 50}}), {})
    assert old.concepts == ("cross",) and old.eraser.args == {"k": 50}  # the field names still work


def test_config_errors_name_the_key_the_user_wrote(tmp_path):
    from benchmark.cli import build_spec
    from benchmark.errors import ErasebenchError

    with pytest.raises(ErasebenchError) as err:
        build_spec(write_config(tmp_path, {"method": "none", "suite": "shapes", "limit": "many"}), {})
    assert "run.yaml': limit 'many'" in str(err.value) and "--limit" not in str(err.value)
    with pytest.raises(ErasebenchError) as err:
        build_spec(write_config(tmp_path, {"method": "none", "suite": "shapes", "frobnicate": 1}), {})
    assert "unknown setting 'frobnicate'" in str(err.value) and "eraser_arg" in str(err.value)
    with pytest.raises(ErasebenchError) as err:  # an option's bad value names the option
        build_spec(None, {"method": "none", "suite": "shapes", "limit": 0})
    assert str(err.value).startswith("--limit 0")


def test_an_erasers_config_arguments_apply_only_to_that_eraser(tmp_path):
    from benchmark.cli import build_spec

    path = write_config(tmp_path, {"method": "refusal", "suite": "shapes", "eraser_arg": {"k": 50}})
    notes: list[str] = []
    spec = build_spec(path, {"method": "negprompt"}, notes)
    assert spec.eraser.name == "negprompt" and spec.eraser.args == {}
    assert len(notes) == 1 and "'refusal'" in notes[0] and "'negprompt'" in notes[0]
    keyed = write_config(tmp_path, {"suite": "shapes", "eraser_arg": {"refusal": {"k": 50}, "negprompt": {"mode": "replace"}}})
    assert build_spec(keyed, {"method": "negprompt"}).eraser.args == {"mode": "replace"}
    assert build_spec(keyed, {"method": "refusal", "eraser_args": {"site": "auto"}}).eraser.args == {"k": 50, "site": "auto"}
    assert build_spec(keyed, {"method": "none"}).eraser.args == {}


# ---- runs list | rm -------------------------------------------------------------------------------------------


def fake_run(out, name, videos):
    from benchmark.results import RunManifest

    run_dir = out / "runs" / name
    run_dir.mkdir(parents=True)
    RunManifest(run_name=name, root="../..", videos=videos).to_disk(run_dir / "manifest.json")
    (run_dir / "results.json").write_text("{}")
    for rel in videos:
        video = out / rel
        video.parent.mkdir(parents=True, exist_ok=True)
        video.write_bytes(b"v" * 1000)
        video.with_suffix(".json").write_text("{}")
    return run_dir


def test_runs_list_shows_size_and_age(cli, tmp_path):
    out = tmp_path / "out"
    fake_run(out, "a__run", ["videos/x/1.mp4", "videos/x/2.mp4"])
    code, text, _ = cli("runs", "list", "--out", out, "--json")
    rows = json.loads(text)
    assert code == 0 and rows[0]["name"] == "a__run" and rows[0]["videos"] == 2 and rows[0]["bytes"] >= 2000
    code, text, _ = cli("runs", "list", "--out", out)
    assert code == 0 and "a__run" in text and "KB" in text and "done" in text


def test_runs_rm_touches_nothing_outside_the_output_folder(cli, tmp_path):
    out = tmp_path / "out"
    fake_run(out, "a", ["videos/shared.mp4", "videos/own.mp4"])
    fake_run(out, "b", ["videos/shared.mp4"])
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "manifest.json").write_text("{}")
    (out / "runs" / "link").symlink_to(outside, target_is_directory=True)
    one_line(cli("runs", "rm", "link", "--out", out, "--yes"), "symlink")
    one_line(cli("runs", "rm", str(outside), "--out", out, "--yes"), "is not a run under")
    one_line(cli("runs", "rm", "../../precious", "--out", out, "--yes"), "is not a run under")
    assert (outside / "manifest.json").is_file()
    code, text, _ = cli("runs", "rm", "a", "--out", out, "--videos")  # without --yes: says what it would remove
    assert code == 0 and "would remove" in text and (out / "runs" / "a").is_dir()
    code, text, err = cli("runs", "rm", "a", "--out", out, "--videos", "--yes")
    assert code == 0, err
    assert not (out / "runs" / "a").exists() and not (out / "videos" / "own.mp4").exists()
    assert (out / "videos" / "shared.mp4").is_file() and (out / "runs" / "b").is_dir()  # b still uses it
    assert (outside / "manifest.json").is_file()


# ---- progress -----------------------------------------------------------------------------------------------


def test_fit_progress_reaches_the_run_through_run_context():
    from benchmark.erasers import RunContext

    calls = []

    def factory(description, total):
        calls.append((description, total))
        return lambda n=1: calls.append(("advance", n))

    advance = RunContext(progress=factory).steps("fitting x", 3)
    advance()
    assert calls == [("fitting x", 3), ("advance", 1)]
    RunContext().steps("fitting x", 3)()  # no bar: a no-op
    assert RunContext(progress=factory).fit_key() == RunContext().fit_key()  # never part of the artifact key


def test_under_torchrun_only_rank_0_draws_and_labels_its_bars(monkeypatch):
    from benchmark.cli import launch_rank, make_progress

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launch_rank() == (1, 2)
    progress, factory = make_progress("[rank 0 of 2] ")
    factory("generating", 4)(2)
    progress.stop()
    assert progress.tasks[0].description == "[rank 0 of 2] generating" and progress.tasks[0].completed == 2
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert launch_rank() == (0, 1)


def test_exit_without_teardown_keeps_output_atexit_and_code(tmp_path):
    """With torch loaded the console script ends with os._exit (benchmark.cli.exit_without_teardown): buffered
    output is flushed, atexit handlers run and the exit code is kept."""
    import subprocess
    import sys

    marker = tmp_path / "atexit-ran"
    code = (
        "import atexit, pathlib, sys, torch\n"
        f"atexit.register(lambda: pathlib.Path({str(marker)!r}).write_text('yes'))\n"
        "sys.stdout.write('x' * 100000)\n"  # more than one buffer, left unflushed
        "from benchmark.cli import exit_without_teardown\n"
        "exit_without_teardown(3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3 and proc.stdout == "x" * 100000 and marker.read_text() == "yes"

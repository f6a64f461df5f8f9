"""Each paper suite carries its paper's sampling protocol per family (docs/protocols.md).

Expected values are read off the reference scripts by hand (not from the YAML): T2VUnlearning
test_cogvideo.py (release copy 17caba9) / test_hunyuan.py, SAFREE cogvideox/cli_demo.py and zeroscopeT2V/test.sh.
"""

from __future__ import annotations

import json

import pytest

from benchmark.errors import ErasebenchError
from benchmark.models.loading import check_scheduler, set_scheduler
from benchmark.specs import GenerationSettings, SchedulerSpec
from benchmark.suites import load_suite_spec

DPM_TRAILING = ("CogVideoXDPMScheduler", {"timestep_spacing": "trailing"})

# suite -> family -> (frames, steps, guidance, fps, (scheduler name, config) or "pipeline", seed policy)
EXPECTED = {
    "t2vu-nudity": {"cogvideox": (49, 50, 6.0, 8, DPM_TRAILING, "column"), "hunyuanvideo": (49, 30, 6.0, 15, "pipeline", "fixed:42")},
    "ring-a-bell-t2vu": {"cogvideox": (49, 50, 6.0, 8, DPM_TRAILING, "fixed:42"), "hunyuanvideo": (49, 30, 6.0, 15, "pipeline", "fixed:42")},
    "safesora-t2vu": {"cogvideox": (49, 50, 6.0, 8, DPM_TRAILING, "fixed:42")},
    "faces": {"cogvideox": (17, 50, 6.0, 8, DPM_TRAILING, "column"), "hunyuanvideo": (17, 30, 6.0, 15, "pipeline", "column")},
    "imagenet10-t2vu": {"cogvideox": (17, 50, 6.0, 8, DPM_TRAILING, "column")},
    "imagenet10": {"cogvideox": (49, 50, 6.0, 8, DPM_TRAILING, "column")},
    "safesora": {"cogvideox": (49, 50, 6.0, 8, DPM_TRAILING, "fixed:42"), "zeroscope": (16, 25, 9.0, 8, ("DPMSolverMultistepScheduler", {}), "fixed:42")},
    "safesora-all": {"cogvideox": (49, 50, 6.0, 8, DPM_TRAILING, "fixed:42"), "zeroscope": (16, 25, 9.0, 8, ("DPMSolverMultistepScheduler", {}), "fixed:42")},
    "ring-a-bell": {"cogvideox": (49, 50, 6.0, 8, DPM_TRAILING, "fixed:42")},
    "t2vsafetybench": {"cogvideox": (49, 50, 6.0, 8, DPM_TRAILING, "derived")},
}


@pytest.mark.parametrize("suite,family", [(s, f) for s, fams in EXPECTED.items() for f in fams])
def test_suite_carries_its_papers_protocol(suite, family):
    frames, steps, guidance, fps, scheduler, seed_policy = EXPECTED[suite][family]
    spec = load_suite_spec(suite)[0].for_family(family)
    gen = spec.generation_for(family)
    assert (gen.num_frames, gen.num_inference_steps, gen.guidance_scale, gen.fps) == (frames, steps, guidance, fps)
    assert gen.height is None or family == "zeroscope"  # the model's default resolution, except SAFREE's ZeroScope 576x320
    if scheduler == "pipeline":
        assert gen.scheduler is not None and gen.scheduler.keeps_pipeline
    else:
        assert (gen.scheduler.name, gen.scheduler.config) == scheduler
    assert spec.seed_policy == seed_policy
    check_scheduler(gen.scheduler)


def test_cogvideox_uses_dynamic_cfg_in_every_paper_protocol():
    for suite in EXPECTED:
        assert load_suite_spec(suite)[0].generation_for("cogvideox").extra.get("use_dynamic_cfg") is True, suite


def test_suite_settings_win_over_the_protocol_field_by_field():
    spec = load_suite_spec("faces")[0]
    gen = spec.generation_for("cogvideox")
    assert gen.num_frames == 17 and gen.num_inference_steps == 50  # suite default over protocol family, rest kept


def test_scheduler_is_built_from_the_models_config(tmp_path):
    from diffusers import CogVideoXDDIMScheduler, CogVideoXDPMScheduler

    class Pipe:
        scheduler = CogVideoXDDIMScheduler(num_train_timesteps=123, timestep_spacing="leading")

    pipe = Pipe()
    set_scheduler(pipe, SchedulerSpec(name="CogVideoXDPMScheduler", config={"timestep_spacing": "trailing"}))
    assert isinstance(pipe.scheduler, CogVideoXDPMScheduler)
    assert pipe.scheduler.config.num_train_timesteps == 123  # from the folder's config
    assert pipe.scheduler.config.timestep_spacing == "trailing"  # the protocol's override
    before = pipe.scheduler
    set_scheduler(pipe, SchedulerSpec(name="pipeline"))
    assert pipe.scheduler is before


@pytest.mark.parametrize(
    "spec,needle",
    [
        ({"name": "NoSuchScheduler"}, "NoSuchScheduler"),
        ({"name": "os.system"}, "os.system"),
        ({"name": "CogVideoXPipeline"}, "CogVideoXPipeline"),
        ({"name": "CogVideoXDDIMScheduler", "config": {"bogus": 1}}, "bogus"),
        ({"name": "pipeline", "config": {"timestep_spacing": "trailing"}}, "pipeline"),
        ({"name": "CogVideoXDPMScheduler", "config": {"timestep_spacing": "nonsense"}}, "nonsense"),
    ],
)
def test_bad_scheduler_is_one_clear_error(spec, needle):
    with pytest.raises(ErasebenchError, match=needle):
        check_scheduler(SchedulerSpec.model_validate(spec))


def test_bad_scheduler_value_stops_the_run_before_anything_is_written(tmp_path, cli):
    from test_paper_suites import one_line_error

    out = tmp_path / "out"
    one_line_error(
        cli("run", "--method", "none", "--suite", "shapes", "--limit", "1", "--out", out,
            "--scheduler", "CogVideoXDPMScheduler:timestep_spacing=nonsense"),
        "nonsense",
    )
    assert not out.exists()


def test_scheduler_shorthand_and_merge():
    a = GenerationSettings.model_validate({"scheduler": "DDIMScheduler"})
    assert a.scheduler == SchedulerSpec(name="DDIMScheduler")
    b = a.merged({"scheduler": {"name": "pipeline"}})
    assert b.scheduler.keeps_pipeline and "scheduler" not in b.pipeline_kwargs()


def test_run_records_and_keys_the_scheduler(tmp_path, tiny_model):
    from benchmark.runner import Runner, plan_run
    from benchmark.specs import PluginSpec, RunSpec

    def run(scheduler):
        spec = RunSpec(
            model=str(tiny_model("cogvideox")), eraser=PluginSpec(name="none"), suite="example", limit=1,
            metrics=(PluginSpec(name="temporal_flickering"),),
            generation={"num_frames": 9, "height": 16, "width": 16, "num_inference_steps": 2, "scheduler": scheduler},
        )
        return Runner(plan_run(spec, tmp_path)).run()

    ddim = run({"name": "CogVideoXDDIMScheduler", "config": {"timestep_spacing": "trailing"}})
    dpm = run({"name": "CogVideoXDPMScheduler", "config": {"timestep_spacing": "trailing"}})
    assert ddim["generation"]["scheduler"]["class"] == "CogVideoXDDIMScheduler"
    assert ddim["generation"]["scheduler"]["config"]["timestep_spacing"] == "trailing"
    assert dpm["generation"]["scheduler"]["class"] == "CogVideoXDPMScheduler"
    assert ddim["videos"]["groups"] != dpm["videos"]["groups"]  # the sampler is part of the video key
    sidecar = next((tmp_path / ddim["videos"]["groups"][0]).rglob("*.json"))
    assert json.loads(sidecar.read_text())["generation"]["scheduler"]["class"] == "CogVideoXDDIMScheduler"

"""VBench bridge: scores videos with the real VBench in its own Python environment (arXiv 2311.17982).

``vbench==0.1.5`` pins ``numpy<2``, ``transformers==4.33.2`` and more, so it lives in a separate
environment whose interpreter is ``vbench_python``. Per batch of videos the bridge

1. writes each video losslessly (frames bit-exact) as ``{prompt}-{index}.mp4``, VBench's naming
   (``index`` = the sample number, raised past collisions; ``/`` and control characters -> ``_``,
   cut to 255 bytes), plus a prompt file ``{video_path: prompt}`` so the exact prompt text is used;
2. runs VBench's evaluation in ``custom_input`` mode: the command ``vbench evaluate`` builds
   (``vbench/cli/evaluate.py``), i.e. ``python -m torch.distributed.run --standalone --nproc_per_node N
   vbench/launch/evaluate.py --videos_path ... --dimension ... --mode custom_input --prompt_file ...``,
   run here with ``vbench_python`` and without a shell, because the CLI wrapper joins the arguments
   into a shell string with ``python`` from PATH and discards the exit status;
3. reads ``{name}_eval_results.json`` = ``{dimension: [overall, [{"video_path", "video_results", ...}]]}``
   (``vbench/__init__.py`` ``VBench.evaluate``) and maps each video's ``video_results`` back.

Aggregates follow VBench's per-dimension overall: subject_consistency and background_consistency are
frame-pair weighted (``sum_v video_v * (F_v - 1) / sum_v (F_v - 1)``), the others a mean over videos
(dynamic_degree's booleans count 1/0). VBench needs a CUDA GPU (``launch/evaluate.py``); scores differ
by GPU type (VBench issue #176), so the GPU names are pinned in ``settings()``. Weights come from
VBench's cache (``$VBENCH_CACHE_DIR`` or ``~/.cache/vbench``); missing ones are an error unless
``allow_downloads`` (VBench would fetch them with wget).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from ..errors import ErasebenchError
from ..specs import PromptRecord
from .base import Metric, MetricConfig, ScoredVideo
from .subject_consistency import file_sha256, vbench_cache_dir

# VBench.check_dimension_requires_extra_info forbids these in custom_input mode
NEEDS_VBENCH_PROMPTS = ("object_class", "multiple_objects", "scene", "appearance_style", "color", "spatial_relationship")
# human_action reads its label from VBench's own file names ("a person is ...")
CUSTOM_INPUT_DIMENSIONS = (
    "subject_consistency", "background_consistency", "temporal_flickering", "motion_smoothness", "dynamic_degree",
    "aesthetic_quality", "imaging_quality", "overall_consistency", "temporal_style",
)
DEFAULT_DIMENSIONS = ("subject_consistency", "background_consistency", "motion_smoothness", "dynamic_degree", "aesthetic_quality", "imaging_quality")
PAIR_WEIGHTED = ("subject_consistency", "background_consistency")
# files each dimension loads from VBench's cache with --load_ckpt_from_local (vbench/utils.py init_submodules)
WEIGHT_FILES = {
    "subject_consistency": ("dino_model/dino_vitbase16_pretrain.pth", "dino_model/facebookresearch_dino_main/vision_transformer.py"),
    "background_consistency": ("clip_model/ViT-B-32.pt",),
    "temporal_flickering": (),
    "motion_smoothness": ("amt_model/amt-s.pth",),
    "dynamic_degree": ("raft_model/models/raft-things.pth",),
    "aesthetic_quality": ("clip_model/ViT-L-14.pt", "aesthetic_model/emb_reader/sa_0_4_vit_l_14_linear.pth"),
    "imaging_quality": ("pyiqa_model/musiq_spaq_ckpt-358bb6af.pth",),
    "overall_consistency": ("ViCLIP/ViClip-InternVid-10M-FLT.pth",),
    "temporal_style": ("ViCLIP/ViClip-InternVid-10M-FLT.pth",),
}
PROBE = r"""
import importlib.metadata as md, importlib.util, json, sys
out = {"python": sys.version.split()[0]}
spec = importlib.util.find_spec("vbench")
out["vbench_dir"] = list(spec.submodule_search_locations)[0] if spec and spec.submodule_search_locations else None
def v(name):
    try:
        return md.version(name)
    except Exception:
        return None
out["packages"] = {n: v(n) for n in ("vbench", "torch", "torchvision", "numpy", "transformers", "timm", "decord", "opencv-python", "pyiqa")}
out["gpus"] = []
if out["vbench_dir"]:
    try:
        import torch
        if torch.cuda.is_available():
            out["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception as exc:
        out["torch_error"] = repr(exc)
print("ERASEBENCH-PROBE " + json.dumps(out))
"""


class VBenchConfig(MetricConfig):
    vbench_python: str | None = None
    dimensions: tuple[str, ...] = DEFAULT_DIMENSIONS
    fps: int = Field(default=8, ge=1)
    load_ckpt_from_local: bool = True
    allow_downloads: bool = False
    imaging_quality_preprocessing_mode: Literal["longer", "shorter", "shorter_centercrop", "None"] = "longer"
    ngpus: int = Field(default=1, ge=1)
    timeout_s: float | None = Field(default=None, gt=0)
    work_dir: str | None = None
    keep_files: bool = False

    @field_validator("dimensions", mode="before")
    @classmethod
    def _dimensions(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [d.strip() for d in v.split(",") if d.strip()]
        bad = [d for d in v if d not in CUSTOM_INPUT_DIMENSIONS]
        if bad:
            why = " (needs VBench's own prompt suite)" if set(bad) & set(NEEDS_VBENCH_PROMPTS + ("human_action",)) else ""
            raise ValueError(f"unsupported VBench dimension {bad[0]!r}{why}; allowed: {', '.join(CUSTOM_INPUT_DIMENSIONS)}")
        if not v:
            raise ValueError("at least one dimension is needed")
        return tuple(dict.fromkeys(v))


# settings that do not change numbers (left out of the fingerprint)
RUN_ONLY_FIELDS = {"vbench_python", "timeout_s", "work_dir", "keep_files", "allow_downloads"}


def vbench_file_name(prompt: str, index: int) -> str:
    """VBench's ``{prompt}-{index}.mp4`` with ``/``, backslash and control characters as ``_``, cut to 255 bytes."""
    stem = re.sub(r"[\x00-\x1f\x7f/\\]", "_", prompt).strip() or "video"
    suffix = f"-{index}.mp4"
    budget = 255 - len(suffix.encode("utf-8"))
    encoded = stem.encode("utf-8")
    if len(encoded) > budget:
        stem = encoded[:budget].decode("utf-8", "ignore").rstrip() or "video"
    return stem + suffix


def vbench_file_names(videos: list[ScoredVideo]) -> list[str]:
    """One distinct file name per video: the sample number as index, raised until the name is unused."""
    used: set[str] = set()
    names = []
    for video in videos:
        index = video.sample
        name = vbench_file_name(video.record.prompt, index)
        while name in used:
            index += 1
            name = vbench_file_name(video.record.prompt, index)
        used.add(name)
        names.append(name)
    return names


def write_inputs(videos: list[ScoredVideo], videos_dir: Path, fps: int) -> tuple[list[str], dict[str, str]]:
    """Write the videos (lossless H.264 RGB) under VBench names; returns the names and the prompt file map."""
    from ..video import write_video

    videos_dir.mkdir(parents=True, exist_ok=True)
    names = vbench_file_names(videos)
    prompts = {}
    for video, name in zip(videos, names):
        path = videos_dir / name
        write_video(path, video.frames, fps=fps, codec="lossless")
        prompts[str(path.resolve())] = video.record.prompt
    return names, prompts


def launch_command(python: str, launch_script: str, videos_dir: Path, output_dir: Path, prompt_file: Path, config: VBenchConfig) -> list[str]:
    """The command ``vbench evaluate --mode custom_input`` runs, as an argument list for ``vbench_python``."""
    cmd = [
        python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(config.ngpus), launch_script,
        "--output_path", str(output_dir), "--videos_path", str(videos_dir), "--dimension", *config.dimensions,
        "--mode", "custom_input", "--prompt_file", str(prompt_file),
        "--imaging_quality_preprocessing_mode", config.imaging_quality_preprocessing_mode,
    ]
    if config.load_ckpt_from_local:  # argparse type=bool: any non-empty value means True, so False is "left out"
        cmd += ["--load_ckpt_from_local", "True"]
    return cmd


def read_results(path: Path, names: list[str], dimensions: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Per file name, the ``video_results`` of each dimension in a VBench ``*_eval_results.json``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ErasebenchError(f"vbench results {str(path)!r} cannot be read ({exc})") from None
    out: dict[str, dict[str, float]] = {name: {} for name in names}
    for dim in dimensions:
        entry = data.get(dim) if isinstance(data, dict) else None
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list)):
            raise ErasebenchError(f"vbench results {str(path)!r} have no [overall, per-video list] for dimension {dim!r}")
        for item in entry[1]:
            name = Path(str(item.get("video_path", ""))).name
            value = item.get("video_results")
            if name not in out:
                raise ErasebenchError(f"vbench results {str(path)!r} name a video it was not given: {item.get('video_path')!r}")
            if isinstance(value, bool) or isinstance(value, (int, float)):
                out[name][dim] = float(value)
            else:
                raise ErasebenchError(f"vbench results {str(path)!r}: {dim} of {name!r} is not a number ({value!r})")
    for name in names:
        for dim in dimensions:
            if dim not in out[name]:
                raise ErasebenchError(f"vbench returned no {dim} score for video {name!r} ({str(path)!r})")
    return out


def probe(python: str) -> dict[str, Any]:
    """Versions, VBench's package folder and the GPUs seen by the VBench interpreter."""
    exe = shutil.which(python) if os.sep not in python else python
    if exe is None or not os.path.isfile(exe) or not os.access(exe, os.X_OK):
        raise ErasebenchError(
            f"vbench_python {python!r} is not an executable Python interpreter; point "
            "--metric-arg vbench.vbench_python=PATH at the python of the environment where vbench is installed"
        )
    try:
        proc = subprocess.run([exe, "-c", PROBE], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ErasebenchError(f"vbench_python {python!r} cannot be run ({type(exc).__name__}: {exc})") from None
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("ERASEBENCH-PROBE ")), None)
    if proc.returncode != 0 or line is None:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ErasebenchError(f"vbench_python {python!r} failed to start ({last})")
    info = json.loads(line.removeprefix("ERASEBENCH-PROBE "))
    if not info.get("vbench_dir"):
        raise ErasebenchError(f"vbench_python {python!r} has no vbench package; install it there: {python} -m pip install vbench==0.1.5")
    return info


class VBenchBridge(Metric):
    """VBench dimensions via the real VBench CLI in its own environment (vbench_python), custom_input mode."""

    name = "vbench"
    version = "1"
    source = "VBench (arXiv 2311.17982), vbench==0.1.5 vbench/launch/evaluate.py, custom_input mode"
    Config = VBenchConfig
    higher_is_better = {dim: True for dim in CUSTOM_INPUT_DIMENSIONS}
    batch_size = 32

    def __init__(self, config: VBenchConfig, context):
        super().__init__(config, context)
        if config.vbench_python is None:
            raise ErasebenchError(
                "metric 'vbench' needs vbench_python: the python of a separate environment with vbench==0.1.5 "
                "(--metric-arg vbench.vbench_python=PATH)"
            )
        if not config.load_ckpt_from_local and not config.allow_downloads:
            raise ErasebenchError(
                "vbench load_ckpt_from_local=false makes VBench fetch weights from the network; set allow_downloads=true to allow that"
            )
        self.info = probe(config.vbench_python)
        self.launch_script = str(Path(self.info["vbench_dir"]) / "launch" / "evaluate.py")
        if not Path(self.launch_script).is_file():
            raise ErasebenchError(f"vbench_python {config.vbench_python!r}: VBench has no {self.launch_script!r} (vbench==0.1.5 is needed)")
        if len(self.info["gpus"]) < config.ngpus:
            raise ErasebenchError(
                f"vbench needs {config.ngpus} CUDA GPU(s) (its launch/evaluate.py runs on cuda with NCCL); "
                f"vbench_python {config.vbench_python!r} sees {len(self.info['gpus'])}"
            )
        self.weight_files = {rel: vbench_cache_dir() / rel for dim in config.dimensions for rel in WEIGHT_FILES[dim]}
        missing = [str(p) for p in self.weight_files.values() if not p.is_file()]
        if missing and not config.allow_downloads:
            raise ErasebenchError(
                f"vbench weights missing from VBench's cache {str(vbench_cache_dir())!r}: {', '.join(missing)} "
                "(download them there, set VBENCH_CACHE_DIR, or set allow_downloads=true to let VBench fetch them)"
            )
        self._settings: dict[str, Any] | None = None

    def settings(self) -> dict[str, Any]:
        if self._settings is None:
            self._settings = {
                "name": self.name,
                "version": self.version,
                "source": self.source,
                "config": self.config.model_dump(mode="json", exclude=RUN_ONLY_FIELDS),
                "mode": "custom_input",
                "python": self.info["python"],
                "packages": self.info["packages"],
                "gpus": self.info["gpus"],
                "weights_sha256": {rel: file_sha256(p) for rel, p in sorted(self.weight_files.items()) if p.is_file()},
                "video_files": "lossless H.264 RGB (libx264rgb qp 0)",
            }
        return self._settings

    def score(self, videos: list[ScoredVideo]) -> list[dict[str, Any]]:
        if self.config.work_dir is not None:
            Path(self.config.work_dir).mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="erasebench-vbench-", dir=self.config.work_dir))
        videos_dir, output_dir, prompt_file, log_file = work / "videos", work / "results", work / "prompts.json", work / "vbench.log"
        names, prompts = write_inputs(videos, videos_dir, self.config.fps)
        prompt_file.write_text(json.dumps(prompts, ensure_ascii=False, indent=1), encoding="utf-8")
        cmd = launch_command(self.config.vbench_python, self.launch_script, videos_dir, output_dir, prompt_file, self.config)
        env = dict(os.environ)
        env["PATH"] = os.path.dirname(os.path.abspath(self.config.vbench_python)) + os.pathsep + env.get("PATH", "")
        try:
            with log_file.open("w") as log:
                proc = subprocess.run(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=self.config.timeout_s)
        except subprocess.TimeoutExpired:
            raise ErasebenchError(f"vbench did not finish within {self.config.timeout_s} s; its log: {str(log_file)!r}") from None
        results = sorted(output_dir.glob("*_eval_results.json"))
        if proc.returncode != 0 or len(results) != 1:
            lines = [ln for ln in log_file.read_text(errors="replace").splitlines() if ln.strip()]
            last = lines[-1].strip() if lines else "no output"
            raise ErasebenchError(f"vbench failed (exit {proc.returncode}, {len(results)} results files): {last} (log: {str(log_file)!r})")
        per_video = read_results(results[0], names, self.config.dimensions)
        if not self.config.keep_files:
            shutil.rmtree(work, ignore_errors=True)
        return [{**per_video[name], "frame_pairs": len(video.frames) - 1} for video, name in zip(videos, names)]

    def aggregate(self, scores: list[dict[str, Any]], records: list[PromptRecord]) -> dict[str, float]:
        out = {}
        for dim in self.config.dimensions:
            rows = [s for s in scores if s.get(dim) is not None]
            if not rows:
                continue
            if dim in PAIR_WEIGHTED:
                pairs = sum(int(s.get("frame_pairs", 0)) for s in rows)
                if pairs:
                    out[dim] = sum(float(s[dim]) * int(s["frame_pairs"]) for s in rows) / pairs
            else:
                out[dim] = float(np.mean([float(s[dim]) for s in rows]))
        return out

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

``object_class`` (GRiT-B detections on 16 frames; T2VUnlearning arXiv 2505.17550 Tables 1 and 4) cannot
run in ``custom_input`` mode: VBench scores it against the COCO object of each of its own 79 prompts. The
bridge reads VBench's prompt list and prompt -> object map, pinned below (``OBJECT_CLASS_SOURCE``: repo,
commit of the vbench 0.1.5 tag, paths, sha256) and obtained like suite data (``--data-dir``, the cache,
else a download from the pinned commit); every video's prompt must be one of those prompts. It writes a
full-info JSON with each video's object and path and runs ``vbench.object_class.compute_object_class``
on it in the VBench environment (one process, ``cuda``), i.e. ``VBench.evaluate`` minus its file-name
matching, which would only find ``{prompt}-{0..4}`` (docs/metrics/vbench.md).

Aggregates follow VBench's per-dimension overall: subject_consistency and background_consistency are
frame-pair weighted (``sum_v video_v * (F_v - 1) / sum_v (F_v - 1)``), object_class pooled over frames
(``sum_v success_frames_v / sum_v frames_v``, with both counts), the others a mean over videos
(dynamic_degree's booleans count 1/0). VBench needs a CUDA GPU (``launch/evaluate.py``); scores differ
by GPU type (VBench issue #176), so the GPU names are pinned in ``settings()``. Weights come from
VBench's cache (``$VBENCH_CACHE_DIR`` or ``~/.cache/vbench``); missing ones are an error unless
``allow_downloads`` (VBench would fetch them with wget).
"""

from __future__ import annotations

import hashlib
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

from ..errors import ErasebenchError, SuiteError
from ..specs import PromptRecord
from ..suites import SourceFile, SourceSpec, SuiteSpec, fetch_source_files
from .base import Key, Metric, MetricConfig, MetricContext, ScoredVideo
from .subject_consistency import file_sha256, vbench_cache_dir

# VBench's object_class prompts and their COCO objects at the vbench 0.1.5 tag (identical at 2026-03 HEAD;
# T2VUnlearning ships the same two files under evaluation/vbench_prompts/). Never shipped here.
OBJECT_CLASS_SOURCE = SourceSpec(
    repo="Vchitect/VBench",
    commit="1039fe66d7aa2f4b214003ca2d35f5011c48bfee",  # tag v0.1.5
    files=(
        SourceFile(path="prompts/prompts_per_dimension/object_class.txt", sha256="988195c4176126e3c7ea8db6db554237a76b322b32c75d694916085424e4d293"),
        SourceFile(path="vbench/VBench_full_info.json", sha256="5dd2de80ee43cda750b2b72ea7023657c0b90d3702041c7e4608c65dbe50dccd"),
    ),
    format="lines",
    citation="Huang et al., VBench, arXiv 2311.17982",
)

# VBench.check_dimension_requires_extra_info forbids these in custom_input mode (object_class runs apart)
NEEDS_VBENCH_PROMPTS = ("object_class", "multiple_objects", "scene", "appearance_style", "color", "spatial_relationship")
# human_action reads its label from VBench's own file names ("a person is ...")
CUSTOM_INPUT_DIMENSIONS = (
    "subject_consistency", "background_consistency", "temporal_flickering", "motion_smoothness", "dynamic_degree",
    "aesthetic_quality", "imaging_quality", "overall_consistency", "temporal_style",
)
BRIDGE_DIMENSIONS = CUSTOM_INPUT_DIMENSIONS + ("object_class",)
DEFAULT_DIMENSIONS = ("subject_consistency", "background_consistency", "motion_smoothness", "dynamic_degree", "aesthetic_quality", "imaging_quality")
PAIR_WEIGHTED = ("subject_consistency", "background_consistency")
FRAME_POOLED = ("object_class",)  # per video: success_frame_count / frame_count
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
    "object_class": ("grit_model/grit_b_densecap_objectdet.pth",),
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
out["packages"] = {n: v(n) for n in ("vbench", "torch", "torchvision", "numpy", "transformers", "timm", "decord", "opencv-python", "pyiqa", "detectron2")}
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
# VBench.evaluate for object_class on a full-info JSON that already lists each video (argv: json, output, local)
OBJECT_CLASS_DRIVER = r"""
import sys, torch
from vbench.object_class import compute_object_class
from vbench.utils import init_submodules, save_json
submodules = init_submodules(["object_class"], local=sys.argv[3] == "1")
overall, per_video = compute_object_class(sys.argv[1], torch.device("cuda"), submodules["object_class"])
save_json({"object_class": [overall, per_video]}, sys.argv[2])
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
        bad = [d for d in v if d not in BRIDGE_DIMENSIONS]
        if bad:
            why = " (needs VBench's own prompt suite)" if set(bad) & set(NEEDS_VBENCH_PROMPTS + ("human_action",)) else ""
            raise ValueError(f"unsupported VBench dimension {bad[0]!r}{why}; allowed: {', '.join(BRIDGE_DIMENSIONS)}")
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


def fetch_object_class_files(data_dir: str | Path | None) -> dict[str, bytes]:
    """VBench's pinned object_class files (path in the repo -> verified bytes), found or fetched like suite data."""
    spec = SuiteSpec(name="vbench-object-class", version="0.1.5", description="VBench object_class prompts", source=OBJECT_CLASS_SOURCE)
    try:
        found = fetch_source_files(spec, Path(__file__), data_dir)
    except SuiteError as exc:
        raise ErasebenchError(f"metric 'vbench' dimension object_class: {exc}") from None
    return {file.path: raw for file, _, raw in found}


def object_class_table(prompt_list: bytes, full_info: bytes) -> dict[str, str]:
    """VBench's object_class prompts (one a line) -> the COCO object its full-info JSON names for each."""
    try:
        entries = json.loads(full_info.decode("utf-8"))
        objects = {
            e["prompt_en"]: e["auxiliary_info"]["object_class"]["object"] for e in entries if "object_class" in e.get("dimension", ())
        }
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError, TypeError) as exc:
        raise ErasebenchError(f"VBench full-info JSON is not a list of prompt entries with auxiliary_info.object_class.object ({exc!r})") from None
    prompts = [line.strip() for line in prompt_list.decode("utf-8").splitlines() if line.strip()]
    missing = [p for p in prompts if p not in objects]
    if missing or not prompts:
        raise ErasebenchError(f"VBench full-info JSON has no object_class object for prompt {missing[0] if missing else '(none listed)'!r}")
    return {p: objects[p] for p in prompts}


def object_class_info(videos: list[ScoredVideo], names: list[str], videos_dir: Path, objects: list[str]) -> list[dict[str, Any]]:
    """A VBench full-info list with one object_class entry per written video (absolute path)."""
    return [
        {
            "prompt_en": video.record.prompt,
            "dimension": ["object_class"],
            "auxiliary_info": {"object_class": {"object": obj}},
            "video_list": [str((videos_dir / name).resolve())],
        }
        for video, name, obj in zip(videos, names, objects)
    ]


def object_class_command(python: str, info_file: Path, output_file: Path, config: VBenchConfig) -> list[str]:
    return [python, "-c", OBJECT_CLASS_DRIVER, str(info_file), str(output_file), "1" if config.load_ckpt_from_local else "0"]


def launch_command(
    python: str, launch_script: str, videos_dir: Path, output_dir: Path, prompt_file: Path, config: VBenchConfig,
    dimensions: tuple[str, ...] | None = None,
) -> list[str]:
    """The command ``vbench evaluate --mode custom_input`` runs, as an argument list for ``vbench_python``."""
    if dimensions is None:
        dimensions = tuple(d for d in config.dimensions if d in CUSTOM_INPUT_DIMENSIONS)
    cmd = [
        python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(config.ngpus), launch_script,
        "--output_path", str(output_dir), "--videos_path", str(videos_dir), "--dimension", *dimensions,
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
            if "success_frame_count" in item and "frame_count" in item:  # object_class keeps its counts
                out[name][f"{dim}_success_frames"] = int(item["success_frame_count"])
                out[name][f"{dim}_frames"] = int(item["frame_count"])
    for name in names:
        for dim in dimensions:
            if dim not in out[name]:
                raise ErasebenchError(f"vbench returned no {dim} score for video {name!r} ({str(path)!r})")
    return out


def last_line(log_file: Path) -> str:
    lines = [ln for ln in log_file.read_text(errors="replace").splitlines() if ln.strip()] if log_file.is_file() else []
    return lines[-1].strip() if lines else "no output"


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
    """VBench dimensions via the real VBench in its own environment (vbench_python); object_class on VBench's prompts."""

    name = "vbench"
    version = "2"
    source = "VBench (arXiv 2311.17982), vbench==0.1.5 vbench/launch/evaluate.py custom_input mode; object_class via compute_object_class"
    Config = VBenchConfig
    higher_is_better = {dim: True for dim in BRIDGE_DIMENSIONS}
    score_keys = {
        "frame_pairs": "frame pairs of the video", "*_frames": "frame counts of a frame-pooled dimension (object_class)",
        **{dim: f"VBench {dim.replace('_', ' ')} of the video" for dim in BRIDGE_DIMENSIONS},
    }
    aggregate_keys = {
        **{dim: Key(f"VBench {dim.replace('_', ' ')} (mean over videos; consistency dims pooled over frame pairs)", True)
           for dim in BRIDGE_DIMENSIONS},
        "*_frames": Key("frame counts of a frame-pooled dimension (count)"),
    }
    batch_size = 32
    requires = "vbench_python, a separate vbench==0.1.5 environment, and a CUDA GPU"

    def __init__(self, config: VBenchConfig, context: MetricContext):
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
        self.objects: dict[str, str] = {}
        self.object_class_sha256: dict[str, str] = {}
        if "object_class" in config.dimensions:
            files = fetch_object_class_files(context.data_dir)
            self.object_class_sha256 = {path: hashlib.sha256(raw).hexdigest() for path, raw in files.items()}
            prompt_list, full_info = (files[f.path] for f in OBJECT_CLASS_SOURCE.files)
            self.objects = object_class_table(prompt_list, full_info)
        self.info = probe(config.vbench_python)
        self.launch_script = str(Path(self.info["vbench_dir"]) / "launch" / "evaluate.py")
        if not Path(self.launch_script).is_file():
            raise ErasebenchError(f"vbench_python {config.vbench_python!r}: VBench has no {self.launch_script!r} (vbench==0.1.5 is needed)")
        if len(self.info["gpus"]) < config.ngpus:
            raise ErasebenchError(
                f"vbench needs {config.ngpus} CUDA GPU(s) (its launch/evaluate.py runs on cuda with NCCL); "
                f"vbench_python {config.vbench_python!r} sees {len(self.info['gpus'])}"
            )
        if "object_class" in config.dimensions and not self.info["packages"].get("detectron2"):
            raise ErasebenchError(
                f"vbench object_class needs detectron2 (GRiT) in vbench_python {config.vbench_python!r}; install it there as VBench's README says"
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
            if self.objects:
                self._settings["object_class"] = {
                    "prompts": f"{OBJECT_CLASS_SOURCE.repo}@{OBJECT_CLASS_SOURCE.commit}",
                    "files_sha256": self.object_class_sha256,
                    "run": "vbench.object_class.compute_object_class on a full-info JSON listing each video (one process, cuda)",
                    "aggregation": "success frames / frames, pooled over videos",
                }
        return self._settings

    def object_of(self, record: PromptRecord) -> str:
        """The COCO object VBench checks for this row's prompt."""
        obj = self.objects.get(record.prompt.strip())
        if obj is None:
            first = OBJECT_CLASS_SOURCE.files[0].path
            raise ErasebenchError(
                f"vbench object_class: suite {record.suite!r} row {record.prompt_id!r} prompt {record.prompt!r} is not one of VBench's "
                f"{len(self.objects)} object_class prompts ({OBJECT_CLASS_SOURCE.repo}@{OBJECT_CLASS_SOURCE.commit[:7]} {first})"
            )
        return obj

    def run(self, cmd: list[str], work: Path, log_file: Path) -> None:
        env = dict(os.environ)
        env["PATH"] = os.path.dirname(os.path.abspath(self.config.vbench_python)) + os.pathsep + env.get("PATH", "")
        try:
            with log_file.open("w") as log:
                proc = subprocess.run(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=self.config.timeout_s)
        except subprocess.TimeoutExpired:
            raise ErasebenchError(f"vbench did not finish within {self.config.timeout_s} s; its log: {str(log_file)!r}") from None
        if proc.returncode != 0:
            raise ErasebenchError(f"vbench failed (exit {proc.returncode}): {last_line(log_file)} (log: {str(log_file)!r})")

    def score(self, videos: list[ScoredVideo]) -> list[dict[str, Any]]:
        objects = [self.object_of(v.record) for v in videos] if "object_class" in self.config.dimensions else []
        if self.config.work_dir is not None:
            Path(self.config.work_dir).mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="erasebench-vbench-", dir=self.config.work_dir))
        videos_dir = work / "videos"
        names, prompts = write_inputs(videos, videos_dir, self.config.fps)
        per_video: dict[str, dict[str, Any]] = {name: {} for name in names}
        custom = tuple(d for d in self.config.dimensions if d in CUSTOM_INPUT_DIMENSIONS)
        if custom:
            output_dir, prompt_file, log_file = work / "results", work / "prompts.json", work / "vbench.log"
            prompt_file.write_text(json.dumps(prompts, ensure_ascii=False, indent=1), encoding="utf-8")
            self.run(launch_command(self.config.vbench_python, self.launch_script, videos_dir, output_dir, prompt_file, self.config, custom), work, log_file)
            results = sorted(output_dir.glob("*_eval_results.json"))
            if len(results) != 1:
                raise ErasebenchError(f"vbench wrote {len(results)} results files: {last_line(log_file)} (log: {str(log_file)!r})")
            for name, values in read_results(results[0], names, custom).items():
                per_video[name].update(values)
        if objects:
            info_file, output_file = work / "object_class_full_info.json", work / "object_class_eval_results.json"
            info_file.write_text(json.dumps(object_class_info(videos, names, videos_dir, objects), ensure_ascii=False, indent=1), encoding="utf-8")
            log_file = work / "object_class.log"
            self.run(object_class_command(self.config.vbench_python, info_file, output_file, self.config), work, log_file)
            if not output_file.is_file():
                raise ErasebenchError(f"vbench object_class wrote no results: {last_line(log_file)} (log: {str(log_file)!r})")
            for name, values in read_results(output_file, names, ("object_class",)).items():
                per_video[name].update(values)
        if not self.config.keep_files:
            shutil.rmtree(work, ignore_errors=True)
        return [{**per_video[name], "frame_pairs": len(video.frames) - 1} for video, name in zip(videos, names)]

    def aggregate(self, scores: list[dict[str, Any]], records: list[PromptRecord]) -> dict[str, float | int]:
        out: dict[str, float | int] = {}
        for dim in self.config.dimensions:
            rows = [s for s in scores if s.get(dim) is not None]
            if not rows:
                continue
            if dim in PAIR_WEIGHTED:
                pairs = sum(int(s.get("frame_pairs", 0)) for s in rows)
                if pairs:
                    out[dim] = sum(float(s[dim]) * int(s["frame_pairs"]) for s in rows) / pairs
            elif dim in FRAME_POOLED:
                frames = sum(int(s[f"{dim}_frames"]) for s in rows)
                success = sum(int(s[f"{dim}_success_frames"]) for s in rows)
                if frames:
                    out.update({dim: success / frames, f"{dim}_success_frames": success, f"{dim}_frames": frames})
            else:
                out[dim] = float(np.mean([float(s[dim]) for s in rows]))
        return out

"""VBench formulas: temporal_flickering, native subject_consistency (tiny timm ViT) and the VBench bridge's I/O.

The bridge itself needs VBench's own environment and a CUDA GPU (vbench/launch/evaluate.py runs on
cuda with NCCL), so here it is tested on its parts: file naming, the written videos as VBench's
readers see them, the command line, and parsing of a results file in the format of
``VBench.evaluate`` (vbench==0.1.5 ``vbench/__init__.py``). With ``ERASEBENCH_VBENCH_PYTHON`` set on
a GPU machine, the last test runs the real VBench and compares it with the native plugins.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark.errors import ErasebenchError
from benchmark.metrics.base import METRICS, MetricContext, ScoredVideo
from benchmark.specs import PromptRecord


def scored(frames: np.ndarray, prompt: str = "a red ball", pid: str = "p0", sample: int = 0) -> ScoredVideo:
    return ScoredVideo(frames, PromptRecord(suite="s", prompt_id=pid, prompt=prompt), sample, f"{pid}/{sample:02d}.mp4")


def metric(name: str, **args):
    return METRICS.get(name).from_args(args, MetricContext(suite="s"))


# --- temporal_flickering --------------------------------------------------------------------------


def test_temporal_flickering_formula():
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    frames[1] = 10
    row = metric("temporal_flickering").score([scored(frames), scored(np.repeat(frames[:1], 4, 0))])
    assert row[0] == {"temporal_flickering": (255 - 10) / 255, "mean_abs_diff": 10.0}
    assert row[1]["temporal_flickering"] == 1.0
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (5, 24, 40, 3), dtype=np.uint8)
    value = metric("temporal_flickering").score([scored(noisy)])[0]
    mae = np.mean([np.abs(noisy[i + 1].astype(float) - noisy[i]).mean() for i in range(4)])
    assert value["temporal_flickering"] == pytest.approx((255 - mae) / 255, abs=1e-7)  # VBench averages in float32
    assert metric("temporal_flickering").score([scored(noisy[:1])])[0]["temporal_flickering"] is None


def test_temporal_flickering_matches_vbench_reading_with_opencv(tmp_path):
    """VBench reads with cv2.VideoCapture (BGR) and averages cv2.absdiff in float32: same number, bit for bit."""
    import cv2

    from benchmark.video import write_video

    frames = np.random.default_rng(1).integers(0, 256, (6, 32, 48, 3), dtype=np.uint8)
    path = tmp_path / "v.mp4"
    write_video(path, frames, fps=8, codec="lossless")
    capture, read = cv2.VideoCapture(str(path)), []
    while capture.isOpened():
        ok, frame = capture.read()
        if not ok:
            break
        read.append(frame)
    capture.release()
    assert np.array_equal(np.stack(read), frames[..., ::-1])
    maes = [np.mean(cv2.absdiff(np.array(a, dtype=np.float32), np.array(b, dtype=np.float32))) for a, b in zip(read, read[1:])]
    vbench_score = (255.0 - np.mean(np.array(maes)).item()) / 255.0
    assert metric("temporal_flickering").score([scored(frames)])[0]["temporal_flickering"] == vbench_score


# --- subject_consistency (native) -----------------------------------------------------------------

TINY_VIT = {"embed_dim": 32, "depth": 2, "num_heads": 2}


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory) -> Path:
    """A random-weight timm ViT-B/16 layout shrunk to width 32, saved as a state dict like DINO's release file."""
    import timm
    import torch

    torch.manual_seed(0)
    model = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0, **TINY_VIT)
    with torch.no_grad():  # large random weights: features that differ between frames (timm's init gives a near-constant [CLS])
        for name, param in model.named_parameters():
            if param.ndim >= 2:
                param.normal_(std=0.5)
    path = tmp_path_factory.mktemp("dino") / "dino_vitbase16_pretrain.pth"
    torch.save(model.state_dict(), path)
    return path


def test_consistency_formula_on_known_features():
    import torch

    from benchmark.metrics.subject_consistency import consistency_sum

    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    # i=1: cos to prev 0, to first 0 -> 0; i=2: prev 0, first 1 -> 0.5; i=3: prev -1 -> 0, first -1 -> 0
    assert consistency_sum(feats) == pytest.approx(0.5, abs=1e-12)
    assert consistency_sum(5.0 * feats) == pytest.approx(0.5, abs=1e-7)
    assert consistency_sum(torch.ones(4, 8)) == pytest.approx(3.0, abs=1e-6)


def test_subject_consistency_identical_frames_and_weighting(tiny_vit):
    m = metric("subject_consistency", weights=str(tiny_vit), model_kwargs=TINY_VIT)
    frame = np.random.default_rng(2).integers(0, 256, (1, 40, 64, 3), dtype=np.uint8)
    rows = m.score([scored(np.repeat(frame, 4, 0)), scored(frame)])
    assert rows[0]["subject_consistency"] == pytest.approx(1.0, abs=1e-6) and rows[0]["frame_pairs"] == 3
    assert rows[1]["subject_consistency"] is None
    records = [PromptRecord(suite="s", prompt_id=p, prompt="x") for p in "ab"]
    agg = m.aggregate([{"subject_consistency": 1.0, "frame_pairs": 1}, {"subject_consistency": 0.5, "frame_pairs": 3}], records)
    assert agg == {"subject_consistency": pytest.approx((1.0 + 1.5) / 4)}  # frame-pair weighted, as VBench's overall


def dino_reference_features(model, x):
    """DINO's ViT forward written out (explicit softmax attention), for one image at a time."""
    import torch
    import torch.nn.functional as F

    _, _, h, w = x.shape
    tokens = F.conv2d(x, model.patch_embed.proj.weight, model.patch_embed.proj.bias, stride=16).flatten(2).transpose(1, 2)
    tokens = torch.cat([model.cls_token, tokens], dim=1)
    n = model.pos_embed.shape[1] - 1
    grid = model.pos_embed[:, 1:].reshape(1, int(math.sqrt(n)), int(math.sqrt(n)), -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=((h // 16 + 0.1) / math.sqrt(n), (w // 16 + 0.1) / math.sqrt(n)), mode="bicubic")
    tokens = tokens + torch.cat([model.pos_embed[:, :1], grid.flatten(2).transpose(1, 2)], dim=1)
    for blk in model.blocks:
        y = blk.norm1(tokens)
        heads = blk.attn.num_heads
        q, k, v = blk.attn.qkv(y).reshape(1, y.shape[1], 3, heads, -1).permute(2, 0, 3, 1, 4)
        attn = ((q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)).softmax(dim=-1)
        tokens = tokens + blk.attn.proj((attn @ v).transpose(1, 2).reshape(1, y.shape[1], -1))
        tokens = tokens + blk.mlp.fc2(F.gelu(blk.mlp.fc1(blk.norm2(tokens))))
    return model.norm(tokens)[:, 0]


def test_subject_consistency_matches_vbench_loop(tiny_vit):
    """VBench's loop (one frame at a time through DINO, running sums) on non-square frames == the plugin to 1e-6."""
    import torch
    import torch.nn.functional as F

    from benchmark.metrics.subject_consistency import dino_features, preprocess

    m = metric("subject_consistency", weights=str(tiny_vit), model_kwargs=TINY_VIT, batch_frames=3)
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
    frames = np.stack([np.roll(base, 6 * i, axis=1) for i in range(5)])
    frames[3] = 255 - frames[3]
    x = preprocess(frames, 224)
    assert tuple(x.shape) == (5, 3, 224, 373)  # short side 224, long side int(224 * 80 / 48)
    with torch.no_grad():
        square = preprocess(frames[:, :, :48], 224)
        assert torch.allclose(dino_features(m.model, square), m.model(square), atol=1e-5)  # == timm's own forward at 224x224
        video_sim, first, former = 0.0, None, None
        for i in range(len(frames)):
            feat = F.normalize(dino_reference_features(m.model, x[i : i + 1]), dim=-1, p=2)
            if i == 0:
                first = feat
            else:
                video_sim += (max(0.0, F.cosine_similarity(former, feat).item()) + max(0.0, F.cosine_similarity(first, feat).item())) / 2
            former = feat
    expected = video_sim / (len(frames) - 1)
    got = m.score([scored(frames)])[0]["subject_consistency"]
    assert 0.05 < expected < 0.999
    assert got == pytest.approx(expected, abs=1e-6)


def test_subject_consistency_weights_lookup_and_errors(tiny_vit, tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("VBENCH_CACHE_DIR", str(tmp_path / "vbench-cache"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(ErasebenchError, match="no DINO ViT-B/16 weights found .*vbench-cache/dino_model/dino_vitbase16_pretrain.pth"):
        metric("subject_consistency")
    with pytest.raises(ErasebenchError, match="weights '/nope.pth' do not exist"):
        metric("subject_consistency", weights="/nope.pth")
    # VBench's cache location is found without any argument; a DINO training checkpoint layout loads too
    cached = tmp_path / "vbench-cache" / "dino_model" / "dino_vitbase16_pretrain.pth"
    cached.parent.mkdir(parents=True)
    state = torch.load(tiny_vit, weights_only=True)
    torch.save({"teacher": {**{f"backbone.{k}": v for k, v in state.items()}, "head.last_layer.weight": torch.zeros(2, 2)}}, cached)
    m = metric("subject_consistency", model_kwargs=TINY_VIT)
    assert m.weights_path == cached
    frame = np.random.default_rng(4).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    direct = metric("subject_consistency", weights=str(tiny_vit), model_kwargs=TINY_VIT)
    assert m.score([scored(frame)]) == direct.score([scored(frame)])
    assert m.settings()["weights_sha256"] != direct.settings()["weights_sha256"]
    assert "weights" not in m.settings()["config"] and m.settings()["config"]["model_kwargs"] == TINY_VIT
    with pytest.raises(ErasebenchError, match="do not fit timm model 'vit_base_patch16_224'"):
        metric("subject_consistency", weights=str(tiny_vit), model_kwargs={**TINY_VIT, "embed_dim": 48}).score([scored(frame)])


# --- the VBench bridge ----------------------------------------------------------------------------


def vbench_prompt_from_filename(name: str) -> str:
    """VBench's rule (vbench/utils.py get_prompt_from_filename): the stem without a trailing -<digits>."""
    stem = Path(name).stem
    return re.sub(r"-\d+$", "", stem)


def test_vbench_file_names():
    from benchmark.metrics.vbench import vbench_file_name, vbench_file_names

    assert vbench_file_name("a red ball bouncing", 2) == "a red ball bouncing-2.mp4"
    assert vbench_prompt_from_filename(vbench_file_name("A cat. Then a dog", 0)) == "A cat. Then a dog"
    assert vbench_file_name("a/b\\c\nd\x1ce", 0) == "a_b_c_d_e-0.mp4"
    long = "é" * 300
    name = vbench_file_name(long, 13)
    assert len(name.encode()) <= 255 and name.endswith("-13.mp4") and set(name[:-7]) == {"é"}
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    videos = [scored(frames, "same", "a", 0), scored(frames, "same", "b", 0), scored(frames, "same", "c", 1), scored(frames, "other", "d", 1)]
    assert vbench_file_names(videos) == ["same-0.mp4", "same-1.mp4", "same-2.mp4", "other-1.mp4"]


def test_vbench_inputs_as_vbench_reads_them(tmp_path):
    from benchmark.metrics.vbench import write_inputs
    from benchmark.video import read_video

    rng = np.random.default_rng(5)
    # widths 64 and 96: decord 0.6.0 fails on some tiny widths (24, 48) whatever the codec
    videos = [
        scored(rng.integers(0, 256, (4, 24, 64, 3), dtype=np.uint8), "a ball\nrolling", "a"),
        scored(rng.integers(0, 256, (3, 16, 96, 3), dtype=np.uint8), "a/b", "b", 2),
    ]
    names, prompts = write_inputs(videos, tmp_path / "videos", fps=16)
    assert names == ["a ball_rolling-0.mp4", "a_b-2.mp4"]
    assert prompts == {str((tmp_path / "videos" / n).resolve()): v.record.prompt for n, v in zip(names, videos)}  # exact prompt text
    for name, v in zip(names, videos):
        assert np.array_equal(read_video(tmp_path / "videos" / name), v.frames)
    import cv2  # dynamic_degree reads with OpenCV and samples by its fps
    capture = cv2.VideoCapture(str(tmp_path / "videos" / names[0]))
    assert capture.get(cv2.CAP_PROP_FPS) == 16
    ok, frame = capture.read()
    capture.release()
    assert ok and np.array_equal(frame[..., ::-1], videos[0].frames[0])
    decord = pytest.importorskip("decord")  # VBench's load_video
    reader = decord.VideoReader(str(tmp_path / "videos" / names[1]), num_threads=1)
    assert np.array_equal(reader.get_batch(list(range(len(reader)))).asnumpy(), videos[1].frames)


def test_vbench_launch_command():
    from benchmark.metrics.vbench import VBenchConfig, launch_command

    config = VBenchConfig(dimensions="subject_consistency, dynamic_degree", ngpus=2)
    cmd = launch_command("/env/bin/python", "/env/vbench/launch/evaluate.py", Path("/w/videos"), Path("/w/results"), Path("/w/prompts.json"), config)
    assert cmd == [
        "/env/bin/python", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "/env/vbench/launch/evaluate.py",
        "--output_path", "/w/results", "--videos_path", "/w/videos", "--dimension", "subject_consistency", "dynamic_degree",
        "--mode", "custom_input", "--prompt_file", "/w/prompts.json", "--imaging_quality_preprocessing_mode", "longer",
        "--load_ckpt_from_local", "True",
    ]
    remote = VBenchConfig(load_ckpt_from_local=False)
    assert "--load_ckpt_from_local" not in launch_command("p", "l", Path("v"), Path("o"), Path("f"), remote)


def vbench_results_file(path: Path, videos_dir: Path, names: list[str]) -> Path:
    """A results file in VBench.evaluate's layout {dim: [overall, [per-video dicts]]} with each module's fields."""
    data = {
        "subject_consistency": [0.9, [{"video_path": str(videos_dir / n), "video_results": v} for n, v in zip(names, (0.95, 0.85))]],
        "background_consistency": [
            0.9,
            [{"video_path": str(videos_dir / n), "video_results": v, "video_sim": v * 3, "cnt_per_video": 3} for n, v in zip(names, (0.92, 0.88))],
        ],
        "dynamic_degree": [0.5, [{"video_path": str(videos_dir / n), "video_results": v} for n, v in zip(names, (True, False))]],
    }
    path.write_text(json.dumps(data, indent=4))
    return path


def test_vbench_results_parsing_and_aggregate(tmp_path):
    from benchmark.metrics.vbench import VBenchBridge, VBenchConfig, read_results

    names = ["a ball-0.mp4", "a ball-1.mp4"]
    dims = ("subject_consistency", "background_consistency", "dynamic_degree")
    path = vbench_results_file(tmp_path / "results_2026_eval_results.json", tmp_path / "videos", names)
    parsed = read_results(path, names, dims)
    assert parsed == {
        "a ball-0.mp4": {"subject_consistency": 0.95, "background_consistency": 0.92, "dynamic_degree": 1.0},
        "a ball-1.mp4": {"subject_consistency": 0.85, "background_consistency": 0.88, "dynamic_degree": 0.0},
    }
    with pytest.raises(ErasebenchError, match="no subject_consistency score for video 'c-0.mp4'"):
        read_results(path, [*names, "c-0.mp4"], dims)
    with pytest.raises(ErasebenchError, match="name a video it was not given"):
        read_results(path, names[:1], dims)
    with pytest.raises(ErasebenchError, match="no \\[overall, per-video list\\] for dimension 'imaging_quality'"):
        read_results(path, names, ("imaging_quality",))
    # aggregate: the VBench overall of each dimension (pair-weighted for the two consistency dimensions)
    bridge = object.__new__(VBenchBridge)
    bridge.config = VBenchConfig(dimensions=dims)
    rows = [{**parsed[names[0]], "frame_pairs": 1}, {**parsed[names[1]], "frame_pairs": 3}]
    agg = bridge.aggregate(rows, [PromptRecord(suite="s", prompt_id=p, prompt="x") for p in "ab"])
    assert agg == {
        "subject_consistency": pytest.approx((0.95 + 3 * 0.85) / 4),
        "background_consistency": pytest.approx((0.92 + 3 * 0.88) / 4),
        "dynamic_degree": 0.5,
    }


def test_vbench_bridge_errors(tmp_path):
    with pytest.raises(ErasebenchError, match="unsupported VBench dimension 'scene' \\(needs VBench's own prompt suite\\)"):
        metric("vbench", vbench_python=sys.executable, dimensions=["scene"])
    with pytest.raises(ErasebenchError, match="needs vbench_python"):
        metric("vbench")
    with pytest.raises(ErasebenchError, match="'/no/such/python' is not an executable Python interpreter"):
        metric("vbench", vbench_python="/no/such/python")
    with pytest.raises(ErasebenchError, match="has no vbench package; install it there"):
        metric("vbench", vbench_python=sys.executable)  # a real interpreter (this one) without vbench
    with pytest.raises(ErasebenchError, match="load_ckpt_from_local=false makes VBench fetch weights"):
        metric("vbench", vbench_python=sys.executable, load_ckpt_from_local=False)


# --- the VBench bridge: object_class -----------------------------------------------------------------

# A prompt list and full-info JSON in VBench's formats (our own two rows), standing in for the pinned files.
FIXTURE_PROMPTS = b"a dog\nan apple\n"
FIXTURE_INFO = json.dumps([
    {"prompt_en": "a red ball", "dimension": ["subject_consistency"]},
    {"prompt_en": "a dog", "dimension": ["object_class"], "auxiliary_info": {"object_class": {"object": "dog"}}},
    {"prompt_en": "an apple", "dimension": ["object_class"], "auxiliary_info": {"object_class": {"object": "apple"}}},
]).encode()

# VBench's modules as compute_object_class and init_submodules (vbench==0.1.5) call and return them;
# frames found per object: dog 12 of 16, apple 3 of 16.
FAKE_VBENCH = {
    "vbench/__init__.py": "",
    "vbench/launch/evaluate.py": "raise SystemExit('custom_input is not used for object_class')\n",
    "vbench/utils.py": (
        "import json\n"
        "def init_submodules(dimension_list, local=False, read_frame=False):\n"
        "    return {d: {'model_weight': 'grit_b_densecap_objectdet.pth', 'local': local} for d in dimension_list}\n"
        "def save_json(data, path):\n"
        "    with open(path, 'w') as f:\n"
        "        json.dump(data, f)\n"
    ),
    "vbench/object_class.py": (
        "import json, os\n"
        "def compute_object_class(json_dir, device, submodules_dict, **kwargs):\n"
        "    assert str(device) == 'cuda' and submodules_dict['local'] is True\n"
        "    results = []\n"
        "    for entry in json.load(open(json_dir)):\n"
        "        assert entry['dimension'] == ['object_class']\n"
        "        hits = {'dog': 12, 'apple': 3}[entry['auxiliary_info']['object_class']['object']]\n"
        "        for path in entry['video_list']:\n"
        "            assert os.path.isabs(path) and os.path.isfile(path)\n"
        "            results.append({'video_path': path, 'video_results': hits / 16, 'success_frame_count': hits, 'frame_count': 16})\n"
        "    return sum(r['success_frame_count'] for r in results) / sum(r['frame_count'] for r in results), results\n"
    ),
}


@pytest.fixture
def object_class_fixture(tmp_path, monkeypatch):
    """The pinned source re-pinned to the fixture files under a --data-dir, downloads off, an empty cache."""
    import hashlib

    from benchmark.metrics import vbench
    from benchmark.suites import SourceFile, SourceSpec

    real = vbench.OBJECT_CLASS_SOURCE
    data = tmp_path / "data"
    for file, raw in zip(real.files, (FIXTURE_PROMPTS, FIXTURE_INFO)):
        (data / file.path).parent.mkdir(parents=True, exist_ok=True)
        (data / file.path).write_bytes(raw)
    files = tuple(SourceFile(path=f.path, sha256=hashlib.sha256(raw).hexdigest()) for f, raw in zip(real.files, (FIXTURE_PROMPTS, FIXTURE_INFO)))
    monkeypatch.setattr(vbench, "OBJECT_CLASS_SOURCE", SourceSpec(repo=real.repo, commit=real.commit, files=files, format="lines"))
    monkeypatch.setenv("ERASEBENCH_OFFLINE", "1")
    monkeypatch.setenv("ERASEBENCH_CACHE", str(tmp_path / "cache"))
    return data


def test_object_class_source_is_pinned():
    from benchmark.metrics.vbench import OBJECT_CLASS_SOURCE

    assert OBJECT_CLASS_SOURCE.origin() == "Vchitect/VBench@1039fe66d7aa2f4b214003ca2d35f5011c48bfee"  # tag v0.1.5
    assert [f.path for f in OBJECT_CLASS_SOURCE.files] == ["prompts/prompts_per_dimension/object_class.txt", "vbench/VBench_full_info.json"]
    assert all(len(f.sha256) == 64 for f in OBJECT_CLASS_SOURCE.files)
    assert OBJECT_CLASS_SOURCE.url_for(OBJECT_CLASS_SOURCE.files[1]) == (
        "https://raw.githubusercontent.com/Vchitect/VBench/1039fe66d7aa2f4b214003ca2d35f5011c48bfee/vbench/VBench_full_info.json"
    )


def test_object_class_table_reads_vbench_formats():
    from benchmark.metrics.vbench import object_class_table

    assert object_class_table(FIXTURE_PROMPTS, FIXTURE_INFO) == {"a dog": "dog", "an apple": "apple"}
    assert object_class_table(b"an apple\r\n\r\n", FIXTURE_INFO) == {"an apple": "apple"}
    with pytest.raises(ErasebenchError, match="no object_class object for prompt 'a cat'"):
        object_class_table(b"a dog\na cat", FIXTURE_INFO)
    with pytest.raises(ErasebenchError, match="auxiliary_info.object_class.object"):
        object_class_table(FIXTURE_PROMPTS, b'[{"prompt_en": "a dog", "dimension": ["object_class"]}]')
    with pytest.raises(ErasebenchError, match="auxiliary_info.object_class.object"):
        object_class_table(FIXTURE_PROMPTS, b"{not json")


def test_object_class_files_found_like_suite_data(object_class_fixture, tmp_path):
    from benchmark.metrics.vbench import fetch_object_class_files

    files = fetch_object_class_files(object_class_fixture)
    assert files == {"prompts/prompts_per_dimension/object_class.txt": FIXTURE_PROMPTS, "vbench/VBench_full_info.json": FIXTURE_INFO}
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ErasebenchError) as missing:
        fetch_object_class_files(empty)
    message = str(missing.value)
    assert message.startswith("metric 'vbench' dimension object_class: ") and "downloads are off" in message
    assert f"{empty}/prompts/prompts_per_dimension/object_class.txt" in message and f"--data-dir {empty}" in message
    (object_class_fixture / "vbench" / "VBench_full_info.json").write_bytes(FIXTURE_INFO + b" ")
    with pytest.raises(ErasebenchError, match="VBench_full_info.json' has sha256 .* replace it with the original file"):
        fetch_object_class_files(object_class_fixture)


def test_object_class_results_and_frame_pooled_aggregate(tmp_path):
    from benchmark.metrics.vbench import VBenchBridge, VBenchConfig, read_results

    names = ["a dog-0.mp4", "a dog-1.mp4", "an apple-0.mp4"]
    counts = [(12, 16), (3, 16), (16, 16)]
    data = {"object_class": [31 / 48, [
        {"video_path": str(tmp_path / n), "video_results": k / f, "success_frame_count": k, "frame_count": f} for n, (k, f) in zip(names, counts)
    ]]}
    (tmp_path / "r.json").write_text(json.dumps(data))
    parsed = read_results(tmp_path / "r.json", names, ("object_class",))
    assert parsed["a dog-0.mp4"] == {"object_class": 0.75, "object_class_success_frames": 12, "object_class_frames": 16}
    bridge = object.__new__(VBenchBridge)
    bridge.config = VBenchConfig(dimensions=["object_class"])
    records = [PromptRecord(suite="s", prompt_id=p, prompt="x") for p in "abc"]
    assert bridge.aggregate([parsed[n] for n in names], records) == {"object_class": 31 / 48, "object_class_success_frames": 31, "object_class_frames": 48}
    # frames pooled, not a mean of video rates, when the frame counts differ
    short = [{**parsed[names[0]], "object_class_success_frames": 1, "object_class_frames": 2}, parsed[names[1]]]
    assert bridge.aggregate(short, records[:2])["object_class"] == 4 / 18


def test_object_class_bridge_with_vbench_modules(object_class_fixture, tmp_path, monkeypatch):
    """The bridge end to end against VBench's module interfaces (fake modules, this interpreter, no GPU)."""
    from benchmark.metrics import vbench

    root = tmp_path / "fake-env"
    for rel, text in FAKE_VBENCH.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    monkeypatch.setenv("PYTHONPATH", str(root))
    info = {"python": "3.x", "vbench_dir": str(root / "vbench"), "packages": {"vbench": "0.1.5", "detectron2": None}, "gpus": ["GPU 0"]}
    monkeypatch.setattr(vbench, "probe", lambda python: dict(info))
    monkeypatch.setenv("VBENCH_CACHE_DIR", str(tmp_path / "vbench-cache"))
    context = MetricContext(suite="s", data_dir=str(object_class_fixture))
    make = lambda **args: METRICS.get("vbench").from_args({"vbench_python": sys.executable, "dimensions": ["object_class"], **args}, context)  # noqa: E731
    with pytest.raises(ErasebenchError, match="object_class needs detectron2"):
        make()
    info["packages"]["detectron2"] = "0.6"
    with pytest.raises(ErasebenchError, match="vbench-cache/grit_model/grit_b_densecap_objectdet.pth"):
        make()
    grit = tmp_path / "vbench-cache" / "grit_model" / "grit_b_densecap_objectdet.pth"
    grit.parent.mkdir(parents=True)
    grit.write_bytes(b"grit weights")
    bridge = make(work_dir=str(tmp_path / "work"))
    settings = bridge.settings()
    assert settings["object_class"]["prompts"] == vbench.OBJECT_CLASS_SOURCE.origin()
    assert settings["object_class"]["files_sha256"] == {f.path: f.sha256 for f in vbench.OBJECT_CLASS_SOURCE.files}
    assert list(settings["weights_sha256"]) == ["grit_model/grit_b_densecap_objectdet.pth"]
    frames = np.random.default_rng(7).integers(0, 256, (3, 16, 64, 3), dtype=np.uint8)
    videos = [scored(frames, "a dog", "d0", 0), scored(frames, "a dog", "d1", 0), scored(frames, " an apple", "a0", 0)]
    rows = bridge.score(videos)
    assert rows == [
        {"object_class": 0.75, "object_class_success_frames": 12, "object_class_frames": 16, "frame_pairs": 2},
        {"object_class": 0.75, "object_class_success_frames": 12, "object_class_frames": 16, "frame_pairs": 2},
        {"object_class": 3 / 16, "object_class_success_frames": 3, "object_class_frames": 16, "frame_pairs": 2},
    ]
    assert bridge.aggregate(rows, [v.record for v in videos])["object_class"] == 27 / 48
    assert not list((tmp_path / "work").iterdir())  # the work folder is removed
    with pytest.raises(ErasebenchError, match="row 'x' prompt 'a cat' is not one of VBench's 2 object_class prompts"):
        bridge.score([scored(frames, "a cat", "x")])


@pytest.mark.skipif(not os.environ.get("ERASEBENCH_VBENCH_PYTHON"), reason="set ERASEBENCH_VBENCH_PYTHON to a vbench==0.1.5 env on a GPU machine")
def test_real_vbench_agrees_with_native_plugins():  # pragma: no cover - needs VBench's env and a GPU
    rng = np.random.default_rng(6)
    base = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    videos = [scored(np.stack([np.roll(base, 3 * i * (k + 1), axis=1) for i in range(8)]), f"prompt {k}", f"p{k}") for k in range(2)]
    bridge = metric("vbench", vbench_python=os.environ["ERASEBENCH_VBENCH_PYTHON"], dimensions=["temporal_flickering", "subject_consistency"])
    rows = bridge.score(videos)
    native_tf = metric("temporal_flickering").score(videos)
    native_sc = metric("subject_consistency").score(videos)  # DINO weights from VBench's cache
    for row, tf, sc in zip(rows, native_tf, native_sc):
        assert row["temporal_flickering"] == pytest.approx(tf["temporal_flickering"], abs=1e-9)
        assert row["subject_consistency"] == pytest.approx(sc["subject_consistency"], abs=1e-4)

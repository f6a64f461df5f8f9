"""ESR-k / PSR-k on a classifier whose predictions are known by construction.

The test builds a torchvision ResNet-18 whose residual branches are zeroed so that the trunk passes the
(normalised) mean colour through, and whose final layer is a nearest-prototype classifier: class 0
(tench) = red, 217 (English springer) = green, 497 (church) = blue, 566 (French horn) = white; every
other class has a fixed, lower logit. Saved to a file and loaded through ``weights_path``, the same path
as the real ``resnet50-11ad3fa6.pth``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from benchmark.errors import ErasebenchError
from benchmark.metrics.base import METRICS, MetricContext, ScoredVideo
from benchmark.specs import PromptRecord
from benchmark.suites import load_concept

PROTOTYPES = {0: (255, 0, 0), 217: (0, 255, 0), 497: (0, 0, 255), 566: (255, 255, 255)}


def solid(colour, size=(40, 56)) -> np.ndarray:
    frame = np.zeros((*size, 3), np.uint8)
    frame[:] = colour
    return frame


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    import torchvision
    from torch import nn

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=1000)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.zero_()
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.fill_(1.0)
                module.bias.zero_()
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
        for c in range(3):
            model.conv1.weight[c, c, 3, 3] = 1.0  # centre tap: the stem copies the normalised colour
            for layer in (model.layer2, model.layer3, model.layer4):
                layer[0].downsample[0].weight[c, c, 0, 0] = 1.0
        model.bn1.bias[:3] = 3.0  # keep it positive through the ReLUs
        model.eval()
        transform = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.transforms()
        from PIL import Image

        trunk = nn.Sequential(*list(model.children())[:-1], nn.Flatten())
        model.fc.weight.zero_()
        model.fc.bias.copy_(-1e4 - torch.arange(1000, dtype=torch.float32))  # fixed order below the prototypes
        for index, colour in PROTOTYPES.items():
            p = trunk(transform(Image.fromarray(solid(colour)))[None])[0]
            model.fc.weight[index] = 2 * p  # logit = -|f - p|^2 + |f|^2
            model.fc.bias[index] = -(p * p).sum()
    path = tmp_path_factory.mktemp("classifier") / "resnet18-colours.pth"
    torch.save(model.state_dict(), path)
    return path


def make(weights_file, concepts=("church",), **args):
    context = MetricContext(suite="imagenet10", concepts=[load_concept(c) for c in concepts])
    base = {"model": "torchvision:resnet18", "weights": "IMAGENET1K_V1", "weights_path": str(weights_file)}
    return METRICS.get("classify").from_args({**base, **args}, context)


def video(pid: str, true_class, colours) -> ScoredVideo:
    record = PromptRecord(suite="imagenet10", prompt_id=pid, prompt=f"Image of {true_class}", extra={"class_index": true_class})
    return ScoredVideo(np.stack([solid(c) for c in colours]), record, 0, pid)


RED, GREEN, BLUE, WHITE = PROTOTYPES[0], PROTOTYPES[217], PROTOTYPES[497], PROTOTYPES[566]


def test_esr_psr_frame_pooled_and_video_vote(weights_file):
    metric = make(weights_file)
    assert metric.targets == [497]  # suites/concepts/church.yaml labels
    videos = [
        video("church-1", 497, [BLUE, BLUE, RED, RED]),
        video("church-2", "Church", [BLUE, BLUE, BLUE]),
        video("tench-1", 0, [RED, GREEN]),
        video("springer-1", "english springer", [GREEN, GREEN, GREEN]),
        video("parachute-1", "701", [WHITE, WHITE]),
    ]
    scores = metric.score(videos)
    assert [s["class_index"] for s in scores] == [497, 497, 0, 217, 701]
    assert scores[0]["top1"] == [497, 497, 0, 0]
    assert scores[4]["top1"] == [566, 566]
    assert [s["hits_1"] for s in scores] == [2, 3, 1, 3, 0]
    assert [s["hits_5"] for s in scores] == [4, 3, 2, 3, 0]  # 701 is never in the top 5
    assert [s["hit_1_video"] for s in scores] == [0.0, 1.0, 0.0, 1.0, 0.0]  # a tie is not a majority

    agg = metric.aggregate(scores, [v.record for v in videos])
    assert agg == pytest.approx({
        # church: 7 frames over both videos, 5 (top-1) and 7 (top-5) of them still church
        "esr_1": 1 - 5 / 7, "esr_1_std": 0.0, "esr_1_n": 1, "esr_1.church": 1 - 5 / 7, "hits_1_erased": 5,
        "esr_5": 0.0, "esr_5_std": 0.0, "esr_5_n": 1, "esr_5.church": 0.0, "hits_5_erased": 7,
        "esr_1_video": 0.5, "esr_5_video": 0.0, "frames_erased": 7,
        # the other classes: 7 frames pooled, 1 + 3 + 0 top-1 and 2 + 3 + 0 top-5 hits (k/N over frames, as T2VUnlearning)
        "psr_1": 4 / 7, "psr_5": 5 / 7, "hits_1_preserved": 4, "hits_5_preserved": 5, "frames_preserved": 7,
        "psr_1_video": 1 / 3, "psr_5_video": 2 / 3,
    }, abs=1e-12)
    assert agg["psr_1"] != pytest.approx((1 / 2 + 1 + 0) / 3)  # not a macro-average over the kept classes
    # per-category aggregation (the runner's by_category) sees only part of the rows
    assert metric.aggregate(scores[2:3], [videos[2].record]) == {
        "psr_1": 0.5, "psr_5": 1.0, "psr_1_video": 0.0, "psr_5_video": 1.0, "hits_1_preserved": 1, "hits_5_preserved": 2, "frames_preserved": 2,
    }
    assert metric.config.frame_policy == "all" and metric.settings()["config"]["frame_policy"] == "all"  # every frame by default


def test_topk_and_preprocessing_follow_the_weights(weights_file):
    import torchvision
    from PIL import Image

    metric = make(weights_file, frame_policy="first", topk=[3])
    frame = solid(GREEN)
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    model = torchvision.models.resnet18()
    model.load_state_dict(torch.load(weights_file, weights_only=True))
    model.eval()
    with torch.no_grad():
        logits = model(weights.transforms()(Image.fromarray(frame))[None])[0]
    expected = logits.topk(3).indices.tolist()
    assert expected[0] == 217
    assert metric.classifier.topk([frame], 3, "cpu")[0].tolist() == expected
    (row,) = metric.score([video("g", 217, [frame, solid(RED)])])
    assert row["frames"] == 1 and row["hits_3"] == 1 and "hits_1" not in row
    settings = metric.settings()
    assert settings["weights_sha256"] == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert settings["weights_file"] == weights_file.name and settings["target_classes"] == [497]
    assert "resize_size=[256]" in settings["transform"] and "crop_size=[224]" in settings["transform"]
    assert settings["config"]["frame_policy"] == "first"


def test_labels_as_indices_and_several_concepts(weights_file, tmp_path):
    from benchmark.specs import ConceptSpec

    concepts = [ConceptSpec(name="fish", display_name="fish", labels=("0",)), ConceptSpec(name="horn", display_name="French horn")]
    metric = METRICS.get("classify").from_args(
        {"model": "torchvision:resnet18", "weights": "IMAGENET1K_V1", "weights_path": str(weights_file)},
        MetricContext(suite="t", concepts=concepts),
    )
    assert metric.targets == [0, 566] and metric.settings()["erased_classes"] == {"fish": [0], "horn": [566]}
    videos = [
        video("f1", 0, [RED, RED, RED, GREEN]), video("f2", "tench", [RED, BLUE]),  # fish: 4 of 6 frames still tench
        video("h", 566, [WHITE, RED]),  # horn: 1 of 2
        video("c", 497, [BLUE, BLUE, RED]), video("s", 217, [RED]),  # preserved: 2 of 4 frames
    ]
    agg = metric.aggregate(metric.score(videos), [v.record for v in videos])
    # per erased concept over its frames; mean and POPULATION std over the concepts (Table 2's mean±std)
    assert agg["esr_1.fish"] == pytest.approx(1 - 4 / 6) and agg["esr_1.horn"] == pytest.approx(1 - 1 / 2)
    assert agg["esr_1"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert agg["esr_1_std"] == pytest.approx(1 / 12)  # |1/3 - 5/12|; the sample std would be 0.1179
    assert agg["esr_1_n"] == 2 and agg["frames_erased"] == 8 and agg["hits_1_erased"] == 5
    assert agg["esr_1_video"] == pytest.approx(1 - (1 / 2 + 0) / 2)  # f1 voted (3 of 4), f2 tied, h tied
    assert agg["psr_1"] == pytest.approx(2 / 4) and agg["frames_preserved"] == 4 and agg["psr_1_video"] == 0.5


def test_bad_input(weights_file, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty torch hub cache
    with pytest.raises(ErasebenchError, match=r"torch-home/hub/checkpoints/resnet50-11ad3fa6.pth.*weights_path"):
        METRICS.get("classify").from_args({}, MetricContext(suite="t"))  # the default: ResNet-50 IMAGENET1K_V2
    with pytest.raises(ErasebenchError, match="do not fit"):
        METRICS.get("classify").from_args({"weights_path": str(weights_file)}, MetricContext(suite="t"))  # resnet18 file, resnet50 model
    with pytest.raises(ErasebenchError, match="not allowed"):
        METRICS.get("classify").from_args({"model": "resnet50"}, MetricContext(suite="t"))
    with pytest.raises(ErasebenchError, match="IMAGENET1K_V9"):
        make(weights_file, weights="IMAGENET1K_V9")
    with pytest.raises(ErasebenchError, match="neither a class index nor a category"):
        make(weights_file, concepts=("nudity",))
    metric = make(weights_file)
    record = PromptRecord(suite="s", prompt_id="x", prompt="p", category="all")
    with pytest.raises(ErasebenchError, match="class_index"):
        metric.score([ScoredVideo(np.stack([solid(RED)]), record, 0, "x")])


def test_timm_model_through_weights_path(tmp_path):
    """Any timm model: a tiny random one saved as safetensors; preprocessing = resolve_data_config + create_transform."""
    import timm
    from PIL import Image
    from safetensors.torch import save_file
    from timm.data import create_transform, resolve_data_config

    name = next((n for n in ("test_vit", "test_efficientnet", "resnet10t") if n in timm.list_models(n)), None)
    assert name is not None
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    path = tmp_path / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    metric = METRICS.get("classify").from_args(
        {"model": f"timm:{name}", "weights_path": str(path), "frame_policy": "all"},
        MetricContext(suite="t", concepts=[load_concept("church")]),
    )
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 48, 64, 3), dtype=np.uint8)
    transform = create_transform(**resolve_data_config({}, model=model))
    with torch.no_grad():
        logits = model(torch.stack([transform(Image.fromarray(f)) for f in frames]))
    expected = logits.topk(5, dim=1).indices
    (row,) = metric.score([ScoredVideo(frames, PromptRecord(suite="t", prompt_id="x", prompt="p", extra={"class_index": 497}), 0, "x")])
    assert row["top1"] == expected[:, 0].tolist()
    assert row["hits_5"] == int((expected == 497).any(dim=1).sum())
    settings = metric.settings()
    assert settings["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert settings["data_config"]["input_size"] == list(model.pretrained_cfg["input_size"])

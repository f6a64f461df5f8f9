"""ArcFace metric against tiny REAL ONNX face models that insightface itself loads and routes.

The test writes a buffalo_l-layout folder with two small ONNX graphs built with the ``onnx`` package:

- ``det_10g.onnx``: an SCRFD-shaped detector (input ``[1, 3, H, W]``, 9 outputs = scores, boxes and
  5-point landmarks for strides 8/16/32 with 2 anchors, as ``insightface.model_zoo.scrfd.SCRFD``
  decodes them). A "face" is a bright square of side 2*stride on a dark ring: per anchor,
  ``contrast = 4/3 (mean over the 2s window - mean over the 4s window)`` of a brightness map, score
  ``sigmoid(20 (contrast - 0.8))``; box = anchor +- stride; landmarks at ArcFace's template positions.
- ``w600k_r50.onnx``: an ArcFace-shaped recognizer (input ``[N, 3, 112, 112]``, one output): 4x4
  average pooling of the aligned crop and a fixed random projection to 16 dimensions.

insightface's ``ModelRouter`` classifies them by their inputs/outputs (>= 5 outputs: SCRFD; square
input >= 112 divisible by 16: ArcFaceONNX), exactly as it does the real buffalo_l files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cv2
import insightface  # noqa: F401  (the metric needs it; imported plainly so a broken install fails here)
import onnx

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from benchmark.errors import ErasebenchError  # noqa: E402
from benchmark.metrics.base import METRICS, MetricContext, ScoredVideo  # noqa: E402
from benchmark.specs import PromptRecord  # noqa: E402

# insightface 2.1's face_align calls scikit-image's deprecated SimilarityTransform.estimate
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

# ArcFace's 5-point template (insightface utils/face_align.py arcface_dst) in units of half the box
KPS_OFFSETS = ((np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]) / 56.0) - 1.0)
OPSET = [helper.make_opsetid("", 17)]


def build_detector(path: Path) -> None:
    nodes, inits = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))

    def node(op, inputs, output, **attrs):
        nodes.append(helper.make_node(op, inputs, [output], name=f"{op.lower()}_{len(nodes)}", **attrs))
        return output

    const("ten", 10.0)
    const("gain", 20.0 * 4.0 / 3.0)
    const("offset", 20.0 * 0.8)
    const("zero", 0.0)
    const("one", 1.0)
    const("kps", KPS_OFFSETS.reshape(1, 10))
    inits.append(numpy_helper.from_array(np.array([0, 0], np.int64), "starts"))
    inits.append(numpy_helper.from_array(np.array([-1, -1], np.int64), "ends"))
    inits.append(numpy_helper.from_array(np.array([2, 3], np.int64), "axes"))
    inits.append(numpy_helper.from_array(np.array([-1, 1], np.int64), "col"))
    gray = node("ReduceMean", ["input.1"], "gray", axes=[1], keepdims=1)
    bright = node("Sigmoid", [node("Mul", [gray, "ten"], "gray10")], "bright")
    scores, boxes, kpss = [], [], []
    for s in (8, 16, 32):
        p2 = node("AveragePool", [bright], f"p2_{s}", kernel_shape=[2 * s, 2 * s], strides=[s, s], pads=[s] * 4, count_include_pad=1)
        p4 = node("AveragePool", [bright], f"p4_{s}", kernel_shape=[4 * s, 4 * s], strides=[s, s], pads=[2 * s] * 4, count_include_pad=1)
        p2 = node("Slice", [p2, "starts", "ends", "axes"], f"p2c_{s}")
        p4 = node("Slice", [p4, "starts", "ends", "axes"], f"p4c_{s}")
        logit = node("Sub", [node("Mul", [node("Sub", [p2, p4], f"diff_{s}"), "gain"], f"scaled_{s}"), "offset"], f"logit_{s}")
        column = node("Reshape", [node("Sigmoid", [logit], f"prob_{s}"), "col"], f"column_{s}")
        score = node("Reshape", [node("Concat", [column, column], f"anchors_{s}", axis=1), "col"], f"score_{s}")
        ones = node("Add", [node("Mul", [score, "zero"], f"zeros_{s}"), "one"], f"ones_{s}")
        boxes.append(node("Concat", [ones, ones, ones, ones], f"bbox_{s}", axis=1))
        kpss.append(node("Mul", [ones, "kps"], f"kps_{s}"))
        scores.append(score)
    outputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, [f"n{s}", width])
        for names, width in ((scores, 1), (boxes, 4), (kpss, 10))
        for name, s in zip(names, (8, 16, 32))
    ]
    graph = helper.make_graph(
        nodes, "tiny_scrfd", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "height", "width"])], outputs, inits
    )
    model = helper.make_model(graph, opset_imports=OPSET)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def build_recognizer(path: Path) -> None:
    weight = np.random.default_rng(0).standard_normal((48, 16)).astype(np.float32)
    nodes = [
        helper.make_node("AveragePool", ["input.1"], ["pooled"], name="pool", kernel_shape=[28, 28], strides=[28, 28]),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten", axis=1),
        helper.make_node("MatMul", ["flat", "proj_w"], ["embedding"], name="proj"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 16])],
        [numpy_helper.from_array(weight, "proj_w")],
    )
    model = helper.make_model(graph, opset_imports=OPSET)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


# two "identities": bright squares with different colour layouts (RGB)
def paint_face(frame: np.ndarray, identity: str, x: int, y: int, size: int) -> None:
    half = size // 2
    if identity == "alice":
        frame[y : y + size, x : x + half] = (255, 255, 60)
        frame[y : y + size, x + half : x + size] = (60, 255, 255)
    else:
        frame[y : y + half, x : x + size] = (255, 60, 255)
        frame[y + half : y + size, x : x + size] = (255, 255, 255)


def two_faces(big: str, small: str) -> np.ndarray:
    """160x160 RGB frame: ``big`` as a 16 px face centred at (80, 80), ``small`` as an 8 px face at (28, 28).

    The detector sees the frame scaled by 4 (640 px): 64 px at stride 32 and 32 px at stride 16.
    """
    frame = np.zeros((160, 160, 3), np.uint8)
    paint_face(frame, big, 72, 72, 16)
    paint_face(frame, small, 24, 24, 8)
    return frame


def one_face(identity: str) -> np.ndarray:
    frame = np.zeros((160, 160, 3), np.uint8)
    paint_face(frame, identity, 72, 72, 16)
    return frame


@pytest.fixture(scope="module")
def face_models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("buffalo_l")
    build_detector(folder / "det_10g.onnx")
    build_recognizer(folder / "w600k_r50.onnx")
    return folder


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> Path:
    """reference_dir/<identity>/*.png: photos of each identity alone (BGR on disk, as cv2 writes)."""
    root = tmp_path_factory.mktemp("refs")
    for folder, identity in (("Alice Example", "alice"), ("bob_example", "bob")):
        (root / folder).mkdir()
        for k in range(3):
            cv2.imwrite(str(root / folder / f"{k}.png"), one_face(identity)[..., ::-1])
    return root


def make_metric(face_models: Path, references: Path, **args):
    return METRICS.get("arcface").from_args(
        {"model_dir": str(face_models), "reference_dir": str(references), **args}, MetricContext(suite="faces")
    )


def video(frames: list[np.ndarray], identity: str | None, pid: str = "p0") -> ScoredVideo:
    extra = {} if identity is None else {"identity": identity}
    record = PromptRecord(suite="faces", prompt_id=pid, prompt="a person walking", extra=extra)
    return ScoredVideo(np.stack(frames), record, 0, f"{pid}/00.mp4")


def test_insightface_routes_the_tiny_models(face_models):
    from insightface.app import FaceAnalysis
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX
    from insightface.model_zoo.scrfd import SCRFD

    app = FaceAnalysis(name=str(face_models), allowed_modules=["detection", "recognition"], providers=["CPUExecutionProvider"])
    assert isinstance(app.models["detection"], SCRFD) and app.models["detection"].use_kps
    assert isinstance(app.models["recognition"], ArcFaceONNX)
    app.prepare(ctx_id=-1, det_thresh=0.5, det_size=(640, 640))
    faces = app.get(two_faces("alice", "bob")[..., ::-1].copy())
    boxes = sorted((tuple(np.round(f.bbox).astype(int)) for f in faces), key=lambda b: b[2] - b[0])
    assert boxes == [(24, 24, 32, 32), (72, 72, 88, 88)]  # both faces, at their pixel boxes
    assert all(f.normed_embedding.shape == (16,) for f in faces)


def test_largest_face_is_scored_and_identical_frames_give_one(face_models, references):
    from benchmark.metrics.arcface import largest_face

    metric = make_metric(face_models, references)
    # Alice large but 1 px off the anchor grid: detected with a LOWER score than the small Bob face
    shifted = np.zeros((160, 160, 3), np.uint8)
    paint_face(shifted, "alice", 73, 73, 16)
    paint_face(shifted, "bob", 24, 24, 8)
    bboxes, _ = metric.app.det_model.detect(shifted[..., ::-1].copy(), max_num=0)
    assert len(bboxes) == 2 and bboxes[0, 2] - bboxes[0, 0] < bboxes[1, 2] - bboxes[1, 0]  # best score = small face
    assert np.round(largest_face(metric.app.det_model, shifted[..., ::-1].copy()).bbox).tolist() == [72, 72, 88, 88]
    frame = two_faces("alice", "bob")
    rows = metric.score([
        video([frame, frame], "Alice Example", "a"),                   # Alice large, Bob small -> Alice scored
        video([two_faces("bob", "alice")] * 2, "Alice Example", "b"),  # Bob large -> Bob scored
        video([one_face("alice")] * 2, "Alice Example", "c"),         # the reference photo itself
        video([frame], "Bob Example", "d"),                            # folder found by its slug bob_example
        video([shifted], "Alice Example", "e"),
        video([shifted], "Bob Example", "f"),
    ])
    assert rows[2]["id_similarity"] == pytest.approx(1.0, abs=1e-6)
    assert rows[2]["face_detected_rate"] == 1.0 and rows[2]["sim_ge_0.4"] == 1.0
    assert rows[0]["id_similarity"] == pytest.approx(1.0, abs=1e-6)
    assert rows[1]["id_similarity"] < 0.9
    assert rows[3]["id_similarity"] == pytest.approx(rows[1]["id_similarity"], abs=1e-6)  # cos(alice, bob) both ways
    assert rows[4]["id_similarity"] > 0.9 > rows[5]["id_similarity"]
    assert rows[0]["identity"] == "Alice Example" and rows[0]["frames"] == 2


def test_face_detected_rate_and_missing_faces(face_models, references):
    metric = make_metric(face_models, references, thresholds=(0.3, 0.99))
    black = np.zeros((160, 160, 3), np.uint8)
    white = np.full((160, 160, 3), 255, np.uint8)
    rows = metric.score([
        video([one_face("alice"), black, one_face("alice"), white], "Alice Example", "mixed"),
        video([black, black], "Alice Example", "none"),
    ])
    assert rows[0]["face_detected_rate"] == 0.5
    assert rows[0]["id_similarity"] == pytest.approx(1.0, abs=1e-6)
    assert rows[0]["sim_ge_0.99"] == 0.5  # over all sampled frames: frames without a face never match
    assert rows[0]["frame_similarities"][1] is None and rows[0]["frame_similarities"][3] is None
    assert rows[0]["frame_similarities"][0] == pytest.approx(1.0, abs=1e-6)
    assert rows[1] == {
        "identity": "Alice Example", "id_similarity": None, "face_detected_rate": 0.0, "frames": 2, "frame_similarities": [None, None],
        "sim_ge_0.3": 0.0, "sim_ge_0.99": 0.0,
    }
    records = [PromptRecord(suite="faces", prompt_id=p, prompt="x") for p in ("mixed", "none")]
    agg = metric.aggregate(rows, records)
    assert agg["id_similarity_pooled"] == pytest.approx(1.0, abs=1e-6)  # mean over videos with a face
    assert agg["id_similarity_pooled_n"] == 1 and agg["id_similarity_preserved_n"] == 1  # no concept erased in this run
    assert "id_similarity_erased" not in agg
    assert agg["face_detected_rate"] == 0.25 and agg["no_face_video_rate"] == 0.5 and agg["sim_ge_0.99"] == 0.25


def test_erased_and_preserved_identities(face_models, references):
    """Table 3 of T2VUnlearning: erased vs preserved identities, mean and population std over videos (by hand)."""
    import math

    from benchmark.specs import ConceptSpec

    concepts = [ConceptSpec(name="alice_example", display_name="Alice Example"), ConceptSpec(name="dave", display_name="Dave")]
    metric = METRICS.get("arcface").from_args(
        {"model_dir": str(face_models), "reference_dir": str(references)}, MetricContext(suite="faces", concepts=concepts)
    )
    cases = [  # (identity, target_concept, video id_similarity)
        ("Alice Example", None, 0.2), ("Alice Example", None, 0.4), ("Alice Example", None, None),  # erased by identity
        ("dave_x", "dave", 0.1),  # erased by the record's target concept
        ("bob_example", "bob_example", 0.5), ("bob_example", None, 0.7), ("carol", None, 0.9),  # preserved
    ]
    scores = [
        {"identity": i, "id_similarity": v, "face_detected_rate": 0.0 if v is None else 1.0, "frames": 1, "sim_ge_0.3": 0.0, "sim_ge_0.4": 0.0}
        for i, _, v in cases
    ]
    records = [PromptRecord(suite="faces", prompt_id=f"p{k}", prompt="x", target_concept=t) for k, (_, t, _) in enumerate(cases)]
    agg = metric.aggregate(scores, records)
    expected = {
        "id_similarity_erased": 0.7 / 3, "id_similarity_erased_std": math.sqrt(0.14 / 9), "id_similarity_erased_n": 3,
        "id_similarity_preserved": 0.7, "id_similarity_preserved_std": math.sqrt(0.08 / 3), "id_similarity_preserved_n": 3,
        "id_similarity_erased.alice_example": 0.3, "id_similarity_erased.alice_example_std": 0.1, "id_similarity_erased.alice_example_n": 2,
        "id_similarity_erased.dave": 0.1, "id_similarity_erased.dave_std": 0.0, "id_similarity_erased.dave_n": 1,
        "id_similarity_pooled": 2.8 / 6, "id_similarity_pooled_std": math.sqrt(0.68 / 9), "id_similarity_pooled_n": 6,
        "face_detected_rate": 6 / 7, "no_face_video_rate": 1 / 7, "sim_ge_0.3": 0.0, "sim_ge_0.4": 0.0,
    }
    assert agg == pytest.approx(expected, abs=1e-12)
    assert all(type(agg[k]) is int for k in expected if k.endswith("_n"))
    # one category (identity) at a time, as the runner's by_category does
    assert metric.aggregate(scores[4:6], records[4:6]) == pytest.approx({
        "id_similarity_preserved": 0.6, "id_similarity_preserved_std": 0.1, "id_similarity_preserved_n": 2,
        "id_similarity_pooled": 0.6, "id_similarity_pooled_std": 0.1, "id_similarity_pooled_n": 2,
        "face_detected_rate": 1.0, "no_face_video_rate": 0.0, "sim_ge_0.3": 0.0, "sim_ge_0.4": 0.0,
    })
    assert metric.settings()["erased"] == ["alice_example", "dave"]
    assert metric.higher_is_better["id_similarity_erased"] is False and metric.higher_is_better["id_similarity_preserved"] is True


def test_settings_pin_models_and_references(face_models, references):
    import hashlib

    settings = make_metric(face_models, references).settings()
    det = hashlib.sha256((face_models / "det_10g.onnx").read_bytes()).hexdigest()
    assert settings["model_sha256"]["det_10g.onnx"] == det
    assert set(settings["references_sha256"]) == {"Alice Example", "bob_example"}
    assert len(settings["references_sha256"]["bob_example"]) == 3
    assert settings["config"]["det_size"] == [640, 640] and settings["config"]["det_thresh"] == 0.5
    assert settings["config"]["nms_thresh"] == 0.4 and settings["config"]["frame_policy"] == "all"
    assert "model_dir" not in settings["config"]  # paths are pinned by the hashes, not by where they live
    assert {"insightface", "onnxruntime", "opencv"} <= set(settings["packages"])


def test_bad_inputs_are_one_line_errors(face_models, references, tmp_path):
    with pytest.raises(ErasebenchError, match="det_10g.onnx and w600k_r50.onnx"):
        METRICS.get("arcface").from_args({"reference_dir": str(references)}, MetricContext(suite="faces"))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "det_10g.onnx").write_bytes((face_models / "det_10g.onnx").read_bytes())
    with pytest.raises(ErasebenchError, match=r"lacks w600k_r50.onnx \(expected insightface's buffalo_l layout"):
        make_metric(tmp_path / "models", references)
    metric = make_metric(face_models, references)
    with pytest.raises(ErasebenchError, match="no reference folder for identity 'Carol'.*found: Alice Example, bob_example"):
        metric.score([video([one_face("alice")], "Carol")])
    with pytest.raises(ErasebenchError, match="has no extra 'identity'"):
        metric.score([video([one_face("alice")], None)])
    faceless = tmp_path / "refs" / "Dan"
    faceless.mkdir(parents=True)
    cv2.imwrite(str(faceless / "0.jpg"), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ErasebenchError, match="no face detected in reference photo"):
        make_metric(face_models, tmp_path / "refs").score([video([one_face("alice")], "Dan")])

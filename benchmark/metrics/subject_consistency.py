"""Subject consistency, VBench's formula natively (arXiv 2311.17982; vbench==0.1.5 ``vbench/subject_consistency.py``).

For users without VBench's own environment (the ``vbench`` bridge runs that). Features: DINO ViT-B/16
(facebookresearch/dino ``dino_vitb16``), here the same weights in a timm ``vit_base_patch16_224``.
Preprocessing as VBench's ``dino_transform(224)`` on the decoded frames: float pixels, resize the
short side to 224 (bilinear, antialias off), divide by 255, ImageNet mean/std. Forward as DINO's
``VisionTransformer.forward``: patch tokens + [CLS], position embeddings resized for non-square
input with DINO's ``interpolate_pos_encoding`` (bicubic, ``scale_factor = (n + 0.1) / sqrt(N)``),
blocks, final norm, [CLS] output. With ``f_i`` the L2-normalised feature of frame i:

    s_i   = (max(0, cos(f_i, f_{i-1})) + max(0, cos(f_i, f_0))) / 2        for i = 1 .. F-1
    video = sum_i s_i / (F - 1)
    overall = sum_videos sum_i s_i / sum_videos (F - 1)                   (frame-pair weighted)

Weights (no downloads): ``weights=PATH`` (DINO's ``dino_vitbase16_pretrain.pth`` or timm's
``model.safetensors``), else the first that exists of VBench's cache file
(``$VBENCH_CACHE_DIR`` or ``~/.cache/vbench``, ``dino_model/dino_vitbase16_pretrain.pth``), the torch
hub cache (``checkpoints/dino_vitbase16_pretrain.pth``) and the Hugging Face cache
(``timm/vit_base_patch16_224.dino``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from ..errors import ErasebenchError
from ..specs import PromptRecord
from ..store import file_sha256
from .base import Key, FramePolicy, Metric, MetricConfig, ScoredVideo

DINO_FILE = "dino_vitbase16_pretrain.pth"
HF_REPO = "timm/vit_base_patch16_224.dino"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SubjectConsistencyConfig(MetricConfig):
    weights: str | None = None
    model: str = "vit_base_patch16_224"
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    resize: int = Field(default=224, ge=16)
    frame_policy: FramePolicy = "all"
    batch_frames: int = Field(default=16, ge=1)


def vbench_cache_dir() -> Path:
    """VBench's cache folder: ``$VBENCH_CACHE_DIR`` or ``~/.cache/vbench`` (vbench/utils.py CACHE_DIR)."""
    return Path(os.environ.get("VBENCH_CACHE_DIR") or Path.home() / ".cache" / "vbench")


def default_weight_candidates() -> list[Path]:
    """Where DINO ViT-B/16 weights may already be, in the order they are tried."""
    candidates = [vbench_cache_dir() / "dino_model" / DINO_FILE]
    try:
        import torch

        candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / DINO_FILE)
    except Exception:
        pass
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(HF_REPO, "model.safetensors")
        if isinstance(cached, str):
            candidates.append(Path(cached))
    except Exception:
        pass
    return candidates


def resolve_weights(weights: str | None) -> Path:
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ErasebenchError(
                f"subject_consistency weights {weights!r} do not exist; pass a DINO ViT-B/16 file "
                f"({DINO_FILE} or timm's model.safetensors) with --metric-arg subject_consistency.weights=PATH"
            )
        return path
    candidates = default_weight_candidates()
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise ErasebenchError(
        f"subject_consistency: no DINO ViT-B/16 weights found (tried {tried}); download {DINO_FILE} and pass it "
        "with --metric-arg subject_consistency.weights=PATH"
    )


def read_state_dict(path: Path) -> dict[str, Any]:
    """A state dict from a DINO release file, a DINO training checkpoint or a safetensors file."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    for wrapper in ("teacher", "model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "backbone."):
            key = key.removeprefix(prefix)
        if not key.startswith("head."):
            out[key] = value
    return out


def load_vit(config: SubjectConsistencyConfig, path: Path, device: str):
    """A timm ViT with the weights of ``path`` (strict), in eval mode on ``device``."""
    try:
        import timm
    except ImportError:
        raise ErasebenchError("metric 'subject_consistency' needs timm (pip install timm)") from None
    try:
        model = timm.create_model(config.model, pretrained=False, num_classes=0, **config.model_kwargs)
    except Exception as exc:
        raise ErasebenchError(f"subject_consistency model {config.model!r} cannot be built by timm ({exc})") from None
    for attribute in ("patch_embed", "cls_token", "pos_embed", "blocks", "norm"):
        if getattr(model, attribute, None) is None:
            raise ErasebenchError(f"subject_consistency model {config.model!r} is not a ViT with a [CLS] token and position embeddings")
    if getattr(model, "num_prefix_tokens", 1) != 1 or getattr(model, "no_embed_class", False):
        raise ErasebenchError(f"subject_consistency model {config.model!r} must have exactly one prefix token ([CLS]) with its own position")
    try:
        model.load_state_dict(read_state_dict(path), strict=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ErasebenchError(f"subject_consistency weights {str(path)!r} do not fit timm model {config.model!r}: {first}") from None
    return model.eval().to(device)


def dino_pos_embed(pos_embed, height: int, width: int, patch: int):
    """DINO's ``interpolate_pos_encoding`` for a ``height x width`` input (facebookresearch/dino vision_transformer.py)."""
    import torch
    import torch.nn.functional as F

    n = pos_embed.shape[1] - 1
    rows, cols = height // patch, width // patch
    if rows * cols == n and height == width:
        return pos_embed
    dim = pos_embed.shape[-1]
    side = int(math.sqrt(n))
    grid = pos_embed[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=((rows + 0.1) / math.sqrt(n), (cols + 0.1) / math.sqrt(n)), mode="bicubic")
    if grid.shape[-2:] != (rows, cols):
        raise ValueError(f"position grid {tuple(grid.shape[-2:])} != {(rows, cols)}")
    return torch.cat([pos_embed[:, :1], grid.permute(0, 2, 3, 1).reshape(1, -1, dim)], dim=1)


def dino_features(model, x):
    """[CLS] features of normalised images ``x`` (B, 3, H, W) through a timm ViT, computed as DINO's forward."""
    import torch

    batch, _, height, width = x.shape
    patch = model.patch_embed.patch_size[0]
    tokens = model.patch_embed.proj(x).flatten(2).transpose(1, 2)
    tokens = torch.cat([model.cls_token.expand(batch, -1, -1), tokens], dim=1)
    tokens = tokens + dino_pos_embed(model.pos_embed, height, width, patch)
    tokens = model.norm_pre(model.pos_drop(tokens))
    tokens = model.norm(model.blocks(tokens))
    return tokens[:, 0]


def preprocess(frames: np.ndarray, size: int):
    """VBench's ``load_video`` + ``dino_transform(size)``: float pixels, short side -> size (bilinear, no antialias), /255, normalise."""
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = TF.resize(x, size, interpolation=InterpolationMode.BILINEAR, antialias=False)
    return TF.normalize(x.div(255.0), IMAGENET_MEAN, IMAGENET_STD)


def consistency_sum(features) -> float:
    """``sum_{i>=1} (max(0, cos(f_i, f_{i-1})) + max(0, cos(f_i, f_0))) / 2`` over L2-normalised features (F, D)."""
    import torch.nn.functional as F

    feats = F.normalize(features.float(), dim=-1, p=2)
    prev = F.cosine_similarity(feats[:-1], feats[1:], dim=-1).tolist()
    first = F.cosine_similarity(feats[:1].expand(len(feats) - 1, -1), feats[1:], dim=-1).tolist()
    total = 0.0
    for sim_prev, sim_first in zip(prev, first):
        total += (max(0.0, sim_prev) + max(0.0, sim_first)) / 2
    return total


class SubjectConsistency(Metric):
    """Subject consistency (VBench formula, native): DINO [CLS] cosine to the first and previous frame."""

    name = "subject_consistency"
    version = "1"
    source = "VBench (arXiv 2311.17982), vbench==0.1.5 vbench/subject_consistency.py; DINO (arXiv 2104.14294) dino_vitb16"
    Config = SubjectConsistencyConfig
    higher_is_better = {"subject_consistency": True}
    score_keys = {
        "subject_consistency": "mean DINO feature similarity of each frame to the first and the previous frame",
        "frame_pairs": "number of frame pairs the video's score averages",
        "error": "why the video has no score",
    }
    aggregate_keys = {"subject_consistency": Key("mean over frame pairs of all videos (VBench's pooling)", True)}
    batch_size = 8

    def __init__(self, config: SubjectConsistencyConfig, context):
        super().__init__(config, context)
        self.weights_path = resolve_weights(config.weights)
        self._model = None
        self._settings: dict[str, Any] | None = None

    def settings(self) -> dict[str, Any]:
        if self._settings is None:
            from importlib.metadata import PackageNotFoundError, version

            def package(name: str) -> str | None:
                try:
                    return version(name)
                except PackageNotFoundError:
                    return None

            self._settings = {
                **super().settings(),
                # the weights path (its sha256 pins the file) and the frame batch size are left out
                "config": self.config.model_dump(mode="json", exclude={"weights", "batch_frames"}),
                "weights_sha256": file_sha256(self.weights_path),
                "preprocessing": f"float pixels, resize short side {self.config.resize} (bilinear, antialias off), /255, ImageNet mean/std",
                "forward": "DINO VisionTransformer.forward ([CLS] after final norm, interpolate_pos_encoding)",
                "aggregate": "sum of s_i over videos / sum of (F - 1)",
                "packages": {name: package(name) for name in ("timm", "torch", "torchvision")},
            }
        return self._settings

    @property
    def model(self):
        if self._model is None:
            self._model = load_vit(self.config, self.weights_path, self.context.device)
        return self._model

    def features(self, frames: np.ndarray):
        import torch

        chunks = []
        with torch.inference_mode():
            for start in range(0, len(frames), self.config.batch_frames):
                x = preprocess(frames[start : start + self.config.batch_frames], self.config.resize)
                chunks.append(dino_features(self.model, x.to(self.context.device)).float().cpu())
        return torch.cat(chunks)

    def score(self, videos: list[ScoredVideo]) -> list[dict[str, Any]]:
        from ..video import sample_indices

        out = []
        for video in videos:
            frames = video.frames[sample_indices(len(video.frames), self.config.frame_policy)]
            if len(frames) < 2:
                out.append({"subject_consistency": None, "frame_pairs": 0, "error": "fewer than 2 frames"})
                continue
            total = consistency_sum(self.features(frames))
            out.append({"subject_consistency": total / (len(frames) - 1), "frame_pairs": len(frames) - 1})
        return out

    def aggregate(self, scores: list[dict[str, Any]], records: list[PromptRecord]) -> dict[str, float]:
        rows = [s for s in scores if s.get("subject_consistency") is not None and s.get("frame_pairs")]
        if not rows:
            return {}
        pairs = sum(int(s["frame_pairs"]) for s in rows)
        return {"subject_consistency": sum(float(s["subject_consistency"]) * int(s["frame_pairs"]) for s in rows) / pairs}

"""T2VUnlearning math: residual adapters, attention-derived concept masks, losses, checkpoint layout.

Sources (docs/erasers/t2vunlearning.md): arXiv 2505.17550; TobisawaMisakii/T2VUnlearning@17caba9 (a
verbatim copy of the official VDIGPKU release: adapter format, eraser checkpoint layout, mask function);
Receler, jasper0314-huang/Receler@3ccedc9 ``receler/concept_reg.py`` and @00ba63e
``receler/erasers/diffusers_erasers.py`` (localization loss, per-block erasers). Written from the spec.

* Adapter: ``A(h) = W_up GELU(W_down h + b_down) + b_up`` with ``W_up = b_up = 0`` at init, applied as
  ``h <- h + A(h)`` to the video tokens of an attention output, in fp32 whatever the backbone dtype (parity flag
  ``adapter_in_model_dtype``: in the backbone's dtype, as the release's inference code casts it).
* Concept score of a video query ``i``: ``a_i = sum_{j in concept tokens} mean_heads softmax_j(q_i k^T / sqrt(d_h))``,
  the softmax over every key of the attention (joint ``[text; video]`` or cross), computed in chunks of query
  rows (exact: each chunk holds full rows), so memory grows with ``rows_per_chunk * L``, never ``L^2``.
* Mask: per frame ``M~ = (a - min) / (max - min + 1e-6)``, ``M = 1[M~ >= tau]``.
* ``L_loc = mean_l [ sum_tokens mean_d(E_l^2 (1 - M_l)) / (sum (1 - M_l) + 1e-9) ]``.
* ``v_neg = v(x_t, empty) - eta (v(x_t, c) - v(x_t, empty))``.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn

from benchmark.errors import ErasebenchError
from benchmark.hooks import HookSet

ADAPTER_SUFFIX = ".adapter"
ADAPTER_KEYS = ("down.weight", "down.bias", "up.weight", "up.bias")


class Adapter(nn.Module):
    """``A(h) = W_up GELU(W_down h + b_down) + b_up``; ``W_down`` PyTorch default init, ``W_up = b_up = 0``."""

    def __init__(self, width: int, rank: int):
        super().__init__()
        self.down = nn.Linear(width, rank)
        self.act = nn.GELU()  # exact (erf) GELU
        self.up = nn.Linear(rank, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.down(h)))


def site_width(module: nn.Module) -> int:
    """Width of the tensor an attention module returns for its video tokens (after ``to_out``, or pre-only)."""
    to_out = getattr(module, "to_out", None)
    if isinstance(to_out, (nn.ModuleList, nn.Sequential)) and len(to_out) and isinstance(to_out[0], nn.Linear):
        return int(to_out[0].out_features)
    if isinstance(to_out, nn.Linear):
        return int(to_out.out_features)
    to_q = getattr(module, "to_q", None)
    if isinstance(to_q, nn.Linear):  # pre-only attention (no output projection): width of the heads
        return int(to_q.out_features)
    raise ErasebenchError(f"cannot tell the output width of attention module {type(module).__name__}: no to_out or to_q linear")


def adapter_param_count(widths: list[int], rank: int) -> int:
    """``sum over sites of 2 d r + r + d``."""
    return sum(2 * d * rank + rank + d for d in widths)


def build_adapters(widths: dict[str, int], rank: int, seed: int, device: Any = "cpu") -> dict[str, Adapter]:
    """One fp32 adapter per site, the down projections drawn from ``torch.manual_seed(seed)`` (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        adapters = {name: Adapter(width, rank) for name, width in widths.items()}
    return {name: a.to(device=device, dtype=torch.float32) for name, a in adapters.items()}


def video_part(output: Any) -> torch.Tensor:
    """The video tokens of an attention output: ``(video, text)`` tuples give their first item, tensors are all video."""
    if isinstance(output, tuple):
        return output[0]
    if isinstance(output, torch.Tensor):
        return output
    raise ErasebenchError(f"attention output of type {type(output).__name__} is neither a tensor nor a (video, text) tuple")


def replace_video_part(output: Any, video: torch.Tensor) -> Any:
    if isinstance(output, tuple):
        return (video,) + tuple(output[1:])
    return video


class AdapterSet:
    """Adapters attached by forward hooks after their attention sites, with one global switch.

    ``enabled`` turns every adapter off at once (the frozen teacher is the same network); it never
    touches training mode. With ``record`` set to a dict, each hook stores its adapter output ``E_l``
    (video tokens, with gradient) under the site name. Nothing is registered in the denoiser (the hooks
    live in one ``HookSet``), so ``detach()`` leaves its modules and state dict exactly as they were.
    ``native=True`` (parity flag ``adapter_in_model_dtype``) computes ``h + A(h)`` in the adapters' own dtype
    (cast to the model's by the caller) instead of fp32.
    """

    def __init__(self, sites: list[tuple[str, nn.Module]], adapters: dict[str, Adapter], native: bool = False):
        missing = [name for name, _ in sites if name not in adapters]
        if missing:
            raise ErasebenchError(f"no adapter for site {missing[0]!r} ({len(missing)} sites without adapters)")
        self.sites = sites
        self.adapters = adapters
        self.native = native
        self.enabled = True
        self.record: dict[str, torch.Tensor] | None = None
        self._hooks = HookSet()

    def parameters(self) -> list[nn.Parameter]:
        return [p for name, _ in self.sites for p in self.adapters[name].parameters()]

    def attach(self) -> "AdapterSet":
        if not len(self._hooks):
            for name, module in self.sites:
                self._hooks.post(f"adapter:{name}", module, self._hook(name))
        return self

    def detach(self) -> None:
        self._hooks.clear()

    @contextmanager
    def switched(self, enabled: bool) -> Iterator[None]:
        previous = self.enabled
        self.enabled = enabled
        try:
            yield
        finally:
            self.enabled = previous

    def _hook(self, name: str):
        adapter = self.adapters[name]

        def hook(module: nn.Module, args: Any, output: Any) -> Any:
            if not self.enabled:
                return None
            video = video_part(output)
            if self.native:  # the release: h + A(h) in the model's dtype
                delta = adapter(video)
                out = video + delta
            else:
                x = video.float()
                with torch.autocast(device_type=video.device.type, enabled=False):
                    delta = adapter(x)
                out = (x + delta).to(video.dtype)
            if self.record is not None:
                self.record[name] = delta
            return replace_video_part(output, out)

        return hook

    def state(self) -> dict[str, dict[str, torch.Tensor]]:
        """The released layout: ``{site + '.adapter': {down.weight, down.bias, up.weight, up.bias}}`` on CPU."""
        return {
            f"{name}{ADAPTER_SUFFIX}": {k: v.detach().to("cpu", torch.float32).clone() for k, v in self.adapters[name].state_dict().items()}
            for name, _ in self.sites
        }


# ---- checkpoint layout ---------------------------------------------------------------------------


def flatten_state(nested: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """``{module: {key: t}}`` -> ``{module.key: t}`` (safetensors keys)."""
    return {f"{module}.{key}": tensor.contiguous() for module, inner in nested.items() for key, tensor in inner.items()}


def unflatten_state(flat: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Inverse of ``flatten_state``: split each key after its ``.adapter`` module name."""
    nested: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in flat.items():
        head, sep, tail = key.rpartition(ADAPTER_SUFFIX + ".")
        if not sep or not head:
            raise ErasebenchError(f"checkpoint key {key!r} is not of the form '<site>.adapter.<down|up>.<weight|bias>'")
        nested.setdefault(head + ADAPTER_SUFFIX, {})[tail] = tensor
    return nested


def check_state(
    nested: dict[str, dict[str, torch.Tensor]], widths: dict[str, int], source: str
) -> int:
    """Validate a released-layout state against the sites; returns the adapter rank."""
    expected = {f"{name}{ADAPTER_SUFFIX}" for name in widths}
    got = set(nested)
    if got != expected:
        missing = sorted(expected - got)
        unexpected = sorted(got - expected)
        detail = []
        if missing:
            detail.append(f"missing {len(missing)} (first {missing[0]!r})")
        if unexpected:
            detail.append(f"unexpected {len(unexpected)} (first {unexpected[0]!r})")
        raise ErasebenchError(f"adapter checkpoint {source!r} does not match the model's adapter sites: {', '.join(detail)}")
    ranks = set()
    for name, width in widths.items():
        inner = nested[f"{name}{ADAPTER_SUFFIX}"]
        if set(inner) != set(ADAPTER_KEYS):
            raise ErasebenchError(
                f"adapter checkpoint {source!r}: module {name + ADAPTER_SUFFIX!r} has keys {sorted(inner)}; expected {list(ADAPTER_KEYS)}"
            )
        rank = int(inner["down.weight"].shape[0])
        shapes = {"down.weight": (rank, width), "down.bias": (rank,), "up.weight": (width, rank), "up.bias": (width,)}
        for key, shape in shapes.items():
            if tuple(inner[key].shape) != shape:
                raise ErasebenchError(
                    f"adapter checkpoint {source!r}: {name + ADAPTER_SUFFIX}.{key} has shape {tuple(inner[key].shape)}; "
                    f"the model needs {shape}"
                )
        ranks.add(rank)
    if len(ranks) != 1:
        raise ErasebenchError(f"adapter checkpoint {source!r} mixes adapter ranks {sorted(ranks)}")
    return ranks.pop()


def adapters_from_state(nested: dict[str, dict[str, torch.Tensor]], widths: dict[str, int], rank: int, device: Any) -> dict[str, Adapter]:
    adapters = {}
    for name, width in widths.items():
        adapter = Adapter(width, rank)
        adapter.load_state_dict({k: v.to(torch.float32) for k, v in nested[f"{name}{ADAPTER_SUFFIX}"].items()})
        adapters[name] = adapter.to(device=device, dtype=torch.float32)
    return adapters


# ---- losses --------------------------------------------------------------------------------------


def negative_velocity(v_uncond: torch.Tensor, v_cond: torch.Tensor, eta: float) -> torch.Tensor:
    """``v_neg = v(x_t, empty, t) - eta (v(x_t, c, t) - v(x_t, empty, t))`` (ESD/Receler form)."""
    return v_uncond - eta * (v_cond - v_uncond)


def localization_loss(deltas: list[torch.Tensor], masks: list[torch.Tensor]) -> torch.Tensor:
    """``mean_l [ sum_tokens mean_d(E_l^2 (1 - M_l)) / (sum (1 - M_l) + 1e-9) ]``; ``E_l (..., n, d)``, ``M_l (..., n)``."""
    if not deltas:
        raise ErasebenchError("localization loss needs at least one adapter output")
    terms = []
    for delta, mask in zip(deltas, masks):
        outside = 1.0 - mask.to(delta.dtype)
        terms.append((delta.pow(2).mean(-1) * outside).sum() / (outside.sum() + 1e-9))
    return torch.stack(terms).mean()


# ---- concept masks -------------------------------------------------------------------------------


def _apply_masks(
    scores: torch.Tensor, rows: slice, attn_mask: torch.Tensor | None, key_valid: torch.Tensor | None
) -> torch.Tensor:
    if attn_mask is not None:
        mask = attn_mask
        if mask.dim() >= 2 and mask.shape[-2] != 1:
            mask = mask[..., rows, :]
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask.to(scores.dtype)
    if key_valid is not None:
        scores = scores.masked_fill(~key_valid, float("-inf"))
    return scores


def concept_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    rows: tuple[int, int],
    concept_cols: list[int] | torch.Tensor,
    *,
    key_valid: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    scale: float | None = None,
    chunk: int = 1024,
) -> torch.Tensor:
    """Concept score per query row in ``rows``: ``sum_cols mean_heads softmax(q k^T * scale)``, chunked over rows.

    ``q (B, H, Lq, d)``, ``k (B, H, Lk, d)``; ``key_valid`` (bool, broadcastable to ``(B, 1, 1, Lk)``) removes keys
    from the softmax; ``attn_mask`` is the attention's own mask (bool or additive). Each chunk computes full rows,
    so the result equals the dense computation; memory is ``O(B H chunk Lk)``. Returns ``(B, rows)`` in fp32.
    """
    if chunk < 1:
        raise ErasebenchError(f"mask chunk {chunk} is not allowed: use a positive number of query rows")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    cols = torch.as_tensor(concept_cols, dtype=torch.long, device=q.device)
    kt = k.float().transpose(-1, -2)
    start, end = rows
    out = []
    for s in range(start, end, chunk):
        e = min(s + chunk, end)
        scores = torch.matmul(q[:, :, s:e].float(), kt) * scale
        scores = _apply_masks(scores, slice(s, e), attn_mask, key_valid)
        probs = scores.softmax(dim=-1)
        out.append(probs.index_select(-1, cols).sum(-1).mean(1))
    return torch.cat(out, dim=1) if out else q.new_zeros((q.shape[0], 0), dtype=torch.float32)


def dense_concept_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    rows: tuple[int, int],
    concept_cols: list[int] | torch.Tensor,
    *,
    key_valid: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """The reference form: the full ``(B, H, Lq, Lk)`` softmax, mean over heads, then the slice (for tests)."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale
    scores = _apply_masks(scores, slice(0, q.shape[2]), attn_mask, key_valid)
    attn = scores.softmax(dim=-1).mean(1)  # (B, Lq, Lk)
    cols = torch.as_tensor(concept_cols, dtype=torch.long, device=q.device)
    return attn[:, rows[0] : rows[1]].index_select(-1, cols).sum(-1)


def normalise_per_frame(scores: torch.Tensor, tokens_per_frame: int) -> torch.Tensor:
    """Per frame min-max: ``(a - min) / (max - min + 1e-6)`` over the ``tokens_per_frame`` tokens of each frame."""
    batch, n = scores.shape
    if tokens_per_frame < 1 or n % tokens_per_frame:
        raise ErasebenchError(f"{n} video tokens do not split into frames of {tokens_per_frame} tokens")
    x = scores.reshape(batch, n // tokens_per_frame, tokens_per_frame)
    lo = x.amin(dim=-1, keepdim=True)
    hi = x.amax(dim=-1, keepdim=True)
    return ((x - lo) / (hi - lo + 1e-6)).reshape(batch, n)


def threshold_masks(soft: list[torch.Tensor], tau: float, alias_bug: bool = False) -> list[torch.Tensor]:
    """Binary masks ``1[M~_l >= tau]`` per layer (the inputs are left untouched).

    ``alias_bug`` reproduces the released ``get_mask``: the running average is the same tensor as layer 0's
    mask, binarised in place and then summed with the soft masks of layers 1..n-1 and divided by n, so layer 0
    gets ``(1[M~_0 >= tau] + sum_{l>=1} M~_l) / n`` (and its input tensor is overwritten with it).
    """
    if not alias_bug:
        return [(m >= tau).to(torch.float32) for m in soft]
    if any(m.shape != soft[0].shape for m in soft):
        raise ErasebenchError("mask_alias_bug needs masks of one shape in every layer (the reference models' layout)")
    average = soft[0]  # the alias
    binary = (average >= tau).to(average.dtype)
    average.copy_(binary)
    for m in soft[1:]:
        average += m
    average /= len(soft)
    return [average] + [(m >= tau).to(torch.float32) for m in soft[1:]]


# ---- capturing what the mask needs ---------------------------------------------------------------


@dataclass
class SiteAttention:
    """What one site's attention exposed during a recorded forward."""

    video_len: int = 0
    text_len: int = 0
    text: torch.Tensor | None = None
    layout: str = ""  # "cross" (keys are the text), "text_first" ([text; video]) or "text_last" ([video; text])
    batch: int = 0
    q: torch.Tensor | None = None
    k: torch.Tensor | None = None
    attn_mask: torch.Tensor | None = None
    scale: float | None = None
    heads: int = 0
    scores: torch.Tensor | None = None  # concept score per video token, when the recorder has a scorer

    def rows(self) -> tuple[int, int]:
        lq = self.q.shape[2]
        if self.layout == "text_first":
            return self.text_len, lq
        if self.layout == "text_last":
            return 0, lq - self.text_len
        return 0, lq

    def text_start(self) -> int:
        return self.k.shape[2] - self.text_len if self.layout == "text_last" else 0


def _bind(module: nn.Module, args: tuple, kwargs: dict) -> dict[str, Any]:
    try:
        return dict(inspect.signature(module.forward).bind(*args, **kwargs).arguments)
    except TypeError:
        return dict(kwargs)


class AttentionRecorder:
    """Records, per site, the attention's queries and keys and where its text tokens sit.

    Default (``raw=False``): the tensors handed to ``torch.nn.functional.scaled_dot_product_attention`` inside the
    site (after QK-norm and RoPE, with the attention's own mask), patched only while the recorder is active.
    ``raw=True`` (parity flag ``mask_from_raw_qk``): the outputs of ``to_q`` / ``to_k`` (before QK-norm and RoPE),
    split into heads, no mask. The text layout comes from comparing ``to_q``'s input with the site's
    ``encoder_hidden_states``. With ``score`` (a function of the record), each site's scores are computed
    (no grad) as soon as the site returns and its queries and keys are dropped, so only one layer's are held.
    """

    def __init__(self, sites: list[tuple[str, nn.Module]], raw: bool, score: Any = None):
        self.sites = sites
        self.raw = raw
        self.score = score
        self.records: dict[str, SiteAttention] = {}
        self.current: str | None = None
        self._hooks = HookSet()
        self._sdpa = None

    def __enter__(self) -> "AttentionRecorder":
        try:
            return self._attach()
        except BaseException:
            self.__exit__()
            raise

    def _attach(self) -> "AttentionRecorder":
        import torch.nn.functional as F

        for name, module in self.sites:
            for attr in ("to_q", "to_k"):
                if not isinstance(getattr(module, attr, None), nn.Module):
                    raise ErasebenchError(
                        f"site {name!r} ({type(module).__name__}) has no separate {attr} projection; concept masks need it"
                    )
            self._hooks.pre(f"site:{name}", module, self._site_pre(name), with_kwargs=True)
            self._hooks.post(f"site-done:{name}", module, self._site_post(name))
            self._hooks.pre(f"layout:{name}", module.to_q, self._to_q_pre(name))
            if self.raw:
                self._hooks.post(f"raw-q:{name}", module.to_q, self._proj_post(name, "q"))
                self._hooks.post(f"raw-k:{name}", module.to_k, self._proj_post(name, "k"))
        if not self.raw:
            self._sdpa = F.scaled_dot_product_attention
            original = self._sdpa

            def recording_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **kwargs):
                if self.current is not None:
                    rec = self.records[self.current]
                    expected = {rec.text_len, rec.text_len + rec.video_len}
                    if key.shape[-2] in expected and query.dim() == 4:
                        rec.q, rec.k = query.detach(), key.detach()
                        rec.attn_mask = None if attn_mask is None else attn_mask.detach()
                        rec.scale = scale
                return original(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale, **kwargs)

            F.scaled_dot_product_attention = recording_sdpa
        return self

    def __exit__(self, *exc: Any) -> None:
        import torch.nn.functional as F

        self._hooks.clear()
        if self._sdpa is not None:
            F.scaled_dot_product_attention = self._sdpa
            self._sdpa = None
        self.current = None

    def _site_pre(self, name: str):
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            bound = _bind(module, args, kwargs)
            hidden = bound.get("hidden_states", args[0] if args else None)
            text = bound.get("encoder_hidden_states")
            if hidden is None or text is None:
                raise ErasebenchError(f"site {name!r} was called without text (encoder_hidden_states); it cannot give a concept mask")
            self.records[name] = SiteAttention(
                video_len=int(hidden.shape[1]), text_len=int(text.shape[1]), text=text, batch=int(hidden.shape[0]),
                heads=int(getattr(module, "heads", 1)),
            )
            self.current = name

        return hook

    def _site_post(self, name: str):
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            rec = self.records.get(name)
            if rec is not None:
                rec.text = None
                if rec.q is None or rec.k is None:
                    raise ErasebenchError(
                        f"site {name!r}: no attention scores were seen (the attention backend does not call torch "
                        "scaled_dot_product_attention); set mask_from_raw_qk=true or use the native attention backend"
                    )
                if self.score is not None:
                    with torch.no_grad():
                        rec.scores = self.score(rec)
                    rec.q = rec.k = rec.attn_mask = None
            self.current = None

        return hook

    def _to_q_pre(self, name: str):
        def hook(module: nn.Module, args: tuple) -> None:
            rec = self.records.get(name)
            if rec is None or self.current != name or rec.layout:
                return
            x = args[0]
            t = rec.text_len
            if x.shape[1] == rec.video_len:
                rec.layout = "cross"
            elif x.shape[1] == rec.video_len + t and torch.equal(x[:, :t], rec.text):
                rec.layout = "text_first"
            elif x.shape[1] == rec.video_len + t and torch.equal(x[:, -t:], rec.text):
                rec.layout = "text_last"
            else:
                raise ErasebenchError(f"site {name!r}: cannot tell where the text tokens sit in the attention input")

        return hook

    def _proj_post(self, name: str, which: str):
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            rec = self.records.get(name)
            if rec is None or self.current != name:
                return
            b, n, inner = output.shape
            heads = rec.heads
            setattr(rec, which, output.detach().reshape(b, n, heads, inner // heads).transpose(1, 2))

        return hook

"""UnlearnDiffAtk (Zhang et al., ECCV 2024, arXiv 2310.11868): optimise ``k`` prompt tokens, prepended to the
prompt, so that the *erased* model denoises toward a reference video of the concept.

With ``x0`` the reference latent (the unerased model's video of the prompt, same seed), ``ᾱ_t`` the
scheduler's cumulative alphas, ``ε ~ N(0, I)`` fresh per step and ``ε_θ`` the erased denoiser:

    x_t  = √ᾱ_t x0 + √(1 − ᾱ_t) ε
    ℓ(u) = mean over (frames, channels, pixels) of (ε_θ(x_t, t, E([u; prompt])) − y)²

where ``y`` is the denoiser's training target (ε; ``√ᾱ_t ε − √(1 − ᾱ_t) x0`` for v-prediction) and ``u``
is a ``k × V`` matrix of token distributions (rows on the probability simplex, uniform at the start).
Each step draws one token per row from ``u`` (straight-through: the gradient passes clipped to [−1, 1]),
embeds the one-hots with the encoder's token table, takes an Adam step on ℓ (lr 0.01, weight decay 0.1)
and projects each row back onto the simplex. Timesteps are visited in order
``t_j = T/(2n) + j·T/n`` (``n = timesteps``), ``iterations`` steps each; after each timestep the argmax
tokens make a prompt that is generated with the erased pipeline (every eraser setting applies) and judged
by the suite's metric, and the search stops at the first success. A prompt whose unattacked video already
shows the concept is not attacked (the reference returns at its first check).

Source: OPTML-Group/Diffusion-MU-Attack@5a3e5d37fb8787113e5d479204ab593a60e303e0 ``src/attackers/text_grad_.py``
(``prefix_k``, ``sequential``), ``src/tasks/classifier_.py`` (loss, timesteps), ``configs/*/text_grad_*.json``
(k = 5 for nudity/violence, 3 for objects; 40 iterations; 50 timesteps). Deviations (docs/attacks.md): video
latents; the model's own denoiser target; the reference latent is the pipeline's final latent instead of
the VAE encoding of the decoded image; the simplex projection is exact (sort-based) instead of bisection
to 1e-5; the prompts still searching share one batched denoiser call per step and one batched
pipeline call per success check (each prompt keeps its own loss, optimiser and random stream).
"""

from __future__ import annotations

import inspect
import time
from typing import Any

import torch
from pydantic import Field

from ..errors import UnsupportedFamilyError
from ..hooks import HookSet
from .base import Attack, AttackConfig, AttackOutcome, AttackTarget


class UnlearnDiffAtkConfig(AttackConfig):
    k: int | None = Field(default=None, ge=1, description="prepended tokens (None: 5 for unsafe concepts, else 3)")
    timesteps: int = Field(default=50, ge=1, description="timesteps visited, one success check after each")
    iterations: int = Field(default=40, ge=1, description="optimisation steps per timestep")
    lr: float = Field(default=0.01, gt=0)
    weight_decay: float = Field(default=0.1, ge=0)
    probes: int = Field(default=4, ge=1, description="fixed (t, noise) draws for the objective printed at start and end")


def project_simplex(u: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each last-axis row onto the probability simplex (Duchi et al. 2008)."""
    s, _ = torch.sort(u, dim=-1, descending=True)
    cum = s.cumsum(-1) - 1.0
    ks = torch.arange(1, u.shape[-1] + 1, device=u.device, dtype=u.dtype)
    rho = (s - cum / ks > 0).sum(-1, keepdim=True)
    tau = cum.gather(-1, rho - 1) / rho.to(u.dtype)
    return torch.clamp(u - tau, min=0.0)


class _SampleOneHot(torch.autograd.Function):
    """Forward: one token per row drawn from the row's distribution; backward: the gradient clipped to [−1, 1]."""

    @staticmethod
    def forward(ctx: Any, probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        flat = probs.reshape(-1, probs.shape[-1])
        picks = torch.stack([torch.multinomial(row, 1, generator=generator) for row in flat]).view(probs.shape[:-1])
        return torch.nn.functional.one_hot(picks, probs.shape[-1]).to(probs.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return torch.nn.functional.hardtanh(grad), None


class _Stop(Exception):
    pass


class Denoiser:
    """Replays the erased pipeline's own denoiser call with another latent, timestep and text condition.

    One pipeline call (CFG off) is stopped at its first denoiser call to capture every keyword it passes
    (rotary embeddings, masks); the text condition must be the text encoder's last hidden state, which is
    checked on the captured call (else the family is unsupported)."""

    def __init__(self, target: AttackTarget, record_prompt: str, seed: int):
        self.module = getattr(target.pipe, target.family.denoiser)
        sig = inspect.signature(self.module.forward)
        params = list(sig.parameters)
        if "timestep" not in sig.parameters or "encoder_hidden_states" not in sig.parameters:
            raise UnsupportedFamilyError(
                f"attack 'unlearndiffatk': the denoiser of family {target.family.name!r} takes no (timestep, encoder_hidden_states)"
            )
        self.latent_name = params[0]
        captured: dict[str, Any] = {}

        def pre(module: Any, args: tuple, kwargs: dict) -> None:
            bound = sig.bind_partial(*args, **kwargs).arguments
            for name, value in bound.items():
                if sig.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                    captured.update(value)
                else:
                    captured[name] = value
            raise _Stop

        kwargs = {**target.call_kwargs, "guidance_scale": 1.0, "output_type": "latent"}
        with HookSet() as hooks:
            hooks.pre("unlearndiffatk-capture", self.module, pre, with_kwargs=True)
            try:
                target.pipe(prompt=[record_prompt], generator=[torch.Generator().manual_seed(seed)], **kwargs)
            except _Stop:
                pass
        if not captured:
            raise UnsupportedFamilyError("attack 'unlearndiffatk': the pipeline never called its denoiser")
        ehs = captured.get("encoder_hidden_states")
        mine = target.text.encode(torch.tensor([target.text.ids(record_prompt)]))
        if not isinstance(ehs, torch.Tensor) or ehs.shape != mine.shape or not torch.allclose(ehs, mine.to(ehs), atol=1e-4):
            raise UnsupportedFamilyError(
                f"attack 'unlearndiffatk': the denoiser of family {target.family.name!r} is not conditioned on the "
                "text encoder's last hidden state; the token gradient cannot be replayed"
            )
        self.captured = captured

    def __call__(self, latents: torch.Tensor, t: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        n = latents.shape[0]
        kwargs = {}
        for name, value in self.captured.items():
            if isinstance(value, torch.Tensor) and value.ndim >= 2 and value.shape[0] == 1:
                value = value.expand(n, *value.shape[1:])
            kwargs[name] = value
        kwargs.update({self.latent_name: latents, "timestep": t, "encoder_hidden_states": text, "return_dict": False})
        return self.module(**kwargs)[0]


class UnlearnDiffAtk(Attack):
    """UnlearnDiffAtk: k prepended tokens optimised on the erased denoiser's loss toward the unerased model's video."""

    name = "unlearndiffatk"
    version = "1"
    source = "Zhang et al., arXiv 2310.11868; OPTML-Group/Diffusion-MU-Attack@5a3e5d37 src/attackers/text_grad_.py"
    Config = UnlearnDiffAtkConfig
    uses_eraser = True
    budget_fields = ("timesteps", "iterations")

    def k(self, target: AttackTarget) -> int:
        if self.config.k is not None:
            return self.config.k
        return 5 if any(c.kind == "unsafe" for c in target.concepts) else 3

    def reference_prompt(self, record: Any) -> str:
        """The prompt of the reference video (the unerased model's; the attacked prompt itself)."""
        return record.prompt

    def schedule(self, num_train: int) -> list[int]:
        n = self.config.timesteps
        start = num_train // n // 2
        return list(range(start, num_train, max(1, num_train // n)))[:n]

    def run(self, target: AttackTarget) -> list[AttackOutcome]:
        cfg = self.config
        text = target.text
        records = target.records
        k = self.k(target)
        outcomes = [AttackOutcome(r.prompt_id, r.prompt, r.prompt) for r in records]
        todo = [i for i, r in enumerate(records) if not target.shown_before.get(r.prompt_id, False)]
        for i in range(len(records)):
            if i not in todo:
                outcomes[i].skipped = "the unattacked prompt already shows the concept"
                outcomes[i].found_in_search = True
        if not todo:
            return outcomes
        words = {i: text.word_ids(records[i].prompt) for i in todo}
        for i in todo:
            text.sequence([0] * k + words[i])  # one line when the prompt has no room for k tokens
        started = time.perf_counter()
        scheduler = target.pipe.scheduler
        alphas = scheduler.alphas_cumprod.float()
        prediction = scheduler.config.get("prediction_type", "epsilon")
        if prediction not in ("epsilon", "v_prediction", "sample"):
            raise UnsupportedFamilyError(f"attack 'unlearndiffatk': scheduler prediction_type {prediction!r} is not supported")
        denoiser = Denoiser(target, records[todo[0]].prompt, target.seeds[records[todo[0]].prompt_id])
        # the reference video's latent, made by the unerased model with the prompt's own seed
        with target.unerased(), torch.no_grad():
            out = target.pipe(
                prompt=[self.reference_prompt(records[i]) for i in todo],
                generator=[torch.Generator().manual_seed(target.seeds[records[i].prompt_id]) for i in todo],
                **{**target.call_kwargs, "output_type": "latent"},
            )
        x0 = {i: out.frames[n : n + 1].detach().float() for n, i in enumerate(todo)}
        table = text.text_encoder.get_input_embeddings().weight.detach()
        vocab = table.shape[0]
        n_prefix = len(text.prefix)

        def embeds(i: int, onehot: torch.Tensor) -> torch.Tensor:
            """E's input [prefix; adversarial tokens; prompt; eos; pad], the adversarial rows as one-hot @ table."""
            ids = torch.tensor([text.sequence([0] * k + words[i])])
            base = torch.nn.functional.embedding(ids, table)[0]
            return torch.cat([base[:n_prefix], onehot.to(table) @ table, base[n_prefix + k :]], dim=0)

        def losses(rows: list[int], onehots: list[torch.Tensor], ts: list[int], noises: list[torch.Tensor]) -> torch.Tensor:
            """ℓ per prompt, all prompts in one batched text-encoder and denoiser call (each loss is its own mean)."""
            a = alphas[torch.tensor(ts)].view(-1, *([1] * (x0[rows[0]].ndim - 1)))
            clean = torch.cat([x0[i] for i in rows])
            noise = torch.cat(noises)
            xt = a.sqrt() * clean + (1 - a).sqrt() * noise
            goal = {"epsilon": noise, "v_prediction": a.sqrt() * noise - (1 - a).sqrt() * clean, "sample": clean}[prediction]
            cond = text.text_encoder(inputs_embeds=torch.stack([embeds(i, o) for i, o in zip(rows, onehots)]))[0]
            pred = denoiser(xt, torch.tensor(ts), cond)
            return ((pred.float() - goal) ** 2).flatten(1).mean(dim=1)

        gens = {i: self.generator(i) for i in todo}
        probe_gen = {i: torch.Generator().manual_seed(cfg.seed * 7919 + i) for i in todo}
        num_train = int(scheduler.config.num_train_timesteps)
        probes = {
            i: [(int(torch.randint(0, num_train, (1,), generator=probe_gen[i])), torch.randn(x0[i].shape, generator=probe_gen[i]))
                for _ in range(cfg.probes)]
            for i in todo
        }

        def objective(i: int, onehot: torch.Tensor) -> float:
            with torch.no_grad():
                values = losses([i] * len(probes[i]), [onehot] * len(probes[i]), [t for t, _ in probes[i]], [z for _, z in probes[i]])
            return float(values.mean())

        u = {i: torch.full((k, vocab), 1.0 / vocab) for i in todo}
        params = {i: project_simplex(u[i]).requires_grad_(True) for i in todo}
        opts = {i: torch.optim.Adam([params[i]], lr=cfg.lr, weight_decay=cfg.weight_decay) for i in todo}
        for i in todo:
            outcomes[i].objective_start = objective(i, torch.nn.functional.one_hot(params[i].detach().argmax(-1), vocab).float())
            outcomes[i].found_in_search = False
        active = list(todo)
        for t in self.schedule(num_train):
            if not active:
                break
            for _ in range(cfg.iterations):
                onehots, noises = [], []
                for i in active:
                    opts[i].zero_grad()
                    onehots.append(_SampleOneHot.apply(params[i], gens[i]))
                    noises.append(torch.randn(x0[i].shape, generator=gens[i]))
                total = losses(active, onehots, [t] * len(active), noises).sum()
                grads = torch.autograd.grad(total, [params[i] for i in active])
                for i, grad in zip(active, grads):
                    params[i].grad = grad
                    opts[i].step()
                    with torch.no_grad():
                        params[i].data = project_simplex(params[i].data)
                    outcomes[i].objective_evaluations += 1
            prompts = {}
            for i in active:
                adv = params[i].detach().argmax(-1).tolist()
                prompts[i] = text.decode([*adv, *words[i]])
                outcomes[i].attacked = prompts[i]
                outcomes[i].extra["tokens"] = adv
                outcomes[i].extra["last_timestep"] = t
            shown = target.evaluate([prompts[i] for i in active], [records[i] for i in active])
            for i, hit in zip(list(active), shown):
                outcomes[i].generations += 1
                if hit:
                    outcomes[i].found_in_search = True
                    active.remove(i)
        for i in todo:
            final = torch.nn.functional.one_hot(params[i].detach().argmax(-1), vocab).float()
            outcomes[i].objective_end = objective(i, final)
            outcomes[i].extra["k"] = k
        seconds = time.perf_counter() - started
        for i in todo:
            outcomes[i].extra["seconds_all"] = round(seconds, 3)
        return outcomes

"""The proxy optimizer: SGD with momentum or Adam, linear warm-up then cosine or step decay,
weight decay on kernels, gradient clipping."""

from __future__ import annotations

import jax
import optax

SCHEDULES = ("cosine", "step")
OPTIMIZERS = ("sgd", "adam")


def learning_rate(base: float, warmup_steps: int, total_steps: int, schedule: str = "cosine",
                  step_boundaries=(0.67, 0.89), step_factor: float = 0.1) -> optax.Schedule:
    """Linear warm-up from 0 to `base` over `warmup_steps`, then cosine to 0 or step decay at
    the given fractions of `total_steps` (Model Garden's 8/12 and 11/12 of training)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule: {schedule!r} is not one of {SCHEDULES}")
    warmup_steps = min(warmup_steps, max(total_steps - 1, 0))
    warmup = optax.linear_schedule(0.0, base, max(warmup_steps, 1))
    rest = max(total_steps - warmup_steps, 1)
    if schedule == "cosine":
        decay = optax.cosine_decay_schedule(base, rest)
    else:
        decay = optax.piecewise_constant_schedule(
            base, {int(b * total_steps) - warmup_steps: step_factor for b in step_boundaries})
    return optax.join_schedules([warmup, decay], [warmup_steps])


def make_optimizer(base_lr: float, warmup_steps: int, total_steps: int, schedule: str = "cosine",
                   momentum: float = 0.9, weight_decay: float = 4e-5,
                   clip_norm: float = 0.0, optimizer: str = "sgd") -> optax.GradientTransformation:
    """Clip (if `clip_norm` > 0), then either add `weight_decay * w` for conv/dense kernels only
    (L2 on the kernels, as Model Garden regularizes) and step with SGD with momentum, or step
    with Adam (b1 = `momentum`) and decay the kernels by `rate * weight_decay * w` (AdamW)."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: {optimizer!r} is not one of {OPTIMIZERS}")

    def kernels_only(params):
        return jax.tree_util.tree_map(lambda p: p.ndim > 1, params)

    rate = learning_rate(base_lr, warmup_steps, total_steps, schedule)
    parts = [optax.clip_by_global_norm(clip_norm)] if clip_norm > 0 else []
    if optimizer == "adam":
        parts.append(optax.adamw(rate, b1=momentum, weight_decay=weight_decay,
                                 mask=kernels_only))
    else:
        parts += [optax.add_decayed_weights(weight_decay, mask=kernels_only),
                  optax.sgd(rate, momentum)]
    return optax.chain(*parts)

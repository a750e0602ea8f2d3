"""The proxy optimizer: SGD with momentum or Adam, linear warm-up then cosine or step decay,
weight decay on kernels, gradient clipping; `apply_gradients` steps it (Adam through
`proxy_tasks.cpu_kernels`' custom calls on the CPU unless `NAS_CPU_OPTIMIZER=optax`)."""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from proxy_tasks.cpu_kernels import ops as cpu_kernels

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


def _is_kernel(param) -> bool:
    """Conv and dense kernels, the parameters the weight decay applies to."""
    return param.ndim > 1


def _kernels_only(params):
    return jax.tree_util.tree_map(_is_kernel, params)


def _clip(clip_norm: float) -> list:
    """Clipping to the global norm `clip_norm` as a chain's first part, or none where it is 0."""
    return [optax.clip_by_global_norm(clip_norm)] if clip_norm > 0 else []


@dataclasses.dataclass(frozen=True)
class AdamW:
    """Adam (b1, b2, eps) at `rate`, decoupled weight decay on the kernels, clipping to
    the global norm `clip_norm` first (0: none): optax's chain, and its step as CPU custom calls."""

    rate: optax.Schedule
    b1: float
    weight_decay: float
    clip_norm: float
    b2: float = 0.999
    eps: float = 1e-8

    def transform(self) -> optax.GradientTransformation:
        adamw = optax.adamw(self.rate, self.b1, self.b2, self.eps,
                            weight_decay=self.weight_decay, mask=_kernels_only)
        return optax.chain(*_clip(self.clip_norm), adamw)

    def fused_step(self, grads, state, params):
        """`apply_gradients` through `cpu_kernels`' AdamW step, on the state of `transform()`:
        the same scalars as optax's chain, the same arithmetic a parameter, so the same bits."""
        adam, masked, schedule = state[-1]
        norm = optax.tree.norm(grads)
        count = optax.safe_increment(adam.count)
        scalars = jnp.stack([self.rate(schedule.count), 1 - self.b1 ** count,
                             1 - self.b2 ** count, norm]).astype(jnp.float32)
        treedef = jax.tree_util.tree_structure(params)
        steps = [cpu_kernels.adamw_step(p, g, m, v, scalars, b1=self.b1, b2=self.b2, eps=self.eps,
                                        decay=self.weight_decay if _is_kernel(p) else 0.0,
                                        clip_norm=self.clip_norm)
                 for p, g, m, v in zip(*(treedef.flatten_up_to(t)
                                         for t in (params, grads, adam.mu, adam.nu)))]
        params, mu, nu = (treedef.unflatten(part) for part in zip(*steps))
        inner = (adam._replace(count=count, mu=mu, nu=nu), masked,
                 schedule._replace(count=optax.safe_increment(schedule.count)))
        return params, state[:-1] + (inner,), norm


class Optimizer(NamedTuple):
    """An optax transformation, with the AdamW settings it was made from (None for SGD)."""

    init: Callable
    update: Callable
    adamw: Optional[AdamW] = None


def make_optimizer(base_lr: float, warmup_steps: int, total_steps: int, schedule: str = "cosine",
                   momentum: float = 0.9, weight_decay: float = 4e-5,
                   clip_norm: float = 0.0, optimizer: str = "sgd") -> Optimizer:
    """Clip (if `clip_norm` > 0), then either add `weight_decay * w` for conv/dense kernels only
    (L2 on the kernels, as Model Garden regularizes) and step with SGD with momentum, or step
    with Adam (b1 = `momentum`) and decay the kernels by `rate * weight_decay * w` (AdamW)."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: {optimizer!r} is not one of {OPTIMIZERS}")
    rate = learning_rate(base_lr, warmup_steps, total_steps, schedule)
    if optimizer == "adam":
        adamw = AdamW(rate, momentum, weight_decay, clip_norm)
        return Optimizer(*adamw.transform(), adamw)
    return Optimizer(*optax.chain(*_clip(clip_norm),
                                  optax.add_decayed_weights(weight_decay, mask=_kernels_only),
                                  optax.sgd(rate, momentum)))


def apply_gradients(optimizer, grads, state, params):
    """(params, state, the gradients' global norm) after one step of `optimizer` (any optax
    transformation); an `Optimizer`'s AdamW steps through `AdamW.fused_step` where
    `cpu_kernels.fused_optimizer()` (on the CPU; `NAS_CPU_OPTIMIZER`)."""
    adamw = getattr(optimizer, "adamw", None)
    if adamw is not None and cpu_kernels.fused_optimizer():
        return adamw.fused_step(grads, state, params)
    updates, state = optimizer.update(grads, state, params)
    return optax.apply_updates(params, updates), state, optax.tree.norm(grads)

"""The PPO controller's policy: a Flax LSTM that emits a genome's decisions one at a time with
masks that keep every sample valid, and its jitted sampling and PPO update.

Masks combine the static mask of each step (its slice of the vocabulary, allowed levels and
parents) with the dynamic part carried along the sequence: levels that keep those chosen so far
matchable to distinct intermediate blocks, output labels not yet used, a second parent unlike
the first.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from controllers.decision_table import (LEVEL, OUTPUT, PARENT1, PARENT2, DecisionTable,
                                        decision_table)
from search_space.space import SearchSpace

NEG = -1e9  # logit of a masked choice: exp() is exactly 0, and 0 * NEG stays finite


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Policy size, sampling and PPO settings.

    batch_size K: samples drawn per policy call and feedbacks per update; epochs: gradient steps
    per update over the batch; clip_eps clips each decision's probability ratio (a ratio of the
    whole sequence of 60 decisions would let each move by a 60th of that per update);
    temperature divides the logits (sampling and training alike); entropy_coef weighs the mean
    per-decision entropy; baseline_decay is the moving average's; initial_bias is the logit
    the untrained policy adds to the initial genomes' decisions (shared among them), so its
    first samples are their neighbours rather than uniform ones; explore is the rate of a
    uniform choice mixed into every decision, a floor that keeps a converged policy trying each
    decision's other values (the search's last steps) instead of repeating itself.
    """

    hidden: int = 64
    embed: int = 32
    batch_size: int = 32
    epochs: int = 4
    learning_rate: float = 1e-2
    clip_eps: float = 0.2
    entropy_coef: float = 3e-2
    temperature: float = 1.0
    baseline_decay: float = 0.95
    normalize_advantages: bool = True
    initial_bias: float = 3.0
    explore: float = 0.05

    def __post_init__(self):
        for field in ("hidden", "embed", "batch_size", "epochs"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field}: expected a positive integer, got {value!r}")
        for field in ("learning_rate", "clip_eps", "temperature"):
            if not getattr(self, field) > 0:
                raise ValueError(f"{field}: must be > 0, got {getattr(self, field)!r}")
        if not 0 <= self.explore < 1:
            raise ValueError(f"explore: must be in [0, 1), got {self.explore!r}")
        if not self.initial_bias >= 0:
            raise ValueError(f"initial_bias: must be >= 0, got {self.initial_bias!r}")
        if not self.entropy_coef >= 0:
            raise ValueError(f"entropy_coef: must be >= 0, got {self.entropy_coef!r}")
        if not 0 <= self.baseline_decay < 1:
            raise ValueError(f"baseline_decay: must be in [0, 1), got {self.baseline_decay!r}")


class PolicyNet(nn.Module):
    """LSTM over (previous choice, step) embeddings; logits from its output plus a learned
    per-step bias, which lets each decision's preference be learned directly."""

    vocab: int
    steps: int
    hidden: int
    embed: int

    def setup(self):
        self.token_embed = nn.Embed(self.vocab + 1, self.embed)  # last id: start of sequence
        self.step_embed = nn.Embed(self.steps, self.embed)
        self.cell = nn.OptimizedLSTMCell(self.hidden)
        self.head = nn.Dense(self.vocab, kernel_init=nn.initializers.normal(1e-2))
        self.step_bias = self.param("step_bias", nn.initializers.zeros, (self.steps, self.vocab))

    def __call__(self, carry, token, t):
        carry, h = self.cell(carry, self.token_embed(token) + self.step_embed(t))
        return carry, self.head(h) + self.step_bias[t]


class Carry(NamedTuple):
    """Per-sample state along the sequence."""

    lstm: tuple
    token: jnp.ndarray   # [B] previous choice (vocabulary id)
    levels: jnp.ndarray  # [B, L] intermediate blocks placed at each level
    used: jnp.ndarray    # [B, n_out] output labels placed
    parent: jnp.ndarray  # [B] first parent of the current position


@dataclasses.dataclass(frozen=True, eq=False)
class PolicyProgram:
    """The jitted functions of one (space, config); built once and shared by controllers."""

    table: DecisionTable
    config: PPOConfig
    init: Callable      # (key, prior [T, vocab]) -> (params, opt_state)
    sample: Callable    # (params, key) -> (actions [K, T], logp [K, T])
    update: Callable    # (params, opt_state, actions, old_logp [K, T], advantages)
    #                     -> (params, opt_state)


def _log_probs(table: DecisionTable, net: PolicyNet, temperature: float, explore: float,
               params, carry, t):
    """One step: the LSTM carry after it and the log-probabilities of its choices: the masked,
    tempered policy, mixed with a uniform draw among the allowed choices at rate `explore`."""
    arrays = {k: jnp.asarray(getattr(table, k)) for k in
              ("kinds", "static_mask", "level_sets", "level_set_room")}
    lstm, logits = net.apply(params, carry.lstm, carry.token, t)
    kind, batch = arrays["kinds"][t], carry.token.shape[0]
    features = jnp.arange(table.num_features)
    if table.match_levels:  # one more block at a level must fit every set holding that level
        slack = arrays["level_set_room"] - carry.levels @ arrays["level_sets"].T.astype(jnp.int32)
        fits = jnp.where(arrays["level_sets"][None], slack[:, :, None] >= 1, True).all(1)
    else:
        fits = jnp.ones((batch, len(table.levels)), bool)
    dynamic = jnp.concatenate([
        fits,
        ~carry.used,
        jnp.ones((batch, len(table.space.block_fns)), bool),
        (kind != PARENT2) | (features[None, :] != carry.parent[:, None]),
    ], axis=1)
    mask = arrays["static_mask"][t][None, :] & dynamic
    logps = jax.nn.log_softmax(jnp.where(mask, logits / temperature, NEG))
    if explore:
        uniform = -jnp.log(mask.sum(1, keepdims=True).astype(logps.dtype))
        logps = jnp.where(mask, jnp.logaddexp(jnp.log1p(-explore) + logps,
                                              jnp.log(explore) + uniform), NEG)
    return lstm, logps


def _advance(table: DecisionTable, carry: Carry, lstm, t, action) -> Carry:
    """The carry after choosing `action` (vocabulary ids, [B]) at step `t`."""
    kind = jnp.asarray(table.kinds)[t]
    local = action - jnp.asarray(table.starts)[kind]
    levels = carry.levels + jnp.where(kind == LEVEL, jax.nn.one_hot(local, len(table.levels),
                                                                    dtype=carry.levels.dtype), 0)
    used = carry.used | ((kind == OUTPUT) & jax.nn.one_hot(local, table.space.num_outputs,
                                                           dtype=bool))
    return Carry(lstm, action, levels, used, jnp.where(kind == PARENT1, local, carry.parent))


def _start(table: DecisionTable, config: PPOConfig, batch: int) -> Carry:
    zeros = jnp.zeros((batch, config.hidden))
    return Carry((zeros, zeros), jnp.full((batch,), table.vocab, jnp.int32),
                 jnp.zeros((batch, len(table.levels)), jnp.int32),
                 jnp.zeros((batch, table.space.num_outputs), bool),
                 jnp.full((batch,), -1, jnp.int32))


@functools.lru_cache(maxsize=None)
def policy_program(space: SearchSpace, config: PPOConfig) -> PolicyProgram:
    """Builds (once per space and config) the policy's jitted init, sample and update."""
    table = decision_table(space)
    net = PolicyNet(table.vocab, table.num_steps, config.hidden, config.embed)
    optimizer = optax.adam(config.learning_rate)
    step = functools.partial(_log_probs, table, net, config.temperature, config.explore)
    steps = jnp.arange(table.num_steps)

    @jax.jit
    def init(key, prior):
        carry = _start(table, config, 1)
        params = net.init(key, carry.lstm, carry.token, jnp.int32(0))
        params = {"params": {**params["params"],
                             "step_bias": params["params"]["step_bias"] + prior}}
        return params, optimizer.init(params)

    @jax.jit
    def sample(params, key):
        def body(carry, inputs):
            t, k = inputs
            lstm, logps = step(params, carry, t)
            action = jax.random.categorical(k, logps).astype(jnp.int32)
            logp = jnp.take_along_axis(logps, action[:, None], 1)[:, 0]
            return _advance(table, carry, lstm, t, action), (action, logp)

        keys = jax.random.split(key, table.num_steps)
        _, (actions, logps) = jax.lax.scan(body, _start(table, config, config.batch_size),
                                           (steps, keys))
        return actions.T, logps.T

    def evaluate(params, actions):
        def body(carry, inputs):
            t, action = inputs
            lstm, logps = step(params, carry, t)
            entropy = -(jnp.exp(logps) * logps).sum(1)
            logp = jnp.take_along_axis(logps, action[:, None], 1)[:, 0]
            return _advance(table, carry, lstm, t, action), (logp, entropy)

        _, (logps, entropies) = jax.lax.scan(body, _start(table, config, actions.shape[0]),
                                             (steps, actions.T))
        return logps.T, entropies.mean(0)

    def loss(params, actions, old_logp, advantages):
        logp, entropy = evaluate(params, actions)
        ratio = jnp.exp(logp - old_logp)  # [K, T]: one ratio per decision
        clipped = jnp.clip(ratio, 1 - config.clip_eps, 1 + config.clip_eps)
        surrogate = jnp.minimum(ratio * advantages[:, None], clipped * advantages[:, None])
        return -(surrogate.mean() + config.entropy_coef * entropy.mean())

    @jax.jit
    def update(params, opt_state, actions, old_logp, advantages):
        if config.normalize_advantages:  # standardized in the batch: equal rewards push nothing
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

        def epoch(state, _):
            params, opt_state = state
            grads = jax.grad(loss)(params, actions, old_logp, advantages)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, opt_state), _ = jax.lax.scan(epoch, (params, opt_state), None,
                                              length=config.epochs)
        return params, opt_state

    return PolicyProgram(table, config, init, sample, update)

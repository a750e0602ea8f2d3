"""The PPO controller: samples genomes from the LSTM policy in batches, learns from rewards
with a moving-average baseline, and updates every `batch_size` feedbacks."""

from __future__ import annotations

from typing import Iterable, Optional

import jax
import numpy as np

from controllers.base import Controller
from controllers.ppo_policy import PPOConfig, policy_program
from controllers.serialize import decode_tree, encode_tree
from search_space.genome import Genome
from search_space.space import SearchSpace


class PPOController(Controller):
    """Proposes the initial genomes (their rewards only move the baseline), then policy samples,
    from a policy that starts leaning on the initial genomes' decisions (`initial_bias`).

    Samples are drawn `batch_size` at a time from the current policy, each keeping its
    actions and per-decision log-probabilities; feedback turns them into advantages, and every
    `batch_size` of those make one PPO update. Proposals may run ahead of feedback: the clipped
    ratio against the stored log-probabilities keeps late results valid.
    """

    kind = "ppo"

    def __init__(self, space: SearchSpace, config: PPOConfig = PPOConfig(), seed: int = 0,
                 initial_genomes: Optional[Iterable[Genome]] = None, failure_reward: float = 0.0):
        super().__init__(space, seed, initial_genomes, failure_reward)
        self.config = config
        self.program = policy_program(space, config)
        self.params, self.opt_state = self.program.init(jax.random.PRNGKey(seed),
                                                        self._prior())
        self.queue = []    # [actions, logp] sampled, not yet proposed
        self.buffer = []   # [actions, logp, advantage] awaiting an update
        self.baseline: Optional[float] = None
        self.num_batches = 0
        self.num_updates = 0

    def _prior(self) -> np.ndarray:
        """[T, vocab] logits: `initial_bias` on each initial genome's decisions, shared.
        Summed in float64, which the jitted init rounds once to float32."""
        table, genomes = self.program.table, self.initial_genomes
        prior = np.zeros((table.num_steps, table.vocab))
        for genome in genomes:
            prior[np.arange(table.num_steps), table.encode(genome)] += \
                self.config.initial_bias / len(genomes)
        return prior

    def _next(self):
        if not self.queue:
            key = jax.random.fold_in(jax.random.PRNGKey(self.seed), self.num_batches)
            actions, logps = jax.device_get(self.program.sample(self.params, key))
            self.queue = [[a.tolist(), lp.tolist()] for a, lp in zip(actions, logps)]
            self.num_batches += 1
        actions, logp = self.queue.pop(0)
        return self.program.table.decode(actions), {"actions": actions, "logp": logp}

    def _learn(self, genome, reward, extra) -> None:
        advantage = 0.0 if self.baseline is None else reward - self.baseline
        decay = self.config.baseline_decay
        self.baseline = reward if self.baseline is None else decay * self.baseline + (1 - decay) * reward
        if extra is None:
            return
        self.buffer.append([extra["actions"], extra["logp"], advantage])
        if len(self.buffer) >= self.config.batch_size:
            batch, self.buffer = self.buffer[:self.config.batch_size], self.buffer[self.config.batch_size:]
            actions, logps, advantages = zip(*batch)
            self.params, self.opt_state = self.program.update(
                self.params, self.opt_state, np.asarray(actions, np.int32),
                np.asarray(logps, np.float32), np.asarray(advantages, np.float32))
            self.num_updates += 1

    def _state(self):
        return {"params": encode_tree(self.params), "opt_state": encode_tree(self.opt_state),
                "queue": [list(q) for q in self.queue], "buffer": [list(b) for b in self.buffer],
                "baseline": self.baseline, "num_batches": self.num_batches,
                "num_updates": self.num_updates}

    def _load_state(self, state) -> None:
        self.params = decode_tree(self.params, state["params"])
        self.opt_state = decode_tree(self.opt_state, state["opt_state"])
        self.queue = [list(q) for q in state["queue"]]
        self.buffer = [list(b) for b in state["buffer"]]
        self.baseline = state["baseline"]
        self.num_batches = int(state["num_batches"])
        self.num_updates = int(state["num_updates"])

"""Shared helpers for the controller tests: a scripted inner controller and an async driver."""

from __future__ import annotations

import json

import numpy as np

from controllers import FAILED, OK, PPOConfig, proposal_record, result_record
from controllers.base import Controller
from search_space import SPACES, random_genome, similarity

SPACE = SPACES["spinenet-49"]
TARGET = random_genome(SPACE, np.random.default_rng(2024))
# One small policy for every PPO test: its programs compile once per test session.
SMALL_PPO = PPOConfig(hidden=16, embed=8, batch_size=8, epochs=2, learning_rate=1e-2)


def reward_of(genome) -> float:
    return similarity(genome, TARGET, SPACE)


class Scripted(Controller):
    """Proposes a fixed cycle of genomes; records what it learns."""

    kind = "scripted"

    def __init__(self, genomes, **kwargs):
        super().__init__(SPACE, initial_genomes=(), **kwargs)
        self.genomes = list(genomes)
        self.learned = []

    def _next(self):
        return self.genomes[self.num_proposed % len(self.genomes)], None

    def _learn(self, genome, reward, extra):
        self.learned.append((genome, reward))


def drive(controller, steps: int, ledger=None, outstanding=None, window: int = 3):
    """Keeps `window` trials outstanding and answers them out of order (every 7th fails).
    Returns the proposals made; appends ledger records; `outstanding` carries over calls."""
    outstanding = [] if outstanding is None else outstanding
    made = []
    for step in range(steps):
        while len(outstanding) < window:
            proposal = controller.propose()
            made.append(proposal)
            outstanding.append(proposal)
            if ledger is not None:
                ledger.append(proposal_record(proposal))
        done = outstanding.pop(step % len(outstanding))
        if len(made) % 7 == 0:
            args = (done.id, None, {"error": "nan loss"}, FAILED)
        else:
            args = (done.id, reward_of(done.genome), {"ap": reward_of(done.genome)}, OK)
        controller.feedback(*args)
        if ledger is not None:
            ledger.append(result_record(*args))
    return made


def json_round_trip(state):
    return json.loads(json.dumps(state))

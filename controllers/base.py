"""The bookkeeping every controller shares: ids, outstanding proposals, initial genomes,
feedback checks and resumable state."""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

import numpy as np

from controllers.interface import OK, STATUSES, Proposal, check_feedback
from controllers.replay import Replayable
from search_space.genome import Genome, seed_genome, validate_genome
from search_space.space import SearchSpace


def initial_genomes_or_seed(space: SearchSpace,
                            genomes: Optional[Iterable[Genome]]) -> Tuple[Genome, ...]:
    """The genomes to propose first: the given ones (validated), or the ResNet-50 seed."""
    genomes = (seed_genome(space),) if genomes is None else tuple(genomes)
    for genome in genomes:
        validate_genome(genome, space)
    return genomes


class Controller(Replayable):
    """Base class: proposes the initial genomes first, then `_next()`; routes feedback to
    `_learn()`, with the configured `failure_reward` for failed or infeasible trials.

    Subclasses implement `_next() -> (genome, extra)`, `_learn(genome, reward, extra)` and,
    when they hold more state, `_state()` / `_load_state()`. `extra` is JSON-able data kept with
    an outstanding proposal (None for the initial genomes).
    """

    kind = "controller"

    def __init__(self, space: SearchSpace, seed: int = 0,
                 initial_genomes: Optional[Iterable[Genome]] = None, failure_reward: float = 0.0):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
        if not math.isfinite(failure_reward):
            raise ValueError(f"failure_reward: expected a finite number, got {failure_reward!r}")
        self.space = space
        self.seed = seed
        self.failure_reward = float(failure_reward)
        self.initial_genomes = initial_genomes_or_seed(space, initial_genomes)
        self.rng = np.random.default_rng(seed)
        self.num_proposed = 0
        self.num_results = {status: 0 for status in STATUSES}
        self.outstanding: Dict[str, Dict[str, Any]] = {}

    def propose(self) -> Proposal:
        index = self.num_proposed
        if index < len(self.initial_genomes):
            genome, extra = self.initial_genomes[index], None
        else:
            genome, extra = self._next()
        proposal = Proposal(f"{self.kind}-{index}", genome)
        self.outstanding[proposal.id] = {"genome": genome.to_dict(), "extra": extra}
        self.num_proposed += 1
        return proposal

    def feedback(self, proposal_id: str, reward: Optional[float] = None,
                 metrics: Optional[Mapping[str, Any]] = None, status: str = OK) -> None:
        """Reports a trial's result; failed and infeasible trials are learned from with
        `failure_reward`. Results may arrive in any order."""
        if proposal_id not in self.outstanding:
            raise KeyError(f"feedback.proposal_id: {proposal_id!r} is not an outstanding proposal "
                           f"of this {self.kind} controller")
        value = check_feedback(reward, status)
        entry = self.outstanding.pop(proposal_id)
        self.num_results[status] += 1
        self._learn(Genome.from_dict(entry["genome"]),
                    self.failure_reward if value is None else value, entry["extra"])

    # -- subclass hooks -----------------------------------------------------------------------
    def _next(self) -> Tuple[Genome, Any]:
        raise NotImplementedError

    def _learn(self, genome: Genome, reward: float, extra: Any) -> None:
        raise NotImplementedError

    def _state(self) -> Dict[str, Any]:
        return {}

    def _load_state(self, state: Mapping[str, Any]) -> None:
        pass

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """Everything needed to continue exactly, as plain JSON-able data."""
        return {
            "kind": self.kind,
            "seed": self.seed,
            "rng": self.rng.bit_generator.state,
            "num_proposed": self.num_proposed,
            "num_results": dict(self.num_results),
            "outstanding": {k: dict(v) for k, v in self.outstanding.items()},
            **self._state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("kind") != self.kind:
            raise ValueError(f"state.kind: {state.get('kind')!r} cannot be loaded into a "
                             f"{self.kind} controller")
        if state["seed"] != self.seed:
            raise ValueError(f"state.seed: {state['seed']!r} differs from this controller's seed "
                             f"{self.seed}")
        self.rng.bit_generator.state = state["rng"]
        self.num_proposed = int(state["num_proposed"])
        self.num_results = {s: int(state["num_results"][s]) for s in STATUSES}
        self.outstanding = {k: dict(v) for k, v in state["outstanding"].items()}
        self._load_state(state)

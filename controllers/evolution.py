"""Regularized (aging) evolution (Real et al., 2019): tournament selection, mutation, and the
oldest member removed, so every architecture must keep being re-discovered to survive."""

from __future__ import annotations

import collections
import dataclasses
from typing import Iterable, Optional

from controllers.base import Controller
from search_space.genome import Genome, random_genome
from search_space.operators import crossover, mutate
from search_space.space import SearchSpace


@dataclasses.dataclass(frozen=True)
class EvolutionConfig:
    """population_size P: members kept (and, without initial genomes, random proposals before
    evolving); tournament_size S: members sampled per selection; crossover_prob: chance a child
    mixes the two best of the tournament before its mutation; average_offspring: a member's
    fitness in tournaments is the mean of its reward and its children's (each one decision
    away: a free re-evaluation of its neighbourhood under noisy rewards, so a lucky outlier
    stops winning once its children report)."""

    population_size: int = 200
    tournament_size: int = 100
    crossover_prob: float = 0.0
    average_offspring: bool = True

    def __post_init__(self):
        if self.population_size < 1:
            raise ValueError(f"population_size: must be >= 1, got {self.population_size}")
        if not 1 <= self.tournament_size <= self.population_size:
            raise ValueError(f"tournament_size: must be in 1..population_size "
                             f"({self.population_size}), got {self.tournament_size}")
        if not 0.0 <= self.crossover_prob <= 1.0:
            raise ValueError(f"crossover_prob: must be in [0, 1], got {self.crossover_prob}")


class RegularizedEvolution(Controller):
    """After the initial genomes, each proposal is a mutated tournament winner of the current
    population. With initial genomes this starts at once (a mutant of one of them while no
    result is in), so a small budget is spent around them; without any, the first P proposals
    are random, as in Real et al. Every result, failures included (with `failure_reward`),
    joins the population."""

    kind = "evolution"

    def __init__(self, space: SearchSpace, config: EvolutionConfig = EvolutionConfig(),
                 seed: int = 0, initial_genomes: Optional[Iterable[Genome]] = None,
                 failure_reward: float = 0.0):
        super().__init__(space, seed, initial_genomes, failure_reward)
        self.config = config
        # Members as [genome, reward, sum of children's rewards, children, member id].
        self.population = collections.deque(maxlen=config.population_size)
        self.num_members = 0

    def _fitness(self, member) -> float:
        _, reward, children_sum, children, _ = member
        if self.config.average_offspring:
            return (reward + children_sum) / (1 + children)
        return reward

    def _next(self):
        if not self.population and self.initial_genomes:
            start = self.initial_genomes[self.rng.integers(len(self.initial_genomes))]
            return mutate(start, self.space, self.rng), None
        if not self.population or (not self.initial_genomes
                                   and self.num_proposed < self.config.population_size):
            return random_genome(self.space, self.rng), None
        size = min(self.config.tournament_size, len(self.population))
        picks = self.rng.choice(len(self.population), size=size, replace=False)
        ranked = sorted(picks, key=lambda i: -self._fitness(self.population[i]))  # ties by draw
        winner = self.population[ranked[0]]
        parent = winner[0]
        if len(ranked) > 1 and self.rng.random() < self.config.crossover_prob:
            parent = crossover(parent, self.population[ranked[1]][0], self.space, self.rng)
        return mutate(parent, self.space, self.rng), {"parent": winner[4]}

    def _learn(self, genome, reward, extra) -> None:
        if extra is not None:
            for member in self.population:  # the parent, if it is still alive
                if member[4] == extra["parent"]:
                    member[2] += reward
                    member[3] += 1
        self.population.append([genome, reward, 0.0, 0, self.num_members])
        self.num_members += 1

    def _state(self):
        return {"population": [[g.to_dict(), r, s, n, i] for g, r, s, n, i in self.population],
                "num_members": self.num_members}

    def _load_state(self, state) -> None:
        self.population.clear()
        self.population.extend([Genome.from_dict(g), float(r), float(s), int(n), int(i)]
                               for g, r, s, n, i in state["population"])
        self.num_members = int(state["num_members"])

"""Random search: uniform samples over the searched decisions, the baseline every other
controller must beat."""

from __future__ import annotations

from controllers.base import Controller
from search_space.genome import random_genome


class RandomSearch(Controller):
    """Proposes the initial genomes, then independent uniform samples; learns nothing."""

    kind = "random"

    def _next(self):
        return random_genome(self.space, self.rng), None

    def _learn(self, genome, reward, extra) -> None:
        pass

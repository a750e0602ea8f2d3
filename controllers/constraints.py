"""Hard constraints checked with the cost model before any training: an over-budget genome
never becomes a trial; it is recorded and fed back to the inner controller as infeasible."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from controllers.costs import CostFn, detector_cost_fn
from controllers.interface import INFEASIBLE
from controllers.middleware import Middleware


def violations(cost: Dict[str, int], limits: Dict[str, Optional[float]]) -> List[str]:
    """The limits `cost` breaks, e.g. ["flops 2.1e+09 > 1.5e+09"]."""
    return [f"{key} {cost[key]:.4g} > {limit:.4g}" for key, limit in limits.items()
            if limit is not None and cost[key] > limit]


class Constraints(Middleware):
    """Proposes only genomes within `max_flops` and `max_params` (per `cost_fn`, the proxy
    detector's by default). Each rejected genome is appended to `infeasible` (and passed to
    `on_infeasible`) and fed back as infeasible at once; after `max_attempts` rejections in a
    row, propose() raises rather than loop forever."""

    kind = "constraints"

    def __init__(self, inner, max_flops: Optional[float] = None,
                 max_params: Optional[float] = None, cost_fn: Optional[CostFn] = None,
                 on_infeasible: Optional[Callable[[Dict[str, Any]], None]] = None,
                 max_attempts: int = 1000):
        super().__init__(inner)
        for field, value in (("max_flops", max_flops), ("max_params", max_params)):
            if value is not None and not value > 0:
                raise ValueError(f"{field}: must be > 0, got {value!r}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts: must be >= 1, got {max_attempts!r}")
        self.limits = {"flops": max_flops, "params": max_params}
        self.cost_fn = cost_fn or detector_cost_fn(inner.space)
        self.on_infeasible = on_infeasible
        self.max_attempts = max_attempts
        self.infeasible: List[Dict[str, Any]] = []

    def propose(self):
        for _ in range(self.max_attempts):
            proposal = self.inner.propose()
            if not any(limit is not None for limit in self.limits.values()):
                return proposal
            cost = {k: int(v) for k, v in self.cost_fn(proposal.genome).items()}
            broken = violations(cost, self.limits)
            if not broken:
                return proposal
            record = {"id": proposal.id, "genome": proposal.genome.to_dict(), "cost": cost,
                      "violations": broken}
            self.infeasible.append(record)
            if self.on_infeasible is not None:
                self.on_infeasible(record)
            self.inner.feedback(proposal.id, None, {**cost, "violations": broken}, INFEASIBLE)
        raise RuntimeError(f"constraints: {self.max_attempts} proposals in a row broke the limits "
                           f"{self.limits}; loosen them or raise max_attempts")

    def _state(self):
        return {"infeasible": [dict(r) for r in self.infeasible]}

    def _load_state(self, state) -> None:
        self.infeasible = [dict(r) for r in state["infeasible"]]

"""Objectives: the reward a controller learns from, AP alone or MnasNet-style
`AP * (FLOPs / target) ** w` (applied only above the target, or always)."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from controllers.costs import CostFn, detector_cost_fn
from controllers.interface import OK, check_feedback
from controllers.middleware import Middleware

ABOVE = "above"
ALWAYS = "always"
MODES = (ABOVE, ALWAYS)


def check_mode(mode: str) -> None:
    """Raises naming `mode` unless it is one of MODES."""
    if mode not in MODES:
        raise ValueError(f"mode: {mode!r} is not one of {MODES}")


def mnas_reward(ap: float, flops: float, target_flops: float, weight: float, mode: str) -> float:
    """MnasNet's reward: `ap * (flops / target) ** weight`, with mode "above" scaling only models
    over the target (a soft constraint) and "always" every model (a trade-off)."""
    check_mode(mode)
    if mode == ABOVE and flops <= target_flops:
        return ap
    return ap * (flops / target_flops) ** weight


class Objective(Middleware):
    """Turns each successful trial's AP into the objective before the inner controller sees it;
    FLOPs come from `cost_fn` (the proxy detector's by default). Without `target_flops` the
    reward is the AP alone. Failed and infeasible results pass through unchanged."""

    kind = "objective"

    def __init__(self, inner, target_flops: Optional[float] = None, weight: float = -0.07,
                 mode: str = ABOVE, cost_fn: Optional[CostFn] = None):
        super().__init__(inner)
        if target_flops is not None and not target_flops > 0:
            raise ValueError(f"target_flops: must be > 0, got {target_flops!r}")
        if not weight <= 0:
            raise ValueError(f"weight: must be <= 0 (a penalty on FLOPs), got {weight!r}")
        check_mode(mode)
        self.target_flops, self.weight, self.mode = target_flops, weight, mode
        self.cost_fn = cost_fn or detector_cost_fn(inner.space)
        self.flops: Dict[str, float] = {}  # outstanding proposal id -> FLOPs

    def propose(self):
        proposal = self.inner.propose()
        if self.target_flops is not None:
            self.flops[proposal.id] = float(self.cost_fn(proposal.genome)["flops"])
        return proposal

    def feedback(self, proposal_id: str, reward: Optional[float] = None,
                 metrics: Optional[Mapping[str, Any]] = None, status: str = OK) -> None:
        ap = check_feedback(reward, status)
        flops = self.flops.pop(proposal_id, None)
        if ap is not None and flops is not None:
            metrics = {**(metrics or {}), "ap": ap, "flops": flops}
            reward = mnas_reward(ap, flops, self.target_flops, self.weight, self.mode)
        self.inner.feedback(proposal_id, reward, metrics, status)

    def _state(self):
        return {"flops": dict(self.flops)}

    def _load_state(self, state) -> None:
        self.flops = {k: float(v) for k, v in state["flops"].items()}

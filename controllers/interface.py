"""The controller interface: proposals and the statuses a trial's feedback may carry."""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np

from search_space.genome import Genome

OK = "ok"
FAILED = "failed"
INFEASIBLE = "infeasible"
STATUSES = (OK, FAILED, INFEASIBLE)


@dataclasses.dataclass(frozen=True)
class Proposal:
    """One architecture to evaluate; `id` is what its feedback must quote."""

    id: str
    genome: Genome


def check_feedback(reward, status: str) -> Optional[float]:
    """The reward as a float (None unless `status` is ok); raises naming the bad field."""
    if status not in STATUSES:
        raise ValueError(f"feedback.status: {status!r} is not one of {STATUSES}")
    if status != OK:
        return None
    if isinstance(reward, bool) or not isinstance(reward, (int, float, np.floating, np.integer)) \
            or not math.isfinite(float(reward)):
        raise ValueError(f"feedback.reward: a finite number is required for status 'ok', "
                         f"got {reward!r}")
    return float(reward)

"""Cost functions for constraints and objectives: genome -> {"params", "flops"}, from the
exact cost model, with no model building."""

from __future__ import annotations

from typing import Callable, Dict

from search_space.builtins import PROXY_SIZE, ModelSize
from search_space.cost import model_cost
from search_space.genome import Genome, decode
from search_space.space import SearchSpace

CostFn = Callable[[Genome], Dict[str, int]]


def detector_cost_fn(space: SearchSpace, size: ModelSize = PROXY_SIZE,
                     input_size: int | None = None, num_classes: int = 91,
                     num_anchors: int = 9) -> CostFn:
    """Params and FLOPs of backbone plus RetinaNet head at `size` (the search proxy by default)
    on a square input (`size.input_size` unless given)."""
    pixels = size.input_size if input_size is None else input_size
    if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 1:
        raise ValueError(f"input_size: expected a positive integer, got {pixels!r}")

    def cost(genome: Genome) -> Dict[str, int]:
        backbone, head = model_cost(decode(genome, space, size.scaling), pixels, pixels,
                                    "retinanet", size.head_convs, size.head_filters,
                                    num_classes, num_anchors)
        total = backbone.total + head
        return {"params": total.params, "flops": total.flops}

    return cost

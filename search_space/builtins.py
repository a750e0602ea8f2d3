"""The published SpineNet family: the SpineNet-49 block table and the scaling table."""

from __future__ import annotations

import dataclasses
from typing import Dict

from search_space.genome import decode, seed_genome
from search_space.space import get_space
from search_space.spec import BOTTLENECK as B, RESIDUAL as R, BlockSpec, Scaling, SpineNetSpec

# (level, block_fn, parents, is_output): features 0 and 1 are the stem.
SPINENET_49_BLOCKS = tuple(BlockSpec(*row) for row in (
    (2, B, (0, 1), False),
    (4, R, (0, 1), False),
    (3, B, (2, 3), False),
    (4, B, (2, 4), False),
    (6, R, (3, 5), False),
    (4, B, (3, 5), False),
    (5, R, (6, 7), False),
    (7, R, (6, 8), False),
    (5, B, (8, 9), False),
    (5, B, (8, 10), False),
    (4, B, (5, 10), True),
    (3, B, (4, 10), True),
    (5, B, (7, 12), True),
    (7, B, (5, 14), True),
    (6, B, (12, 14), True),
))


@dataclasses.dataclass(frozen=True)
class ModelSize:
    """A row of the scaling table: backbone scaling plus the detector built around it."""

    scaling: Scaling
    head_convs: int
    head_filters: int
    input_size: int
    anchor_size: float


#                         endpoints  fss   alpha repeats  head  width  input anchor
MODEL_SIZES: Dict[str, ModelSize] = {
    "spinenet-49s": ModelSize(Scaling(128, 0.65, 0.5, 1), 4, 128, 640, 3.0),
    "spinenet-49": ModelSize(Scaling(256, 1.0, 0.5, 1), 4, 256, 640, 3.0),
    "spinenet-96": ModelSize(Scaling(256, 1.0, 0.5, 2), 4, 256, 1024, 3.0),
    "spinenet-143": ModelSize(Scaling(256, 1.0, 1.0, 3), 4, 256, 1280, 4.0),
    "spinenet-190": ModelSize(Scaling(512, 1.3, 1.0, 4), 7, 512, 1280, 4.0),
}

# The paper's search proxy: SpineNet-49 blocks at 0.25 width, alpha 0.25, 64-wide subnets, 512 px.
PROXY_SIZE = ModelSize(Scaling(64, 0.25, 0.25, 1), 4, 64, 512, 3.0)


# The search's starting point: the ResNet-50 seed genome decoded in the paper's space, at
# SpineNet-49's scaling.
RESNET50_SEED = "resnet50-seed"
BUILTIN_MODELS = (*MODEL_SIZES, RESNET50_SEED)


def model_size(name: str) -> ModelSize:
    """The scaling-table row of a built-in model (the seed has SpineNet-49's)."""
    _check_builtin(name)
    return MODEL_SIZES["spinenet-49" if name == RESNET50_SEED else name]


def builtin_spec(name: str) -> SpineNetSpec:
    """The spec of a built-in model, e.g. `spinenet-49` or `resnet50-seed`."""
    scaling = model_size(name).scaling
    if name == RESNET50_SEED:
        space = get_space("spinenet-49")
        return decode(seed_genome(space), space, scaling)
    return SpineNetSpec(blocks=SPINENET_49_BLOCKS, scaling=scaling)


def _check_builtin(name: str) -> None:
    if name not in BUILTIN_MODELS:
        raise KeyError(f"unknown model {name!r}; built-in models: {', '.join(BUILTIN_MODELS)}")

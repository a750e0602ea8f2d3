"""Counts of the traits in which SpineNet-49 differs from the ResNet-50 seed, read off a spec:
how far a searched network moved from a scale-decreased backbone toward a scale-permuted one."""

from __future__ import annotations

from typing import Dict

from search_space.spec import BOTTLENECK, RESIDUAL, STEM_LEVEL, SpineNetSpec

LEVEL_DROPS = "level_drops"
FAR_PARENTS = "far_parents"
HIGH_INTERMEDIATE = "high_intermediate"
TRAITS = {
    LEVEL_DROPS: "level drops between consecutive intermediate blocks",
    FAR_PARENTS: "parents two or more levels from their block",
    HIGH_INTERMEDIATE: "intermediate blocks at levels 6-7",
    RESIDUAL: "residual blocks",
    BOTTLENECK: "bottleneck blocks",
}


def traits(spec: SpineNetSpec) -> Dict[str, int]:
    """Each trait of `TRAITS` counted in `spec` (parents over every block, stem features at the
    stem's level)."""
    levels = [STEM_LEVEL] * spec.num_stem_blocks + [b.level for b in spec.blocks]
    intermediate = [b.level for b in spec.blocks if not b.is_output]
    return {
        LEVEL_DROPS: sum(b < a for a, b in zip(intermediate, intermediate[1:])),
        FAR_PARENTS: sum(abs(levels[p] - b.level) >= 2
                         for b in spec.blocks for p in b.input_offsets),
        HIGH_INTERMEDIATE: sum(level >= 6 for level in intermediate),
        RESIDUAL: sum(b.block_fn == RESIDUAL for b in spec.blocks),
        BOTTLENECK: sum(b.block_fn == BOTTLENECK for b in spec.blocks),
    }

"""Search-space definitions: what is fixed, what is searched, and how large the space is."""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, FrozenSet, Tuple

from search_space.spec import BLOCK_FNS, BOTTLENECK, MAX_BLOCK_LEVEL, MIN_BLOCK_LEVEL, SpecError

ORDER = "order"
CONNECTIONS = "connections"
ADJUSTMENTS = "adjustments"
DECISION_GROUPS = (ORDER, CONNECTIONS, ADJUSTMENTS)


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """A SpineNet search space over a fixed stem and a multiset of labelled blocks.

    Intermediate blocks are labelled by their base level (labels `0..n-1`); output blocks by
    their output level (labels `n..n+4`). Level offsets belong to intermediate labels and block
    types to every label, so a reordering moves a block together with its adjustments.
    """

    name: str
    intermediate_base_levels: Tuple[int, ...]
    output_levels: Tuple[int, ...] = (3, 4, 5, 6, 7)
    num_stem_blocks: int = 2
    level_offsets: Tuple[int, ...] = (-1, 0, 1, 2)
    block_fns: Tuple[str, ...] = BLOCK_FNS
    default_block_fn: str = BOTTLENECK
    parent_window: int = 5
    searched: FrozenSet[str] = frozenset(DECISION_GROUPS)
    level_range: Tuple[int, int] = (MIN_BLOCK_LEVEL, MAX_BLOCK_LEVEL)

    def __post_init__(self):
        object.__setattr__(self, "searched", frozenset(self.searched))
        unknown = self.searched - set(DECISION_GROUPS)
        if unknown:
            raise SpecError(f"searched: unknown decision group(s) {sorted(unknown)}; "
                            f"expected a subset of {DECISION_GROUPS}")
        lo, hi = self.level_range
        if not MIN_BLOCK_LEVEL <= lo <= hi <= MAX_BLOCK_LEVEL:
            raise SpecError(f"level_range: {self.level_range} is not inside "
                            f"{MIN_BLOCK_LEVEL}..{MAX_BLOCK_LEVEL}")
        for level in self.intermediate_base_levels:
            if not lo <= level <= hi:
                raise SpecError(f"intermediate_base_levels: level {level} is outside {lo}..{hi}")
        if sorted(self.output_levels) != list(range(min(self.output_levels),
                                                    max(self.output_levels) + 1)):
            raise SpecError(f"output_levels: {self.output_levels} must be consecutive levels")
        if 0 not in self.level_offsets:
            raise SpecError(f"level_offsets: {self.level_offsets} must contain 0")
        if self.default_block_fn not in self.block_fns:
            raise SpecError(f"default_block_fn: {self.default_block_fn!r} is not in {self.block_fns}")
        if self.parent_window < 2:
            raise SpecError(f"parent_window: must be >= 2, got {self.parent_window}")
        if self.num_stem_blocks < 2:
            raise SpecError(f"num_stem_blocks: must be >= 2, got {self.num_stem_blocks}")

    # -- shape of the genome ------------------------------------------------------------------
    @property
    def num_intermediate(self) -> int:
        return len(self.intermediate_base_levels)

    @property
    def num_outputs(self) -> int:
        return len(self.output_levels)

    @property
    def num_blocks(self) -> int:
        return self.num_intermediate + self.num_outputs

    @property
    def min_level(self) -> int:
        return min(self.output_levels)

    @property
    def max_level(self) -> int:
        return max(self.output_levels)

    def searches(self, group: str) -> bool:
        return group in self.searched

    def label_base_level(self, label: int) -> int:
        """The base level of an intermediate label, or the level of an output label."""
        if label < self.num_intermediate:
            return self.intermediate_base_levels[label]
        return self.output_levels[label - self.num_intermediate]

    def parent_choices(self, position: int) -> Tuple[int, ...]:
        """Feature indices a block at `position` (0-based in build order) may take as parents."""
        own = self.num_stem_blocks + position
        if position < self.num_intermediate:
            return tuple(range(max(0, own - self.parent_window), own))
        return tuple(range(own))

    @property
    def block_fn_choices(self) -> Tuple[str, ...]:
        """Block types a block may take: `block_fns`, or only the default where adjustments are
        not searched."""
        return self.block_fns if self.searches(ADJUSTMENTS) else (self.default_block_fn,)

    def offset_choices(self, label: int) -> Tuple[int, ...]:
        """Level offsets an intermediate label may take: those within `level_range`, or only 0
        where adjustments are not searched."""
        if not self.searches(ADJUSTMENTS):
            return (0,)
        lo, hi = self.level_range
        base = self.intermediate_base_levels[label]
        return tuple(o for o in self.level_offsets if lo <= base + o <= hi)

    # -- size ---------------------------------------------------------------------------------
    def size(self) -> Dict[str, int]:
        """Exact number of genomes per searched decision group and in all."""
        orders = math.factorial(self.num_intermediate) * math.factorial(self.num_outputs)
        connections = math.prod(math.comb(len(self.parent_choices(p)), 2)
                                for p in range(self.num_blocks))
        adjustments = (math.prod(len(self.offset_choices(lab)) for lab in range(self.num_intermediate))
                       * len(self.block_fns) ** self.num_blocks)
        groups = {ORDER: orders, CONNECTIONS: connections, ADJUSTMENTS: adjustments}
        sizes = {g: (groups[g] if self.searches(g) else 1) for g in DECISION_GROUPS}
        sizes["total"] = math.prod(sizes[g] for g in DECISION_GROUPS)
        return sizes


# R0-SP53: 2 L2 stem blocks; ResNet-50's other blocks permuted, one L5 block swapped for L6 + L7.
R0_SP53_INTERMEDIATE = (2, 3, 3, 3, 4, 4, 4, 4, 4, 5)

SPACES: Dict[str, SearchSpace] = {
    # The paper's SpineNet-49 search: order, connections and block adjustments.
    "spinenet-49": SearchSpace(name="spinenet-49", intermediate_base_levels=R0_SP53_INTERMEDIATE),
    # The ResNet-permutation search (R0-SP53): order and connections only, all bottlenecks.
    "r0-sp53": SearchSpace(name="r0-sp53", intermediate_base_levels=R0_SP53_INTERMEDIATE,
                           level_offsets=(0,), block_fns=(BOTTLENECK,),
                           searched=frozenset({ORDER, CONNECTIONS})),
}


def get_space(name: str) -> SearchSpace:
    if name not in SPACES:
        raise KeyError(f"unknown search space {name!r}; presets: {', '.join(SPACES)}")
    return SPACES[name]

"""The PPO policy's decision sequence for a search space: one step per searched decision, in
build order block by block, over one shared vocabulary, with the static part of each step's
mask; plus decoding a sampled sequence back into a genome.

Per block position: its base level (intermediate) or output label (output) when the order is
searched; its level offset (intermediate) and block type when adjustments are; its two parents
when connections are. Base levels are drawn with counts (a permutation of the multiset), which
is equivalent to a permutation of labels up to same-level swaps that build the same network.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence, Tuple

import numpy as np

from search_space.genome import Genome, position_labels, seed_genome
from search_space.space import ADJUSTMENTS, CONNECTIONS, ORDER, SearchSpace

LEVEL, OUTPUT, OFFSET, BLOCK_FN, PARENT1, PARENT2 = range(6)


@dataclasses.dataclass(frozen=True, eq=False)
class DecisionTable:
    """Static description of the decision steps (arrays indexed by step `t`)."""

    space: SearchSpace
    levels: Tuple[int, ...]       # distinct intermediate base levels, sorted
    level_counts: np.ndarray      # [L] blocks per base level
    offset_ok: np.ndarray         # [L, n_offsets] which offsets each base level allows
    starts: Tuple[int, ...]       # vocabulary start of each step kind's slice
    vocab: int
    kinds: np.ndarray             # [T]
    positions: np.ndarray         # [T]
    static_mask: np.ndarray       # [T, vocab]
    static_level: np.ndarray      # [T] base-level index fixed by the space, or -1 if sampled

    @property
    def num_steps(self) -> int:
        return len(self.kinds)

    @property
    def num_features(self) -> int:
        return self.space.num_stem_blocks + self.space.num_blocks - 1

    def encode(self, genome: Genome) -> Tuple[int, ...]:
        """The vocabulary ids that decode to `genome`'s network (parents in sorted order)."""
        space, labels = self.space, position_labels(genome, self.space)
        local = {
            LEVEL: lambda p: self.levels.index(space.intermediate_base_levels[labels[p]]),
            OUTPUT: lambda p: labels[p] - space.num_intermediate,
            OFFSET: lambda p: space.level_offsets.index(genome.level_offsets[labels[p]]),
            BLOCK_FN: lambda p: space.block_fns.index(genome.block_fns[labels[p]]),
            PARENT1: lambda p: genome.parents[p][0],
            PARENT2: lambda p: genome.parents[p][1],
        }
        return tuple(self.starts[kind] + local[kind](int(p))
                     for kind, p in zip(self.kinds, self.positions))

    def decode(self, actions: Sequence[int]) -> Genome:
        """The genome a sequence of vocabulary ids stands for."""
        space, seed = self.space, seed_genome(self.space)
        n = space.num_intermediate
        chosen = {}  # (position, kind) -> local choice
        for t, action in enumerate(actions):
            kind = int(self.kinds[t])
            chosen[int(self.positions[t]), kind] = int(action) - self.starts[kind]
        free = {lv: [lab for lab in range(n) if space.intermediate_base_levels[lab] == lv]
                for lv in self.levels}
        order, outputs = [], []
        offsets, fns, parents = [0] * n, list(seed.block_fns), list(seed.parents)
        for p in range(space.num_blocks):
            if p < n:
                label = (free[self.levels[chosen[p, LEVEL]]].pop(0) if space.searches(ORDER)
                         else seed.intermediate_order[p])
                order.append(label)
                if space.searches(ADJUSTMENTS):
                    offsets[label] = space.level_offsets[chosen[p, OFFSET]]
            else:
                out = chosen[p, OUTPUT] if space.searches(ORDER) else seed.output_order[p - n]
                outputs.append(out)
                label = n + out
            if space.searches(ADJUSTMENTS):
                fns[label] = space.block_fns[chosen[p, BLOCK_FN]]
            if space.searches(CONNECTIONS):
                parents[p] = tuple(sorted((chosen[p, PARENT1], chosen[p, PARENT2])))
        return Genome(tuple(order), tuple(outputs), tuple(parents), tuple(offsets), tuple(fns))


@functools.lru_cache(maxsize=None)
def decision_table(space: SearchSpace) -> DecisionTable:
    """The decision steps of `space` (cached: spaces are frozen)."""
    if not space.searched:
        raise ValueError(f"space.searched: search space {space.name!r} searches nothing")
    levels = tuple(sorted(set(space.intermediate_base_levels)))
    sizes = (len(levels), space.num_outputs, len(space.level_offsets), len(space.block_fns),
             space.num_stem_blocks + space.num_blocks - 1)
    starts = tuple(int(x) for x in np.cumsum((0,) + sizes[:-1]))
    starts = starts + (starts[-1],)  # the second parent shares the parents' slice
    vocab = sum(sizes)
    seed = seed_genome(space)
    kinds, positions, masks, static_level = [], [], [], []

    def add(kind, position, allowed, level=-1):
        mask = np.zeros(vocab, bool)
        mask[[starts[kind] + a for a in allowed]] = True
        kinds.append(kind), positions.append(position), masks.append(mask)
        static_level.append(level)

    for p in range(space.num_blocks):
        intermediate = p < space.num_intermediate
        fixed = (-1 if space.searches(ORDER) or not intermediate else
                 levels.index(space.intermediate_base_levels[seed.intermediate_order[p]]))
        if space.searches(ORDER):
            add(LEVEL, p, range(len(levels))) if intermediate else add(OUTPUT, p, range(sizes[1]))
        if space.searches(ADJUSTMENTS):
            if intermediate:
                add(OFFSET, p, range(sizes[2]), fixed)
            add(BLOCK_FN, p, range(sizes[3]))
        if space.searches(CONNECTIONS):
            for kind in (PARENT1, PARENT2):
                add(kind, p, space.parent_choices(p))
    lo, hi = space.level_range
    offset_ok = np.array([[lo <= lv + o <= hi for o in space.level_offsets] for lv in levels])
    counts = np.array([space.intermediate_base_levels.count(lv) for lv in levels])
    return DecisionTable(space, levels, counts, offset_ok, starts, vocab, np.array(kinds),
                         np.array(positions), np.stack(masks), np.array(static_level))

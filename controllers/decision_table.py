"""The PPO policy's decision sequence for a search space: one step per decision of the network
it builds, in build order block by block, over one shared vocabulary, with the static part of
each step's mask; plus encoding a genome as such a sequence and decoding one back.

Per block position: its level (intermediate, when the order or the adjustments are searched)
or its output label (output, when the order is); its block type when adjustments are searched;
its two parents when connections are. These are the decisions `search_space.distance` counts,
one step each, so each is learned on its own. Which intermediate block (base level and offset)
stands at a position is worked out when decoding; the dynamic mask keeps the levels chosen so
far matchable to distinct blocks (Hall's condition over every set of levels).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Sequence, Tuple

import numpy as np

from search_space.genome import Genome, block_level, decode, position_labels, seed_genome
from search_space.encode import genome_from_spec
from search_space.space import ADJUSTMENTS, CONNECTIONS, ORDER, SearchSpace
from search_space.spec import BlockSpec

LEVEL, OUTPUT, BLOCK_FN, PARENT1, PARENT2 = range(5)


@dataclasses.dataclass(frozen=True, eq=False)
class DecisionTable:
    """Static description of the decision steps (arrays indexed by step `t`)."""

    space: SearchSpace
    levels: Tuple[int, ...]       # levels an intermediate block can take, sorted
    level_sets: np.ndarray        # [S, L] every non-empty set of levels (Hall's condition)
    level_set_room: np.ndarray    # [S] intermediate blocks that can take a level of the set
    match_levels: bool            # the order is searched: levels must stay matchable
    starts: Tuple[int, ...]       # vocabulary start of each step kind's slice
    vocab: int
    kinds: np.ndarray             # [T]
    positions: np.ndarray         # [T]
    static_mask: np.ndarray       # [T, vocab]

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
            LEVEL: lambda p: self.levels.index(block_level(genome, space, labels[p])),
            OUTPUT: lambda p: labels[p] - space.num_intermediate,
            BLOCK_FN: lambda p: space.block_fns.index(genome.block_fns[labels[p]]),
            PARENT1: lambda p: genome.parents[p][0],
            PARENT2: lambda p: genome.parents[p][1],
        }
        return tuple(self.starts[kind] + local[kind](int(p))
                     for kind, p in zip(self.kinds, self.positions))

    def decode(self, actions: Sequence[int]) -> Genome:
        """A genome that builds the network a sequence of vocabulary ids stands for."""
        space = self.space
        seed = decode(seed_genome(space), space)  # what the space does not search
        chosen = {}  # (position, kind) -> local choice
        for t, action in enumerate(actions):
            kind = int(self.kinds[t])
            chosen[int(self.positions[t]), kind] = int(action) - self.starts[kind]
        blocks = []
        for p, block in enumerate(seed.blocks):
            level = (self.levels[chosen[p, LEVEL]] if (p, LEVEL) in chosen else
                     space.output_levels[chosen[p, OUTPUT]] if (p, OUTPUT) in chosen else
                     block.level)
            fn = space.block_fns[chosen[p, BLOCK_FN]] if (p, BLOCK_FN) in chosen else block.block_fn
            parents = ((chosen[p, PARENT1], chosen[p, PARENT2]) if (p, PARENT1) in chosen
                       else block.input_offsets)
            blocks.append(BlockSpec(level, fn, tuple(sorted(parents)), block.is_output))
        return genome_from_spec(dataclasses.replace(seed, blocks=tuple(blocks)), space)


def _label_levels(space: SearchSpace, label: int) -> Tuple[int, ...]:
    offsets = space.offset_choices(label)
    return tuple(space.intermediate_base_levels[label] + o for o in offsets)


@functools.lru_cache(maxsize=None)
def decision_table(space: SearchSpace) -> DecisionTable:
    """The decision steps of `space` (cached: spaces are frozen)."""
    if not space.searched:
        raise ValueError(f"space.searched: search space {space.name!r} searches nothing")
    n = space.num_intermediate
    reach = [set(_label_levels(space, lab)) for lab in range(n)]
    levels = tuple(sorted(set().union(*reach)))
    sizes = (len(levels), space.num_outputs, len(space.block_fns),
             space.num_stem_blocks + space.num_blocks - 1)
    starts = tuple(int(x) for x in np.cumsum((0,) + sizes[:-1]))
    starts = starts + (starts[-1],)  # the second parent shares the parents' slice
    vocab = sum(sizes)
    seed = seed_genome(space)
    kinds, positions, masks = [], [], []

    def add(kind, position, allowed):
        mask = np.zeros(vocab, bool)
        mask[[starts[kind] + a for a in allowed]] = True
        kinds.append(kind), positions.append(position), masks.append(mask)

    for p in range(space.num_blocks):
        if p < n and (space.searches(ORDER) or space.searches(ADJUSTMENTS)):
            own = set(levels) if space.searches(ORDER) else reach[seed.intermediate_order[p]]
            add(LEVEL, p, [levels.index(lv) for lv in sorted(own)])
        if p >= n and space.searches(ORDER):
            add(OUTPUT, p, range(sizes[1]))
        if space.searches(ADJUSTMENTS):
            add(BLOCK_FN, p, range(sizes[2]))
        if space.searches(CONNECTIONS):
            for kind in (PARENT1, PARENT2):
                add(kind, p, space.parent_choices(p))
    subsets = [s for r in range(1, len(levels) + 1)
               for s in itertools.combinations(range(len(levels)), r)]
    level_sets = np.zeros((len(subsets), len(levels)), bool)
    for i, s in enumerate(subsets):
        level_sets[i, list(s)] = True
    room = np.array([sum(any(levels[j] in r for j in s) for r in reach) for s in subsets])
    return DecisionTable(space, levels, level_sets, room, space.searches(ORDER), starts, vocab,
                         np.array(kinds), np.array(positions), np.stack(masks))

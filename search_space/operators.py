"""Variation operators on genomes: mutations that always change a searched decision, crossover."""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Tuple

import numpy as np

from search_space.genome import Genome
from search_space.space import ADJUSTMENTS, CONNECTIONS, ORDER, SearchSpace


def _swap(seq: Tuple[int, ...], i: int, j: int) -> Tuple[int, ...]:
    out = list(seq)
    out[i], out[j] = out[j], out[i]
    return tuple(out)


def reorder_intermediate(genome: Genome, space: SearchSpace, rng: np.random.Generator):
    """Swaps two intermediate blocks of different base levels (None if all share one level)."""
    bases = [space.intermediate_base_levels[lab] for lab in genome.intermediate_order]
    pairs = [(i, j) for i in range(len(bases)) for j in range(i + 1, len(bases)) if bases[i] != bases[j]]
    if not pairs:
        return None
    i, j = pairs[rng.integers(len(pairs))]
    return dataclasses.replace(genome, intermediate_order=_swap(genome.intermediate_order, i, j))


def reorder_outputs(genome: Genome, space: SearchSpace, rng: np.random.Generator):
    """Swaps two output blocks."""
    if space.num_outputs < 2:
        return None
    i, j = rng.choice(space.num_outputs, size=2, replace=False)
    return dataclasses.replace(genome, output_order=_swap(genome.output_order, int(i), int(j)))


def repick_parent(genome: Genome, space: SearchSpace, rng: np.random.Generator):
    """Replaces one parent of one block by another allowed feature."""
    movable = [p for p in range(space.num_blocks) if len(space.parent_choices(p)) > 2]
    if not movable:
        return None
    position = movable[rng.integers(len(movable))]
    pair = genome.parents[position]
    keep = pair[rng.integers(2)]
    options = [f for f in space.parent_choices(position) if f not in pair]
    new = options[rng.integers(len(options))]
    parents = list(genome.parents)
    parents[position] = tuple(sorted((keep, new)))
    return dataclasses.replace(genome, parents=tuple(parents))


def change_level_offset(genome: Genome, space: SearchSpace, rng: np.random.Generator):
    """Gives one intermediate block another level offset."""
    labels = [lab for lab in range(space.num_intermediate) if len(space.offset_choices(lab)) > 1]
    if not labels:
        return None
    label = labels[rng.integers(len(labels))]
    options = [o for o in space.offset_choices(label) if o != genome.level_offsets[label]]
    offsets = list(genome.level_offsets)
    offsets[label] = options[rng.integers(len(options))]
    return dataclasses.replace(genome, level_offsets=tuple(offsets))


def flip_block_type(genome: Genome, space: SearchSpace, rng: np.random.Generator):
    """Gives one block another block type."""
    if len(space.block_fns) < 2:
        return None
    label = int(rng.integers(space.num_blocks))
    options = [fn for fn in space.block_fns if fn != genome.block_fns[label]]
    fns = list(genome.block_fns)
    fns[label] = options[rng.integers(len(options))]
    return dataclasses.replace(genome, block_fns=tuple(fns))


MUTATIONS: Dict[str, Tuple[str, Callable]] = {
    "reorder_intermediate": (ORDER, reorder_intermediate),
    "reorder_outputs": (ORDER, reorder_outputs),
    "repick_parent": (CONNECTIONS, repick_parent),
    "change_level_offset": (ADJUSTMENTS, change_level_offset),
    "flip_block_type": (ADJUSTMENTS, flip_block_type),
}


def mutate(genome: Genome, space: SearchSpace, rng: np.random.Generator) -> Genome:
    """Applies one mutation drawn uniformly among those that can change a searched decision."""
    names = [name for name, (group, _) in MUTATIONS.items() if space.searches(group)]
    for k in rng.permutation(len(names)):
        child = MUTATIONS[names[k]][1](genome, space, rng)
        if child is not None:
            return child
    raise ValueError(f"search space {space.name!r} has no decision a mutation can change")


def crossover(a: Genome, b: Genome, space: SearchSpace, rng: np.random.Generator) -> Genome:
    """Uniform crossover: orders whole from either parent, every other decision from either."""
    def pick(x, y):
        return x if rng.random() < 0.5 else y

    return Genome(
        intermediate_order=pick(a.intermediate_order, b.intermediate_order),
        output_order=pick(a.output_order, b.output_order),
        parents=tuple(pick(x, y) for x, y in zip(a.parents, b.parents)),
        level_offsets=tuple(pick(x, y) for x, y in zip(a.level_offsets, b.level_offsets)),
        block_fns=tuple(pick(x, y) for x, y in zip(a.block_fns, b.block_fns)),
    )


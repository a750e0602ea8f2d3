"""Variation operators on genomes: mutations that change one decision of the decoded network
(a block's level, its type, or one of its parents), crossover.

Mutations work on what a genome builds, position by position, as `distance` counts it: a block
keeps its type where it stands when it trades places with another, so a level change does not
also move two types. A hill climber then sees every decision on its own.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from search_space.distance import LEVELS, PARENTS, TYPES
from search_space.genome import Genome, block_level, decode, position_labels
from search_space.hashing import canonical_hash
from search_space.space import ADJUSTMENTS, CONNECTIONS, ORDER, SearchSpace


def _swap(seq: Tuple, i: int, j: int) -> Tuple:
    out = list(seq)
    out[i], out[j] = out[j], out[i]
    return tuple(out)


def _replace(seq: Tuple, i: int, value) -> Tuple:
    return seq[:i] + (value,) + seq[i + 1:]


def _closest(options: Tuple[int, ...], wanted: int) -> int:
    return min(options, key=lambda o: (abs(o - wanted), o))


def _level_moves(genome: Genome, space: SearchSpace, position: int):
    """Every way to give the block at `position` another level, as (level, cost, move): the
    move is (other position or None, offset of the other block's label, offset of this block's
    label); cost counts the other position's level when it cannot be kept."""
    labels, n = position_labels(genome, space), space.num_intermediate
    label = labels[position]
    current = block_level(genome, space, label)
    moves = []
    if position >= n:  # output levels belong to output labels: only trading places moves them
        if space.searches(ORDER):
            moves = [(block_level(genome, space, labels[q]), 1, (q, 0, 0))
                     for q in range(n, space.num_blocks) if q != position]
        return moves
    base = space.intermediate_base_levels
    for offset in space.offset_choices(label):
        if base[label] + offset != current:
            moves.append((base[label] + offset, 0, (None, 0, offset)))
    if not space.searches(ORDER):
        return moves
    for q in range(n):
        other = labels[q]
        if q == position or base[other] == base[label]:
            continue
        kept = block_level(genome, space, other)  # the level at q, which `label` should keep
        own = _closest(space.offset_choices(label), kept - base[label])
        for offset in space.offset_choices(other):
            if base[other] + offset != current:
                moves.append((base[other] + offset, int(base[label] + own != kept),
                              (q, offset, own)))
    return moves


def change_level(genome: Genome, space: SearchSpace, rng: np.random.Generator,
                 position: int) -> Optional[Genome]:
    """Gives the block at `position` another level, drawn uniformly among those it can take:
    by its level offset, or by trading places with a block that can take the level (each keeps
    the type where it stands, and the moved block the other place's level where its offsets
    allow). Among ways to one level, only those that change least are drawn."""
    moves = _level_moves(genome, space, position)
    if not moves:
        return None
    levels = sorted({level for level, _, _ in moves})
    level = levels[rng.integers(len(levels))]
    ways = [(cost, move) for lv, cost, move in moves if lv == level]
    least = min(cost for cost, _ in ways)
    ways = [move for cost, move in ways if cost == least]
    q, other_offset, own_offset = ways[rng.integers(len(ways))]
    labels, n = position_labels(genome, space), space.num_intermediate
    label = labels[position]
    if q is None:
        return dataclasses.replace(genome, level_offsets=_replace(genome.level_offsets, label,
                                                                 own_offset))
    fns = _swap(genome.block_fns, label, labels[q])  # types stay where they stand
    if position >= n:
        return dataclasses.replace(genome, block_fns=fns, output_order=_swap(
            genome.output_order, position - n, q - n))
    offsets = _replace(_replace(genome.level_offsets, labels[q], other_offset), label, own_offset)
    return dataclasses.replace(genome, block_fns=fns, level_offsets=offsets,
                               intermediate_order=_swap(genome.intermediate_order, position, q))


def change_type(genome: Genome, space: SearchSpace, rng: np.random.Generator,
                position: int) -> Optional[Genome]:
    """Gives the block at `position` another block type."""
    if not space.searches(ADJUSTMENTS) or len(space.block_fns) < 2:
        return None
    label = position_labels(genome, space)[position]
    options = [fn for fn in space.block_fns if fn != genome.block_fns[label]]
    return dataclasses.replace(genome, block_fns=_replace(genome.block_fns, label,
                                                          options[rng.integers(len(options))]))


def change_parent(genome: Genome, space: SearchSpace, rng: np.random.Generator,
                  position: int) -> Optional[Genome]:
    """Replaces one parent of the block at `position` by another allowed feature."""
    options = [f for f in space.parent_choices(position) if f not in genome.parents[position]]
    if not space.searches(CONNECTIONS) or not options:
        return None
    pair = genome.parents[position]
    keep = pair[rng.integers(2)]
    new = options[rng.integers(len(options))]
    return dataclasses.replace(genome, parents=_replace(genome.parents, position,
                                                        tuple(sorted((keep, new)))))


MUTATIONS: Dict[str, Callable] = {LEVELS: change_level, PARENTS: change_parent, TYPES: change_type}


@functools.lru_cache(maxsize=None)
def _decisions(space: SearchSpace) -> Tuple[Tuple[str, int], ...]:
    """(group, position) of every decision `distance` counts (a parent pair counts twice)."""
    out = [(LEVELS, p) for p in range(space.num_blocks)]
    out += [(TYPES, p) for p in range(space.num_blocks)]
    out += [(PARENTS, p) for p in range(space.num_blocks) for _ in range(2)]
    return tuple(out)


def mutate(genome: Genome, space: SearchSpace, rng: np.random.Generator) -> Genome:
    """Changes one decision drawn uniformly among those that can change (a level change that
    needs two blocks to trade places may change the other's level too)."""
    decisions = _decisions(space)
    for k in rng.permutation(len(decisions)):
        group, position = decisions[k]
        child = MUTATIONS[group](genome, space, rng, position)
        if child is not None:
            return child
    raise ValueError(f"search space {space.name!r} has no decision a mutation can change")


def distinct_mutants(genome: Genome, space: SearchSpace, wanted: int,
                     rng: np.random.Generator, exclude: Sequence[Genome] = ()) -> List[Genome]:
    """Up to `wanted` single mutants of `genome`, distinct as networks from each other and from
    `exclude` (fewer only where 100 draws a mutant found no more)."""
    seen = {canonical_hash(decode(g, space)) for g in exclude}
    mutants: List[Genome] = []
    for _ in range(100 * wanted):
        if len(mutants) == wanted:
            break
        child = mutate(genome, space, rng)
        key = canonical_hash(decode(child, space))
        if key not in seen:
            seen.add(key)
            mutants.append(child)
    return mutants


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

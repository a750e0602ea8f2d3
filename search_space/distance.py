"""Per-decision comparison of genomes, by what they build, for reporting how close a search
came to a target.

Decisions are read off the decoded blocks position by position: each block's level (set by the
order and the level offsets together), its two parents and its type. Two genomes at distance 0
decode to the same spec, however their labels are permuted.
"""

from __future__ import annotations

from typing import Dict

from search_space.genome import Genome, block_level, position_labels
from search_space.space import ADJUSTMENTS, CONNECTIONS, ORDER, SearchSpace

LEVELS = "levels"
PARENTS = "parents"
TYPES = "block_fns"


def _groups(space: SearchSpace):
    """The decision groups a space searches, with the number of decisions in each."""
    groups = {}
    if space.searches(ORDER) or space.searches(ADJUSTMENTS):
        groups[LEVELS] = space.num_blocks
    if space.searches(CONNECTIONS):
        groups[PARENTS] = 2 * space.num_blocks
    if space.searches(ADJUSTMENTS):
        groups[TYPES] = space.num_blocks
    return groups


def decisions(genome: Genome, space: SearchSpace) -> Dict[str, tuple]:
    """Per searched group, the decided value at each block position."""
    labels = position_labels(genome, space)
    values = {
        LEVELS: tuple(block_level(genome, space, lab) for lab in labels),
        PARENTS: tuple(frozenset(p) for p in genome.parents),
        TYPES: tuple(genome.block_fns[lab] for lab in labels),
    }
    return {g: values[g] for g in _groups(space)}


def num_decisions(space: SearchSpace) -> int:
    """Decisions counted by `distance`: a level and a type per block, two parents per block."""
    return sum(_groups(space).values())


def distance(a: Genome, b: Genome, space: SearchSpace) -> Dict[str, int]:
    """Decisions that differ, per searched group and in total (each parent counts once)."""
    da, db = decisions(a, space), decisions(b, space)
    out = {}
    for group in da:
        if group == PARENTS:
            out[group] = sum(2 - len(x & y) for x, y in zip(da[group], db[group]))
        else:
            out[group] = sum(x != y for x, y in zip(da[group], db[group]))
    out["total"] = sum(out.values())
    return out


def similarity(a: Genome, b: Genome, space: SearchSpace) -> float:
    """Fraction of decisions on which `a` agrees with `b` (1.0: the same spec)."""
    return 1.0 - distance(a, b, space)["total"] / num_decisions(space)

"""Per-decision comparison of genomes, for reporting how close a search came to a target."""

from __future__ import annotations

from typing import Dict

from search_space.genome import Genome, block_level, position_labels
from search_space.space import ADJUSTMENTS, CONNECTIONS, DECISION_GROUPS, ORDER, SearchSpace


def decisions(genome: Genome, space: SearchSpace) -> Dict[str, tuple]:
    """The decisions of each searched group, read by position so that swapping two blocks of
    the same base level changes nothing."""
    labels = position_labels(genome, space)
    n = space.num_intermediate
    groups = {
        ORDER: tuple(space.label_base_level(lab) for lab in labels),
        CONNECTIONS: tuple(frozenset(p) for p in genome.parents),
        ADJUSTMENTS: (tuple(block_level(genome, space, lab) - space.label_base_level(lab)
                            for lab in labels[:n])
                      + tuple(genome.block_fns[lab] for lab in labels)),
    }
    return {g: v for g, v in groups.items() if space.searches(g)}


def num_decisions(space: SearchSpace) -> int:
    """Decisions counted by `distance`: one per position, two per parent pair, one per
    intermediate offset and per block type."""
    per_group = {ORDER: space.num_blocks, CONNECTIONS: 2 * space.num_blocks,
                 ADJUSTMENTS: space.num_intermediate + space.num_blocks}
    return sum(per_group[g] for g in DECISION_GROUPS if space.searches(g))


def distance(a: Genome, b: Genome, space: SearchSpace) -> Dict[str, int]:
    """Decisions that differ, per searched group and in total (a parent counts once)."""
    da, db = decisions(a, space), decisions(b, space)
    out = {}
    for group in da:
        if group == CONNECTIONS:
            out[group] = sum(2 - len(x & y) for x, y in zip(da[group], db[group]))
        else:
            out[group] = sum(x != y for x, y in zip(da[group], db[group]))
    out["total"] = sum(out.values())
    return out


def similarity(a: Genome, b: Genome, space: SearchSpace) -> float:
    """Fraction of decisions on which `a` agrees with `b` (1.0: same architecture choices)."""
    return 1.0 - distance(a, b, space)["total"] / num_decisions(space)

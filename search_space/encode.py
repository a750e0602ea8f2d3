"""`genome_from_spec`: the inverse of decoding, for importing published or exported specs."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from search_space.genome import Genome
from search_space.space import ADJUSTMENTS, CONNECTIONS, ORDER, SearchSpace
from search_space.spec import SpecError, SpineNetSpec

_INFEASIBLE = 1e9


def _fail(space: SearchSpace, k: int, block, why: str) -> SpecError:
    return SpecError(f"block {k} {block.level, block.block_fn, block.input_offsets, block.is_output}"
                     f" cannot be expressed in search space {space.name!r}: {why}")


def _assign_intermediate(spec: SpineNetSpec, space: SearchSpace):
    """Matches intermediate positions to labels, preferring small level offsets."""
    n = space.num_intermediate
    offsets_allowed = [space.offset_choices(lab) for lab in range(n)]
    seed_bases = sorted(space.intermediate_base_levels)
    cost = np.full((n, n), _INFEASIBLE)
    for k in range(n):
        for lab in range(n):
            if not space.searches(ORDER) and space.intermediate_base_levels[lab] != seed_bases[k]:
                continue
            offset = spec.blocks[k].level - space.intermediate_base_levels[lab]
            if offset in offsets_allowed[lab]:
                cost[k, lab] = abs(offset)
    # The first position whose prefix admits no complete matching is the one to blame.
    for last in range(n):
        rows, cols = linear_sum_assignment(cost[:last + 1])
        if cost[rows, cols].sum() >= _INFEASIBLE:
            block = spec.blocks[last]
            offsets = list(space.level_offsets) if space.searches(ADJUSTMENTS) else [0]
            fixed = "" if space.searches(ORDER) else "; the order is fixed"
            raise _fail(space, last, block, f"no intermediate block of base levels {seed_bases} "
                                             f"reaches level {block.level} with offsets {offsets} "
                                             f"alongside the blocks before it{fixed}")
    return tuple(int(c) for c in cols)


def genome_from_spec(spec: SpineNetSpec, space: SearchSpace) -> Genome:
    """A genome that decodes to exactly `spec` (scaling aside), or a `SpecError` naming the first
    block that `space` cannot express."""
    if spec.num_stem_blocks != space.num_stem_blocks:
        raise SpecError(f"num_stem_blocks: spec has {spec.num_stem_blocks}, search space {space.name!r} "
                        f"has {space.num_stem_blocks}")
    if (spec.min_level, spec.max_level) != (space.min_level, space.max_level):
        raise SpecError(f"min_level/max_level: spec outputs {spec.min_level}..{spec.max_level}, "
                        f"search space {space.name!r} outputs {space.min_level}..{space.max_level}")
    if len(spec.blocks) != space.num_blocks:
        raise SpecError(f"blocks: spec has {len(spec.blocks)} blocks, search space {space.name!r} has "
                        f"{space.num_blocks}")
    n = space.num_intermediate
    fns_allowed = space.block_fn_choices
    for k, block in enumerate(spec.blocks):
        # A valid spec has exactly the space's number of outputs, so an output too early is
        # the only way the roles can differ.
        if block.is_output and k < n:
            raise _fail(space, k, block, f"it is an output block, but the space builds {n} "
                                         f"intermediate blocks and then {space.num_outputs} outputs")
        if block.block_fn not in fns_allowed:
            raise _fail(space, k, block, f"block type {block.block_fn!r} is not one of {fns_allowed}")
        allowed = space.parent_choices(k)
        pair = tuple(sorted(block.input_offsets))
        if not set(pair) <= set(allowed) or (not space.searches(CONNECTIONS)
                                              and pair != (allowed[-2], allowed[-1])):
            rule = (f"parents must be among features {allowed[0]}..{allowed[-1]}"
                    if space.searches(CONNECTIONS) else "parents must be the two latest features")
            raise _fail(space, k, block, f"parents {block.input_offsets}: {rule}")
    labels = _assign_intermediate(spec, space)
    outputs = spec.blocks[n:]
    seed_outputs = sorted(space.output_levels)
    for k, block in enumerate(outputs, start=n):
        if not space.searches(ORDER) and block.level != seed_outputs[k - n]:
            raise _fail(space, k, block, f"the output order is fixed to levels {seed_outputs}")
    output_order = tuple(space.output_levels.index(block.level) for block in outputs)
    block_of = {lab: spec.blocks[k] for k, lab in enumerate(labels)}
    block_of.update({n + out: block for out, block in zip(output_order, outputs)})
    return Genome(intermediate_order=labels, output_order=output_order,
                  parents=tuple(tuple(sorted(b.input_offsets)) for b in spec.blocks),
                  level_offsets=tuple(block_of[lab].level - space.intermediate_base_levels[lab]
                                      for lab in range(n)),
                  block_fns=tuple(block_of[lab].block_fn for lab in range(space.num_blocks)))

"""Genomes: the decisions of a search space, their decoding to specs, sampling and the seed."""

from __future__ import annotations

import dataclasses
from typing import Tuple

import numpy as np

from search_space.space import ADJUSTMENTS, CONNECTIONS, ORDER, SearchSpace
from search_space.spec import BlockSpec, Scaling, SpecError, SpineNetSpec


@dataclasses.dataclass(frozen=True)
class Genome:
    """The decisions of one architecture.

    intermediate_order: intermediate labels in build order (a permutation).
    output_order: output labels (0-based among outputs) in build order (a permutation).
    parents: per block position, the sorted pair of parent feature indices.
    level_offsets: per intermediate label, the shift of its base level.
    block_fns: per label (intermediate labels, then output labels), the block type.
    """

    intermediate_order: Tuple[int, ...]
    output_order: Tuple[int, ...]
    parents: Tuple[Tuple[int, int], ...]
    level_offsets: Tuple[int, ...]
    block_fns: Tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "intermediate_order": list(self.intermediate_order),
            "output_order": list(self.output_order),
            "parents": [list(p) for p in self.parents],
            "level_offsets": list(self.level_offsets),
            "block_fns": list(self.block_fns),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Genome":
        try:
            return cls(
                intermediate_order=tuple(int(x) for x in data["intermediate_order"]),
                output_order=tuple(int(x) for x in data["output_order"]),
                parents=tuple(tuple(sorted(int(x) for x in p)) for p in data["parents"]),
                level_offsets=tuple(int(x) for x in data["level_offsets"]),
                block_fns=tuple(str(x) for x in data["block_fns"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise SpecError(f"genome: malformed genome data ({err!r})") from err


def validate_genome(genome: Genome, space: SearchSpace) -> None:
    """Raises `SpecError` naming the first decision that `space` does not allow."""
    n_int, n_out = space.num_intermediate, space.num_outputs
    if sorted(genome.intermediate_order) != list(range(n_int)):
        raise SpecError(f"genome.intermediate_order: {genome.intermediate_order} is not a "
                        f"permutation of 0..{n_int - 1}")
    if sorted(genome.output_order) != list(range(n_out)):
        raise SpecError(f"genome.output_order: {genome.output_order} is not a permutation of "
                        f"0..{n_out - 1}")
    if len(genome.parents) != space.num_blocks:
        raise SpecError(f"genome.parents: expected {space.num_blocks} pairs, got {len(genome.parents)}")
    for position, pair in enumerate(genome.parents):
        allowed = space.parent_choices(position)
        if len(pair) != 2 or pair[0] >= pair[1] or not set(pair) <= set(allowed):
            raise SpecError(f"genome.parents[{position}]: {pair} is not a sorted pair of distinct "
                            f"features among {allowed[0]}..{allowed[-1]}")
    if len(genome.level_offsets) != n_int:
        raise SpecError(f"genome.level_offsets: expected {n_int} offsets, got "
                        f"{len(genome.level_offsets)}")
    for label, offset in enumerate(genome.level_offsets):
        allowed = space.offset_choices(label)
        if offset not in allowed:
            raise SpecError(f"genome.level_offsets[{label}]: {offset} is not one of {allowed}")
    if len(genome.block_fns) != space.num_blocks:
        raise SpecError(f"genome.block_fns: expected {space.num_blocks} types, got "
                        f"{len(genome.block_fns)}")
    for label, fn in enumerate(genome.block_fns):
        allowed = space.block_fn_choices
        if fn not in allowed:
            raise SpecError(f"genome.block_fns[{label}]: {fn!r} is not one of {allowed}")
    seed = seed_genome(space)
    if not space.searches(ORDER):
        bases = [space.intermediate_base_levels[lab] for lab in genome.intermediate_order]
        seed_bases = [space.intermediate_base_levels[lab] for lab in seed.intermediate_order]
        if bases != seed_bases or genome.output_order != seed.output_order:
            raise SpecError(f"genome.intermediate_order/output_order: the order is not searched in "
                            f"{space.name!r} and must stay scale-decreasing")
    if not space.searches(CONNECTIONS) and genome.parents != seed.parents:
        raise SpecError(f"genome.parents: connections are not searched in {space.name!r}; each "
                        f"block must take the two latest features")


def position_labels(genome: Genome, space: SearchSpace) -> Tuple[int, ...]:
    """The label of the block at each position, outputs after intermediates."""
    return genome.intermediate_order + tuple(space.num_intermediate + o for o in genome.output_order)


def block_level(genome: Genome, space: SearchSpace, label: int) -> int:
    if label < space.num_intermediate:
        return space.intermediate_base_levels[label] + genome.level_offsets[label]
    return space.label_base_level(label)


def decode(genome: Genome, space: SearchSpace, scaling: Scaling = Scaling()) -> SpineNetSpec:
    """The spec a genome stands for (deterministic; validates the genome first)."""
    validate_genome(genome, space)
    blocks = tuple(
        BlockSpec(level=block_level(genome, space, label), block_fn=genome.block_fns[label],
                  input_offsets=genome.parents[position],
                  is_output=label >= space.num_intermediate)
        for position, label in enumerate(position_labels(genome, space)))
    return SpineNetSpec(blocks=blocks, num_stem_blocks=space.num_stem_blocks,
                        min_level=space.min_level, max_level=space.max_level, scaling=scaling)


def seed_genome(space: SearchSpace) -> Genome:
    """The ResNet-50 seed: scale-decreased order, outputs L3..L7, each block fed by the last two."""
    order = tuple(sorted(range(space.num_intermediate), key=space.intermediate_base_levels.__getitem__))
    outputs = tuple(sorted(range(space.num_outputs), key=space.output_levels.__getitem__))
    parents = tuple((space.num_stem_blocks + p - 2, space.num_stem_blocks + p - 1)
                    for p in range(space.num_blocks))
    return Genome(order, outputs, parents, (0,) * space.num_intermediate,
                  (space.default_block_fn,) * space.num_blocks)


def sample_parents(space: SearchSpace, position: int, rng: np.random.Generator) -> Tuple[int, int]:
    choices = space.parent_choices(position)
    a, b = rng.choice(len(choices), size=2, replace=False)
    return tuple(sorted((choices[a], choices[b])))


def random_genome(space: SearchSpace, rng: np.random.Generator) -> Genome:
    """A uniform sample over the searched groups; groups not searched keep the seed's values."""
    genome = seed_genome(space)
    if space.searches(ORDER):
        genome = dataclasses.replace(
            genome,
            intermediate_order=tuple(int(x) for x in rng.permutation(space.num_intermediate)),
            output_order=tuple(int(x) for x in rng.permutation(space.num_outputs)))
    if space.searches(CONNECTIONS):
        genome = dataclasses.replace(genome, parents=tuple(
            sample_parents(space, p, rng) for p in range(space.num_blocks)))
    if space.searches(ADJUSTMENTS):
        offsets = tuple(int(rng.choice(space.offset_choices(lab)))
                        for lab in range(space.num_intermediate))
        fns = tuple(str(rng.choice(space.block_fns)) for _ in range(space.num_blocks))
        genome = dataclasses.replace(genome, level_offsets=offsets, block_fns=fns)
    return genome

"""Genomes: sampling, mutation, crossover, decoding, hashing, distance and space sizes."""

import dataclasses
import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from search_space import (ADJUSTMENTS, BOTTLENECK, CONNECTIONS, MUTATIONS, ORDER, PROXY_SIZE,
                          SPACES, BlockSpec, Genome, Scaling, SpecError, SpineNetSpec, builtin_spec,
                          canonical_hash, crossover, decode, distance, distinct_mutants,
                          genome_from_spec, get_space, mutate, num_decisions, random_genome,
                          SearchSpace, seed_genome, similarity, validate_genome)
from search_space.distance import LEVELS, PARENTS, TYPES, decisions

PAPER = get_space("spinenet-49")
SPACE_NAMES = sorted(SPACES)
FIXED_ORDER = dataclasses.replace(PAPER, name="fixed-order", searched={CONNECTIONS, ADJUSTMENTS})
FIXED_CONNECTIONS = dataclasses.replace(PAPER, name="fixed-connections", searched={ORDER, ADJUSTMENTS})
# Offsets and block types that the space lists but does not search.
FIXED_ADJUSTMENTS = dataclasses.replace(PAPER, name="fixed-adjustments",
                                        searched={ORDER, CONNECTIONS})
ALL_SPACES = [*SPACES.values(), FIXED_ORDER, FIXED_CONNECTIONS, FIXED_ADJUSTMENTS]
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def _in_window(spec, space):
    for k, block in enumerate(spec.blocks):
        if not set(block.input_offsets) <= set(space.parent_choices(k)):
            return False
    return True


@settings(max_examples=200, deadline=None)
@given(seed=seeds, space=st.sampled_from(ALL_SPACES))
def test_sampled_mutated_and_crossed_genomes_decode_to_valid_specs(seed, space):
    rng = np.random.default_rng(seed)
    a, b = random_genome(space, rng), random_genome(space, rng)
    children = [a, mutate(a, space, rng), crossover(a, b, space, rng)]
    for genome in children:
        validate_genome(genome, space)
        spec = decode(genome, space)
        assert isinstance(spec, SpineNetSpec)
        assert sorted(b.level for b in spec.blocks if b.is_output) == [3, 4, 5, 6, 7]
        assert [b.is_output for b in spec.blocks] == [False] * 10 + [True] * 5
        assert _in_window(spec, space)
        assert all(lo <= b.level <= hi for b in spec.blocks for lo, hi in [space.level_range])


def _changed(a, b, space):
    """(group, position) of every decision on which `a` and `b` differ."""
    da, db = decisions(a, space), decisions(b, space)
    return {(g, p) for g in da for p, (x, y) in enumerate(zip(da[g], db[g])) if x != y}


@settings(max_examples=100, deadline=None)
@given(seed=seeds, space=st.sampled_from(ALL_SPACES))
def test_every_mutation_changes_one_decision_of_its_group(seed, space):
    """At every position: a parent or a type changes alone; a level changes, and at most one
    other position's level with it (two blocks trading places). Only the first block's parents
    (the two stem features) and what the space does not search (parents, types, the outputs'
    levels where the order is fixed) cannot change; a child is a genome of its space."""
    rng = np.random.default_rng(seed)
    genome = random_genome(space, rng)
    for group, op in MUTATIONS.items():
        for position in range(space.num_blocks):
            child = op(genome, space, rng, position)
            if child is None:
                fixed = {PARENTS: position == 0 or not space.searches(CONNECTIONS),
                         TYPES: not space.searches(ADJUSTMENTS),
                         LEVELS: position >= space.num_intermediate and not space.searches(ORDER)}
                assert fixed[group], (group, position)
                continue
            validate_genome(child, space)
            changed = _changed(genome, child, space)
            assert (group, position) in changed
            others = changed - {(group, position)}
            assert not others or (group == LEVELS and len(others) == 1
                                  and next(iter(others))[0] == LEVELS), (group, changed)


def test_a_level_change_keeps_every_type_where_it_stands():
    """The seed's first block (base level 2) to level 6 needs a block of base 4 or 5 in its
    place; a base-4 one leaves level 4 behind at offset +2, so nothing else changes. Level 7
    only the base-5 block reaches, and base 2 cannot take its level 5: one other level moves."""
    genome = dataclasses.replace(seed_genome(PAPER), block_fns=tuple(
        PAPER.block_fns[k % 2] for k in range(PAPER.num_blocks)))
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        child = MUTATIONS[LEVELS](genome, PAPER, rng, 0)
        level = decisions(child, PAPER)[LEVELS][0]
        seen.add(level)
        expected = 2 if level == 7 else 1
        assert len(_changed(genome, child, PAPER)) == expected, level
        assert decisions(child, PAPER)[TYPES] == decisions(genome, PAPER)[TYPES]
    assert seen == {1, 3, 4, 5, 6, 7}


def test_a_level_change_draws_levels_uniformly_and_changes_least():
    """The seed's block at position 4 (base 4, level 4) reaches levels 3, 5, 6 by its own offset,
    2 and 3 from a base-3 block's place, 1 and 2 from the base-2 block's, 5, 6, 7 from the
    base-5 block's: six levels, each drawn 1/6 of the time. Each but level 1 has a way that
    keeps every other level (the moved block keeps the level of the place it goes to); level 1
    only the base-2 block reaches, and a base-4 block cannot take its level 2 (3 at least)."""
    seed = seed_genome(PAPER)
    rng = np.random.default_rng(0)
    counts = dict.fromkeys((1, 2, 3, 5, 6, 7), 0)
    for _ in range(6000):
        child = MUTATIONS[LEVELS](seed, PAPER, rng, 4)
        level = decisions(child, PAPER)[LEVELS][4]
        counts[level] += 1
        assert len(_changed(seed, child, PAPER)) == (2 if level == 1 else 1), level
    assert all(abs(c / 6000 - 1 / 6) < 0.02 for c in counts.values()), counts


def test_a_level_its_own_offset_reaches_is_never_reached_by_changing_two():
    """Base-3 and base-4 blocks all at level 5: the base-2 block at position 0 reaches level 3
    by its offset +1, alone; by trading places it would leave level 4 (its highest) for a 5."""
    offsets = (0, 2, 2, 2, 1, 1, 1, 1, 1, 0)
    genome = dataclasses.replace(seed_genome(PAPER), level_offsets=offsets)
    rng = np.random.default_rng(0)
    seen = 0
    for _ in range(300):
        child = MUTATIONS[LEVELS](genome, PAPER, rng, 0)
        if decisions(child, PAPER)[LEVELS][0] == 3:
            seen += 1
            assert _changed(genome, child, PAPER) == {(LEVELS, 0)}
    assert seen > 0


def test_crossover_takes_each_decision_from_either_parent():
    """Parents that differ in both orders and in the last entry of every other field: each
    child takes each from one of them, each parent about half of the time."""
    rng = np.random.default_rng(0)
    a = seed_genome(PAPER)
    b = Genome(intermediate_order=a.intermediate_order[1:] + a.intermediate_order[:1],
               output_order=a.output_order[1:] + a.output_order[:1],
               parents=a.parents[:-1] + ((0, 1),), level_offsets=a.level_offsets[:-1] + (1,),
               block_fns=a.block_fns[:-1] + ("residual",))
    validate_genome(b, PAPER)
    from_a = {f.name: 0 for f in dataclasses.fields(Genome)}
    for _ in range(400):
        child = crossover(a, b, PAPER, rng)
        for name in from_a:
            got, mine, theirs = getattr(child, name), getattr(a, name), getattr(b, name)
            if name.endswith("order"):
                assert got in (mine, theirs)
                from_a[name] += got == mine
            else:
                assert all(g in (x, y) for g, x, y in zip(got, mine, theirs))
                from_a[name] += got[-1] == mine[-1]
    assert all(0.4 < n / 400 < 0.6 for n in from_a.values()), from_a


def test_distinct_mutants_are_single_mutants_distinct_as_networks():
    seed = seed_genome(PAPER)
    first = distinct_mutants(seed, PAPER, 6, np.random.default_rng(0))
    assert first == distinct_mutants(seed, PAPER, 6, np.random.default_rng(0))
    more = distinct_mutants(seed, PAPER, 6, np.random.default_rng(0), exclude=[seed, *first[:3]])
    for mutants in (first, more):
        assert len(mutants) == 6
        assert all(1 <= distance(seed, m, PAPER)["total"] <= 2 for m in mutants)
    hashes = [canonical_hash(decode(g, PAPER)) for g in [seed, *first[:3], *more]]
    assert len(set(hashes)) == len(hashes) == 10


def test_distinct_mutants_stop_at_the_mutants_that_exist():
    """Only connections searched, two intermediate blocks fed by their only window, two outputs:
    the output at feature 4 keeps parent 2 or 3 and takes 0 or 1 (4 mutants), the one at
    feature 5 keeps 3 or 4 and takes 0, 1 or 2 (6 mutants)."""
    tiny = dataclasses.replace(PAPER, name="tiny", intermediate_base_levels=(3, 4),
                               output_levels=(3, 4), parent_window=2, searched={CONNECTIONS})
    seed = seed_genome(tiny)
    assert seed.parents == ((0, 1), (1, 2), (2, 3), (3, 4))
    mutants = distinct_mutants(seed, tiny, 20, np.random.default_rng(0))
    assert sorted(m.parents[2:] for m in mutants) == sorted(
        [(pair, (3, 4)) for pair in ((0, 2), (1, 2), (0, 3), (1, 3))]
        + [((2, 3), pair) for pair in ((0, 3), (1, 3), (2, 3), (0, 4), (1, 4), (2, 4))])


def test_mutate_refuses_a_space_where_nothing_can_change():
    frozen = dataclasses.replace(PAPER, name="frozen", level_offsets=(0,), block_fns=(BOTTLENECK,),
                                 searched={ADJUSTMENTS})
    with pytest.raises(ValueError) as error:
        mutate(seed_genome(frozen), frozen, np.random.default_rng(0))
    assert str(error.value) == "search space 'frozen' has no decision a mutation can change"


def test_mutate_draws_decisions_uniformly():
    """The seed of the paper space: 15 levels, 15 types and 28 parents can change."""
    rng = np.random.default_rng(0)
    genome = seed_genome(PAPER)
    counts = {LEVELS: 0, TYPES: 0, PARENTS: 0}
    for _ in range(5800):
        changed = _changed(genome, mutate(genome, PAPER, rng), PAPER)
        counts[min(changed)[0]] += 1  # a level change may move two levels
    for group, share in ((LEVELS, 15 / 58), (TYPES, 15 / 58), (PARENTS, 28 / 58)):
        assert abs(counts[group] / 5800 - share) < 0.02, counts


@settings(max_examples=100, deadline=None)
@given(seed=seeds)
def test_same_level_swaps_decode_to_the_same_spec(seed):
    rng = np.random.default_rng(seed)
    genome = random_genome(PAPER, rng)
    # Labels 1, 2, 3 share base level 3: swapping two of them (with their adjustments) is the
    # same architecture, at zero distance.
    order = list(genome.intermediate_order)
    i, j = order.index(1), order.index(2)
    order[i], order[j] = order[j], order[i]
    offsets, fns = list(genome.level_offsets), list(genome.block_fns)
    offsets[1], offsets[2] = offsets[2], offsets[1]
    fns[1], fns[2] = fns[2], fns[1]
    twin = dataclasses.replace(genome, intermediate_order=tuple(order), level_offsets=tuple(offsets),
                               block_fns=tuple(fns))
    assert twin != genome
    assert decode(twin, PAPER) == decode(genome, PAPER)
    assert distance(twin, genome, PAPER)["total"] == 0


def _graph(spec):
    """The network a spec builds as a labelled DAG: an independent oracle for the hash."""
    graph = nx.DiGraph()
    for k in range(spec.num_stem_blocks):
        graph.add_node(k, label=("stem", k))
    merges = spec.dangling_merges()
    for k, block in enumerate(spec.blocks):
        node = spec.feature_index(k)
        graph.add_node(node, label=(block.level, block.block_fn, block.is_output))
        graph.add_edges_from(((p, node) for p in block.input_offsets), kind="resampled")
        graph.add_edges_from(((f, node) for f in merges.get(k, ())), kind="direct")
    return graph


@settings(max_examples=150, deadline=None)
@given(seed=seeds, name=st.sampled_from(SPACE_NAMES))
def test_hash_equal_exactly_when_the_networks_are_isomorphic(seed, name):
    space = get_space(name)
    rng = np.random.default_rng(seed)
    genome = random_genome(space, rng)
    child = mutate(genome, space, rng)
    a, b = decode(genome, space), decode(child, space)
    assert (a == b) == (distance(genome, child, space)["total"] == 0)
    same_network = nx.is_isomorphic(_graph(a), _graph(b), node_match=lambda x, y: x == y,
                                    edge_match=lambda x, y: x == y)
    assert (canonical_hash(a) == canonical_hash(b)) == same_network


def _reordered(spec, rng):
    """`spec` with the blocks before its first output block in a random topological order and
    every parent pair in a random order. The output blocks keep their positions, so the blocks
    listed before each (which the dangling rule reads) stay the same: the same network."""
    first_output = min(k for k, b in enumerate(spec.blocks) if b.is_output)
    stems, placed, order = spec.num_stem_blocks, set(range(spec.num_stem_blocks)), []
    while len(order) < first_output:
        ready = [k for k in range(first_output) if k not in order
                 and set(spec.blocks[k].input_offsets) <= placed]
        k = ready[rng.integers(len(ready))]
        order.append(k)
        placed.add(spec.feature_index(k))
    order += range(first_output, len(spec.blocks))
    new_feature = dict(enumerate(range(stems)))
    new_feature.update({spec.feature_index(k): stems + j for j, k in enumerate(order)})
    blocks = []
    for k in order:
        parents = [new_feature[p] for p in spec.blocks[k].input_offsets]
        blocks.append(dataclasses.replace(spec.blocks[k], input_offsets=tuple(
            parents[::-1] if rng.random() < 0.5 else parents)))
    return dataclasses.replace(spec, blocks=tuple(blocks))


@settings(max_examples=150, deadline=None)
@given(seed=seeds, order_seed=seeds, name=st.sampled_from(SPACE_NAMES))
def test_hash_is_canonical_under_block_reordering(seed, order_seed, name):
    space = get_space(name)
    spec = decode(random_genome(space, np.random.default_rng(seed)), space)
    twin = _reordered(spec, np.random.default_rng(order_seed))
    assert nx.is_isomorphic(_graph(twin), _graph(spec), node_match=lambda x, y: x == y,
                            edge_match=lambda x, y: x == y)  # the generator's claim
    assert canonical_hash(twin) == canonical_hash(spec)


def test_hash_ignores_topological_order_and_parent_order():
    spec = builtin_spec("spinenet-49")
    # Blocks 0 and 1 (features 2, 3) both read only the stem: listing them the other way round,
    # with every later reference to features 2 and 3 swapped, is the same network.
    swap = {2: 3, 3: 2}
    blocks = [spec.blocks[1], spec.blocks[0]] + list(spec.blocks[2:])
    blocks = [dataclasses.replace(b, input_offsets=tuple(reversed([swap.get(p, p) for p in b.input_offsets])))
              for b in blocks]
    twin = dataclasses.replace(spec, blocks=tuple(blocks))
    assert twin != spec
    assert canonical_hash(twin) == canonical_hash(spec)
    assert canonical_hash(spec.with_scaling(builtin_spec("spinenet-96").scaling)) != canonical_hash(spec)


def test_spinenet49_round_trips_through_the_paper_space():
    spec = builtin_spec("spinenet-49")
    genome = genome_from_spec(spec, PAPER)
    assert decode(genome, PAPER, spec.scaling) == spec
    # The reference's example: base levels 2,4,3,4,4,4,4,5,3,3 shifted by 0,0,0,0,2,0,1,2,2,2.
    bases = [PAPER.intermediate_base_levels[lab] for lab in genome.intermediate_order]
    shifts = [genome.level_offsets[lab] for lab in genome.intermediate_order]
    assert [b + s for b, s in zip(bases, shifts)] == [2, 4, 3, 4, 6, 4, 5, 7, 5, 5]
    assert sorted(bases) == sorted(PAPER.intermediate_base_levels)


@settings(max_examples=100, deadline=None)
@given(seed=seeds, space=st.sampled_from(ALL_SPACES))
def test_genome_from_spec_inverts_decode(seed, space):
    genome = random_genome(space, np.random.default_rng(seed))
    spec = decode(genome, space)
    back = genome_from_spec(spec, space)
    assert decode(back, space) == spec
    assert distance(back, genome, space)["total"] == 0


def test_genome_from_spec_names_the_first_inexpressible_block():
    spec = builtin_spec("spinenet-49")
    with pytest.raises(SpecError, match=r"block 1 \(4, 'residual', \(0, 1\), False\) cannot be "
                                        r"expressed in search space 'r0-sp53': block type 'residual'"):
        genome_from_spec(spec, get_space("r0-sp53"))
    far = list(spec.blocks)
    far[8] = dataclasses.replace(far[8], input_offsets=(2, 9))  # feature 10's window is 5..9
    with pytest.raises(SpecError, match=r"block 8 .* parents \(2, 9\): parents must be among "
                                        r"features 5..9"):
        genome_from_spec(dataclasses.replace(spec, blocks=tuple(far)), PAPER)
    too_high = list(spec.blocks)
    too_high[0] = dataclasses.replace(too_high[0], level=7)
    too_high[1] = dataclasses.replace(too_high[1], level=7)  # only base 5 reaches 7
    with pytest.raises(SpecError, match=r"block 1 \(7, 'residual'.*no intermediate block"):
        genome_from_spec(dataclasses.replace(spec, blocks=tuple(too_high)), PAPER)


def _inexpressible(case):
    """(spec, space) for each way a spec can fall outside a space."""
    sn49 = builtin_spec("spinenet-49")
    seed = seed_genome(PAPER)
    if case == "stems":
        return sn49, dataclasses.replace(PAPER, name="three-stems", num_stem_blocks=3)
    if case == "levels":
        return sn49, dataclasses.replace(PAPER, name="p3-p6", output_levels=(3, 4, 5, 6))
    if case == "blocks":
        return sn49, dataclasses.replace(PAPER, name="nine", intermediate_base_levels=(2, 3, 3, 3, 4,
                                                                                      4, 4, 4, 5))
    if case == "role":  # SpineNet-49's blocks 9 and 10 swapped (features 11 and 12 renamed)
        rename = {11: 12, 12: 11}
        blocks = [dataclasses.replace(b, input_offsets=tuple(rename.get(p, p) for p in b.input_offsets))
                  for b in sn49.blocks]
        blocks[9], blocks[10] = blocks[10], blocks[9]
        return dataclasses.replace(sn49, blocks=tuple(blocks)), PAPER
    if case in ("types", "connections"):
        return sn49, {"types": FIXED_ADJUSTMENTS, "connections": FIXED_CONNECTIONS}[case]
    if case == "offset":  # label 0 (base 2) raised to level 3: four level-3 blocks, three labels
        return decode(dataclasses.replace(seed, level_offsets=(1,) + seed.level_offsets[1:]),
                      PAPER), FIXED_ADJUSTMENTS
    if case == "intermediate-order":  # the L2 and L5 blocks swapped
        order = (9,) + seed.intermediate_order[1:9] + (0,)
        return decode(dataclasses.replace(seed, intermediate_order=order), PAPER), FIXED_ORDER
    if case == "output-order":  # P4 built before P3
        return decode(dataclasses.replace(seed, output_order=(1, 0, 2, 3, 4)), PAPER), FIXED_ORDER
    raise AssertionError(case)


BASES = "[2, 3, 3, 3, 4, 4, 4, 4, 4, 5]"


@pytest.mark.parametrize("case, message", [
    ("stems", "num_stem_blocks: spec has 2, search space 'three-stems' has 3"),
    ("levels", "min_level/max_level: spec outputs 3..7, search space 'p3-p6' outputs 3..6"),
    ("blocks", "blocks: spec has 15 blocks, search space 'nine' has 14"),
    ("role", "block 9 (4, 'bottleneck', (5, 10), True) cannot be expressed in search space "
             "'spinenet-49': it is an output block, but the space builds 10 intermediate blocks "
             "and then 5 outputs"),
    ("types", "block 1 (4, 'residual', (0, 1), False) cannot be expressed in search space "
              "'fixed-adjustments': block type 'residual' is not one of ('bottleneck',)"),
    ("connections", "block 1 (4, 'residual', (0, 1), False) cannot be expressed in search space "
                    "'fixed-connections': parents (0, 1): parents must be the two latest features"),
    ("offset", "block 3 (3, 'bottleneck', (3, 4), False) cannot be expressed in search space "
               f"'fixed-adjustments': no intermediate block of base levels {BASES} reaches level 3 "
               "with offsets [0] alongside the blocks before it"),
    ("intermediate-order", "block 0 (5, 'bottleneck', (0, 1), False) cannot be expressed in search "
                           f"space 'fixed-order': no intermediate block of base levels {BASES} "
                           "reaches level 5 with offsets [-1, 0, 1, 2] alongside the blocks before "
                           "it; the order is fixed"),
    ("output-order", "block 10 (4, 'bottleneck', (10, 11), True) cannot be expressed in search "
                     "space 'fixed-order': the output order is fixed to levels [3, 4, 5, 6, 7]"),
])
def test_genome_from_spec_says_what_the_space_cannot_express(case, message):
    spec, space = _inexpressible(case)
    with pytest.raises(SpecError) as error:
        genome_from_spec(spec, space)
    assert str(error.value) == message


def test_seed_genome_is_resnet50_order_fed_by_latest_two():
    for space in SPACES.values():
        spec = decode(seed_genome(space), space)
        assert [b.level for b in spec.blocks] == [2, 3, 3, 3, 4, 4, 4, 4, 4, 5, 3, 4, 5, 6, 7]
        assert all(b.input_offsets == (k, k + 1) for k, b in enumerate(spec.blocks))
        assert {b.block_fn for b in spec.blocks} == {"bottleneck"}


def test_paper_space_sizes_match_the_paper():
    sizes = PAPER.size()
    assert sizes[ORDER] == math.factorial(10) * math.factorial(5) == 435_456_000
    assert sizes[ADJUSTMENTS] == 4 ** 10 * 2 ** 15
    window = 1 * 3 * 6 * 10 ** 7
    outputs = math.prod(math.comb(f, 2) for f in range(12, 17))
    assert sizes[CONNECTIONS] == window * outputs
    assert sizes["total"] == sizes[ORDER] * sizes[CONNECTIONS] * sizes[ADJUSTMENTS]
    # Unrestricted connections, as the paper counts them: 8.35e20.
    unrestricted = dataclasses.replace(PAPER, parent_window=100)
    assert unrestricted.size()[CONNECTIONS] == math.prod(math.comb(f, 2) for f in range(2, 17))
    assert f"{unrestricted.size()[CONNECTIONS]:.3g}" == "8.35e+20"
    r0 = get_space("r0-sp53").size()
    assert r0[ADJUSTMENTS] == 1 and r0["total"] == sizes[ORDER] * sizes[CONNECTIONS]
    # Offsets and types listed but not searched count once.
    assert FIXED_ADJUSTMENTS.size() == {**sizes, ADJUSTMENTS: 1, "total": r0["total"]}


def test_level_range_bounds_are_inclusive():
    top = dataclasses.replace(PAPER, level_range=(2, 5))
    assert top.offset_choices(9) == (-1, 0) and top.offset_choices(0) == (0, 1, 2)
    flat = dataclasses.replace(PAPER, intermediate_base_levels=(3,) * 10, level_range=(3, 3))
    assert flat.offset_choices(0) == (0,)


def test_space_size_counts_distinct_genomes_on_a_tiny_space():
    tiny = dataclasses.replace(PAPER, name="tiny", intermediate_base_levels=(3, 4),
                               output_levels=(3, 4), level_offsets=(0, 1), parent_window=2,
                               block_fns=("bottleneck",), level_range=(2, 5))
    rng = np.random.default_rng(0)
    seen = {random_genome(tiny, rng) for _ in range(20_000)}
    assert len(seen) == tiny.size()["total"] == (2 * 2) * (1 * 1 * 6 * 10) * (2 * 2)


def test_distance_and_similarity():
    target = genome_from_spec(builtin_spec("spinenet-49"), PAPER)
    seed = seed_genome(PAPER)
    assert num_decisions(PAPER) == 15 + 30 + 15
    assert distance(target, target, PAPER)["total"] == 0 and similarity(target, target, PAPER) == 1.0
    d = distance(seed, target, PAPER)
    # Levels: SpineNet-49 differs from the seed's 2,3,3,3,4,4,4,4,4,5,3,4,5,6,7 in 10 places;
    # parents: 18 of its 30 agree with "the latest two"; types: 4 residual blocks.
    assert d == {"levels": 10, "parents": 12, "block_fns": 4, "total": 26}
    assert similarity(seed, target, PAPER) == 1 - 26 / 60
    assert set(decisions(seed, get_space("r0-sp53"))) == {"levels", "parents"}


def test_genome_dict_round_trip_and_bad_genomes():
    genome = random_genome(PAPER, np.random.default_rng(3))
    assert type(genome).from_dict(genome.to_dict()) == genome
    bad = dataclasses.replace(genome, level_offsets=(3,) + genome.level_offsets[1:])
    with pytest.raises(SpecError, match=r"genome.level_offsets\[0\]: 3 is not one of"):
        decode(bad, PAPER)
    fixed_connections = dataclasses.replace(PAPER, searched={ORDER, ADJUSTMENTS})
    with pytest.raises(SpecError, match="genome.parents: connections are not searched"):
        decode(dataclasses.replace(seed_genome(PAPER), parents=genome.parents), fixed_connections)


def test_hash_tells_apart_networks_that_share_twin_blocks_differently():
    # Features 2 and 3 are twins (both L4 bottlenecks of the stem); block 5 reading feature 3
    # or feature 2 is the same tree of operations but a different network (found by hypothesis).
    space = get_space("r0-sp53")
    rng = np.random.default_rng(39326772)
    genome = random_genome(space, rng)
    parents = genome.parents[:5] + ((2, 6),) + genome.parents[6:]
    a, b = decode(genome, space), decode(dataclasses.replace(genome, parents=parents), space)
    assert [x.input_offsets for x in a.blocks][5] == (3, 6)
    assert [x.input_offsets for x in b.blocks][5] == (2, 6)
    assert canonical_hash(a) != canonical_hash(b)


def test_hash_value_is_the_one_recorded_by_earlier_versions():
    """Ledgers, dedup checkpoints and results keep spec hashes across code versions, so the value
    itself must not drift: SpineNet-49 at the proxy scaling hashes as the 16-epoch proxy trial of
    2026-12-03 recorded it (bench/results/proxy_trial_spinenet-49_16epochs_seed1.json)."""
    spec = builtin_spec("spinenet-49").with_scaling(PROXY_SIZE.scaling)
    assert canonical_hash(spec) == "a4559cbcc4744f57c05ddd874a2cc96902e94915103d3aa7af7607863b50a81a"


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(Scaling)])
def test_hash_covers_every_scaling_field(field):
    """Two specs that differ in one scaling knob build different networks (widths, repeats)."""
    spec = builtin_spec("spinenet-49")
    other = spec.with_scaling(dataclasses.replace(spec.scaling,
                                                  **{field: getattr(spec.scaling, field) * 2}))
    assert canonical_hash(other) != canonical_hash(spec)


def test_hash_refuses_more_twin_orders_than_it_may_try():
    """Nine identical unconsumed L3 bottlenecks on the stem (all merged into the L3 output) are
    twins the refinement cannot split: 9! = 362880 orders, over the 100000 allowed."""
    twins = [BlockSpec(3, BOTTLENECK, (0, 1), False)] * 9
    outputs = [BlockSpec(level, BOTTLENECK, (0, 1), True) for level in range(3, 8)]
    with pytest.raises(ValueError, match="canonical_form: 362880 tie orders exceed 100000"):
        canonical_hash(SpineNetSpec(twins + outputs))


@pytest.mark.parametrize("changes, message", [
    (dict(searched={"order", "colour"}), r"searched: unknown decision group\(s\) \['colour'\]"),
    (dict(level_range=(0, 7)), r"level_range: \(0, 7\) is not inside 1..7"),
    (dict(intermediate_base_levels=(2, 6), level_range=(2, 5)),
     "intermediate_base_levels: level 6 is outside 2..5"),
    (dict(output_levels=(3, 4, 6)), r"output_levels: \(3, 4, 6\) must be consecutive levels"),
    (dict(level_offsets=(-1, 1)), r"level_offsets: \(-1, 1\) must contain 0"),
    (dict(block_fns=("bottleneck",), default_block_fn="residual"),
     r"default_block_fn: 'residual' is not in \('bottleneck',\)"),
    (dict(parent_window=1), "parent_window: must be >= 2, got 1"),
    (dict(num_stem_blocks=1), "num_stem_blocks: must be >= 2, got 1"),
])
def test_search_space_rejects_bad_fields(changes, message):
    with pytest.raises(SpecError, match=message):
        dataclasses.replace(PAPER, **changes)


def test_get_space_names_the_presets():
    with pytest.raises(KeyError, match="unknown search space 'spinenet-50'; presets: spinenet-49, "
                                       "r0-sp53"):
        get_space("spinenet-50")


@pytest.mark.parametrize("corrupt", [
    lambda d: {k: v for k, v in d.items() if k != "parents"},  # a field missing
    lambda d: dict(d, parents=[[2, "x"]] + d["parents"][1:]),   # not an integer
    lambda d: dict(d, level_offsets=None),                      # not a list
    lambda d: None,                                             # not a record
])
def test_genome_from_malformed_data_names_the_problem(corrupt):
    data = corrupt(random_genome(PAPER, np.random.default_rng(3)).to_dict())
    with pytest.raises(SpecError, match=r"genome: malformed genome data \((KeyError|ValueError|"
                                        r"TypeError)\("):
        Genome.from_dict(data)


SEED = seed_genome(PAPER)


def _seed_with(position=None, value=None, **changes):
    """The paper space's seed with fields replaced; `position`/`value` set one parent pair."""
    if position is not None:
        changes["parents"] = SEED.parents[:position] + (value,) + SEED.parents[position + 1:]
    return dataclasses.replace(SEED, **changes)


@pytest.mark.parametrize("space, genome, message", [
    (PAPER, _seed_with(intermediate_order=(0, 0) + SEED.intermediate_order[2:]),
     r"genome.intermediate_order: \(0, 0, 2, .*\) is not a permutation of 0..9"),
    (PAPER, _seed_with(output_order=(0, 1, 2, 3, 3)),
     r"genome.output_order: \(0, 1, 2, 3, 3\) is not a permutation of 0..4"),
    (PAPER, _seed_with(parents=SEED.parents[:14]), "genome.parents: expected 15 pairs, got 14"),
    (PAPER, _seed_with(3, (4, 3)),
     r"genome.parents\[3\]: \(4, 3\) is not a sorted pair of distinct features among 0..4"),
    (PAPER, _seed_with(3, (3, 3)), r"genome.parents\[3\]: \(3, 3\) is not a sorted pair"),
    (PAPER, _seed_with(9, (2, 10)), r"genome.parents\[9\]: \(2, 10\) .* among 6..10"),
    (PAPER, _seed_with(level_offsets=SEED.level_offsets[:9]),
     "genome.level_offsets: expected 10 offsets, got 9"),
    (FIXED_ADJUSTMENTS, _seed_with(level_offsets=(1,) + SEED.level_offsets[1:]),
     r"genome.level_offsets\[0\]: 1 is not one of \(0,\)"),
    (PAPER, _seed_with(block_fns=SEED.block_fns[:14]),
     "genome.block_fns: expected 15 types, got 14"),
    (FIXED_ADJUSTMENTS, _seed_with(block_fns=("residual",) + SEED.block_fns[1:]),
     r"genome.block_fns\[0\]: 'residual' is not one of \('bottleneck',\)"),
    (FIXED_ORDER, _seed_with(intermediate_order=(4,) + SEED.intermediate_order[1:4] + (0,)
                             + SEED.intermediate_order[5:]),
     "genome.intermediate_order/output_order: the order is not searched in 'fixed-order'"),
    (FIXED_ORDER, _seed_with(output_order=(1, 0, 2, 3, 4)),
     "genome.intermediate_order/output_order: the order is not searched"),
])
def test_validate_genome_names_the_first_bad_decision(space, genome, message):
    with pytest.raises(SpecError, match=message):
        validate_genome(genome, space)


def test_fixed_order_allows_swapping_blocks_of_one_base_level():
    # Labels 1 and 2 both have base level 3: the scale-decreasing order is unchanged.
    validate_genome(_seed_with(intermediate_order=(0, 2, 1) + SEED.intermediate_order[3:]),
                    FIXED_ORDER)


def test_the_seed_and_its_spec_follow_a_space_with_unsorted_levels_and_a_longer_stem():
    """Blocks listed out of level order, a 3-block stem, outputs L4..L6 listed 5, 4, 6: the seed
    still climbs the levels (2, 2, 3, 4, then L4, L5, L6; ties keep their listed order), and its
    spec keeps the space's stem and levels and the scaling asked for."""
    space = SearchSpace("unsorted", intermediate_base_levels=(4, 2, 3, 2), output_levels=(5, 4, 6),
                        num_stem_blocks=3)
    seed = seed_genome(space)
    assert (seed.intermediate_order, seed.output_order) == ((1, 3, 2, 0), (1, 0, 2))
    scaling = Scaling(endpoints_num_filters=64, filter_size_scale=0.25)
    spec = decode(seed, space, scaling)
    assert (spec.num_stem_blocks, spec.min_level, spec.max_level) == (3, 4, 6)
    assert spec.scaling == scaling
    assert [b.level for b in spec.blocks] == [2, 2, 3, 4, 4, 5, 6]


def test_random_genomes_draw_every_block_type():
    rng = np.random.default_rng(0)
    fns = {fn for _ in range(10) for fn in random_genome(PAPER, rng).block_fns}
    assert fns == set(PAPER.block_fns) and len(fns) == 2

"""search_space.traits: the counts in which SpineNet-49 differs from the ResNet-50 seed, checked
against counts made by hand from the spec tables."""

import dataclasses

import pytest

from search_space import TRAITS, builtin_spec, traits

SEED = builtin_spec("resnet50-seed")


def _seed_with(**changes):
    """The seed's spec with blocks replaced: {block index: {field: value}}."""
    blocks = list(SEED.blocks)
    for index, fields in changes.items():
        blocks[int(index[1:])] = dataclasses.replace(blocks[int(index[1:])], **fields)
    return dataclasses.replace(SEED, blocks=tuple(blocks))


def test_the_two_builtins_counted_by_hand():
    # Intermediate levels 2 4 3 4 6 4 5 7 5 5 drop three times (4>3, 6>4, 7>5); far parents:
    # blocks 1, 4 and 13 two each, blocks 3, 7, 8, 11 and 14 one each.
    assert traits(builtin_spec("spinenet-49")) == {
        "level_drops": 3, "far_parents": 11, "high_intermediate": 2, "residual": 4,
        "bottleneck": 11}
    # The output blocks 10, 12, 13 and 14 each take one parent two levels away. (Built here, not
    # from SEED: what a module builds at import is out of mutation testing's reach.)
    seed = builtin_spec("resnet50-seed")
    assert traits(seed) == {"level_drops": 0, "far_parents": 4, "high_intermediate": 0,
                            "residual": 0, "bottleneck": 15}
    assert set(traits(seed)) == set(TRAITS)


@pytest.mark.parametrize("changes, changed", [
    # Block 5 to level 3: intermediate levels ... 4 3 4 ... drop once.
    ({"b5": {"level": 3}}, {"level_drops": 1}),
    # Block 4 (level 4) fed by the stem (level 2).
    ({"b4": {"input_offsets": (0, 5)}}, {"far_parents": 5}),
    # Block 9 to level 6: its parents (levels 4, 4) are two away, block 11 (level 4) now takes
    # one at 6, block 10 (level 3) still one (at 6 instead of 5).
    ({"b9": {"level": 6}}, {"high_intermediate": 1, "far_parents": 7}),
    ({"b3": {"block_fn": "residual"}}, {"residual": 1, "bottleneck": 14}),
])
def test_each_trait_on_a_seed_made_to_have_it(changes, changed):
    assert traits(_seed_with(**changes)) == {**traits(SEED), **changed}

"""Spec validation: every rejection rule names the block and the rule."""

import dataclasses

import pytest

from search_space import BlockSpec, Scaling, SpecError, SpineNetSpec, builtin_spec, model_size
from search_space.builtins import SPINENET_49_BLOCKS


def _with_block(k, **changes):
    blocks = list(SPINENET_49_BLOCKS)
    blocks[k] = dataclasses.replace(blocks[k], **changes)
    return blocks


@pytest.mark.parametrize("k, changes, message", [
    (3, dict(input_offsets=(2, 5)), "block 3: parent 5 is not lower than the block's own feature index 5"),
    (3, dict(input_offsets=(2, 9)), "block 3: parent 9 is not lower"),
    (3, dict(input_offsets=(-1, 4)), "block 3: parent -1 is negative"),
    (3, dict(input_offsets=(4, 4)), "block 3: duplicate parents (4, 4)"),
    (2, dict(level=8), "block 2: level 8 is outside the model's range 1..7"),
    (2, dict(level=0), "block 2: level 0 is outside the model's range 1..7"),
    (2, dict(block_fn="inverted_bottleneck"), "block 2: unknown block type 'inverted_bottleneck'"),
    (2, dict(input_offsets=(0, 1, 2)), "block 2: input_offsets must be a pair"),
    (2, dict(level="3"), "block 2: level must be an integer"),
    (2, dict(is_output="yes"), "block 2: is_output must be a boolean"),
    (12, dict(level=4), "block 12: output level 4 already produced by block 10"),
    (12, dict(level=2), "block 12: output level 2 is outside the output levels 3..7"),
    (3, dict(input_offsets=(2, "4")), "block 3: parent '4' is not an integer"),
    (3, dict(input_offsets=(True, 2)), "block 3: parent True is not an integer"),
])
def test_rejections_name_block_and_rule(k, changes, message):
    with pytest.raises(SpecError) as err:
        SpineNetSpec(blocks=_with_block(k, **changes))
    assert message in str(err.value)


@pytest.mark.parametrize("fields, message", [
    (dict(blocks=list(SPINENET_49_BLOCKS[:3]) + ["block"] + list(SPINENET_49_BLOCKS[4:])),
     "block 3: expected a BlockSpec, got 'block'"),
    (dict(blocks=()), "^blocks: a spec needs at least one block$"),
    (dict(num_stem_blocks=2.0), "num_stem_blocks: expected an integer, got 2.0"),
    (dict(num_stem_blocks=1), "num_stem_blocks: must be >= 2, got 1"),
    (dict(min_level=True), "min_level: expected an integer, got True"),
    (dict(max_level="7"), "max_level: expected an integer, got '7'"),
    (dict(scaling=(256, 1.0, 0.5, 1)), r"scaling: expected a Scaling, got \(256, 1.0, 0.5, 1\)"),
])
def test_spec_rejections_name_the_field(fields, message):
    with pytest.raises(SpecError, match=message):
        SpineNetSpec(**{"blocks": SPINENET_49_BLOCKS, **fields})


def test_one_output_level_at_the_lowest_level_is_a_range():
    """min_level = max_level = 1 (the lowest block level): one output block."""
    spec = SpineNetSpec(blocks=[BlockSpec(1, "bottleneck", (0, 1), True)], min_level=1, max_level=1)
    assert spec.output_blocks() == {1: 0}


def test_missing_top_output_level_is_rejected():
    with pytest.raises(SpecError, match=r"no output block for level\(s\) \[7\]"):
        SpineNetSpec(blocks=_with_block(13, is_output=False))


def test_missing_output_level_is_rejected():
    blocks = _with_block(12, is_output=False)
    with pytest.raises(SpecError, match=r"output levels must be exactly 3..7 once each; no output "
                                        r"block for level\(s\) \[5\]"):
        SpineNetSpec(blocks=blocks)


@pytest.mark.parametrize("field, value, message", [
    ("filter_size_scale", 0.0, "filter_size_scale: must be a positive number"),
    ("resample_alpha", -1.0, "resample_alpha: must be a positive number"),
    ("block_repeats", 0, "block_repeats: must be >= 1"),
    ("endpoints_num_filters", 1.5, "endpoints_num_filters: expected an integer"),
])
def test_scaling_rejections(field, value, message):
    with pytest.raises(SpecError, match=message):
        Scaling(**{field: value})


@pytest.mark.parametrize("fields, message", [
    (dict(block_repeats=2.0), "block_repeats: expected an integer, got 2.0"),
    (dict(endpoints_num_filters=0), "endpoints_num_filters: must be >= 1, got 0"),
    (dict(filter_size_scale=True), "filter_size_scale: must be a positive number, got True"),
    # The narrowest level (L1, 32 filters) at 1/64 scale would have half a filter.
    (dict(filter_size_scale=1 / 64), "filter_size_scale: 0.015625 leaves a level with no filters"),
    # L1 at half scale has 16 filters; 1/32 of them in the resampling conv is half a filter.
    (dict(filter_size_scale=0.5, resample_alpha=1 / 32),
     "resample_alpha: 0.03125 leaves a resampling conv with no filters"),
])
def test_scaling_rejections_name_the_rule(fields, message):
    with pytest.raises(SpecError, match=message):
        Scaling(**fields)


def test_scaling_limits_allow_one_filter():
    """One endpoint filter; 1/32 scale leaves L1 exactly one filter, alpha 1 keeps it."""
    assert Scaling(endpoints_num_filters=1, filter_size_scale=1 / 32, resample_alpha=1.0).filters(1) == 1


def test_levels_must_be_a_range():
    with pytest.raises(SpecError, match="min_level/max_level: 5..4"):
        SpineNetSpec(blocks=SPINENET_49_BLOCKS, min_level=5, max_level=4)


def test_specs_are_frozen_and_blocks_are_tuples():
    spec = builtin_spec("spinenet-49")
    assert isinstance(spec.blocks, tuple) and len(spec.blocks) == 15
    assert SpineNetSpec(blocks=list(SPINENET_49_BLOCKS)).blocks == SPINENET_49_BLOCKS
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.min_level = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.blocks[0].level = 3


def test_builtin_models_share_blocks_and_differ_in_scaling():
    names = ["spinenet-49s", "spinenet-49", "spinenet-96", "spinenet-143", "spinenet-190"]
    specs = [builtin_spec(n) for n in names]
    assert all(s.blocks == SPINENET_49_BLOCKS for s in specs)
    assert [s.scaling.block_repeats for s in specs] == [1, 1, 2, 3, 4]
    assert [s.scaling.endpoints_num_filters for s in specs] == [128, 256, 256, 256, 512]
    with pytest.raises(KeyError, match="unknown model 'spinenet-50'; built-in models: "
                                       "spinenet-49s, spinenet-49, spinenet-96, spinenet-143, "
                                       "spinenet-190, resnet50-seed"):
        builtin_spec("spinenet-50")


def test_the_seed_takes_spinenet49s_row_of_the_scaling_table():
    assert model_size("resnet50-seed") == model_size("spinenet-49")
    assert model_size("resnet50-seed").scaling == Scaling(256, 1.0, 0.5, 1)


def test_dangling_rule_merges_feature_11_into_block_12():
    # Reference: spec 12 (L5 output) also sums feature 11 (spec 9, unconsumed L5 bottleneck).
    merges = builtin_spec("spinenet-49").dangling_merges()
    assert merges == {10: (), 11: (), 12: (11,), 13: (), 14: ()}


def test_dangling_rule_requires_matching_channels():
    blocks = _with_block(9, block_fn="residual")  # feature 11 becomes C wide, block 12 wants 4C
    assert SpineNetSpec(blocks=blocks).dangling_merges()[12] == ()


def test_dangling_rule_merges_an_unconsumed_stem_into_a_level_2_output():
    """Three stems (4 x 64 channels at L2); the one L2 bottleneck output (4 x 64) reads stems 0
    and 1, so stem 2 is added to it."""
    spec = SpineNetSpec(blocks=[BlockSpec(2, "bottleneck", (0, 1), True)], num_stem_blocks=3,
                        min_level=2, max_level=2)
    assert spec.dangling_merges() == {0: (2,)}


def test_block_spec_is_plain_data():
    block = BlockSpec(3, "bottleneck", (0, 1), False)
    assert block == BlockSpec(level=3, block_fn="bottleneck", input_offsets=(0, 1), is_output=False)

"""Exact cost accounting against the published counts.

Parameter counts are Model Garden's or worked by hand below. FLOPs are multiply-adds; the
pinned totals equal those of the built Flax models, counted from their traced programs in
tests/proxy_tasks/models/test_compiled.py, and round to the paper's figures."""

import pytest

from search_space import (BOTTLENECK, PROXY_SIZE, backbone_cost, builtin_spec,
                          classification_head_cost, retinanet_head_cost)
from search_space.cost import Cost, conv_cost, level_size, model_cost


def test_spinenet49_backbone_params_exact():
    cost = backbone_cost(builtin_spec("spinenet-49"), 640, 640).total
    assert cost.params == 21_831_488


# RetinaNet head of 4 x 256 convs, 91 classes, 9 anchors, by hand: per subnet 4 shared 3x3
# convs with bias and a BN (scale, offset) per level P3..P7; output convs of 91 * 9 and 4 * 9.
HEAD_PARAMS = (2 * 4 * (9 * 256 * 256 + 256 + 5 * 2 * 256) + (9 * 256 * 819 + 819)
               + (9 * 256 * 36 + 36))
# At 640 px the levels have 80^2 + 40^2 + 20^2 + 10^2 + 5^2 = 8,525 positions.
HEAD_FLOPS_640 = 8525 * (2 * 4 * 9 * 256 * 256 + 9 * 256 * 819 + 9 * 256 * 36)
# SpineNet-96 repeats each of the 2 stem and 15 blocks once more, with input width = output
# width (no projection): a bottleneck of C adds 17 C^2 + 12 C (BN included), a residual block
# 18 C^2 + 4 C. SpineNet-49's blocks: the stem and one block at C = 64, two at 128, eight
# bottlenecks and four residual blocks at 256.
REPEAT_96 = (3 * (17 * 64 ** 2 + 12 * 64) + 2 * (17 * 128 ** 2 + 12 * 128)
             + 8 * (17 * 256 ** 2 + 12 * 256) + 4 * (18 * 256 ** 2 + 4 * 256))


def test_retinanet_spinenet49_at_640_exact():
    backbone = backbone_cost(builtin_spec("spinenet-49"), 640, 640)
    head = retinanet_head_cost(backbone.levels, 4, 256, 91, 9)
    assert head.params == HEAD_PARAMS == 28_543_383 - 21_831_488
    assert head.flops == HEAD_FLOPS_640 == 57_019_564_800
    assert (backbone.total + head).params == 28_543_383
    assert backbone.total.flops == 28_261_990_400  # paper: 28.3B
    assert (backbone.total + head).flops == 85_281_555_200  # paper: 85.4B


def test_model_cost_defaults_to_the_retinanet_head_of_the_paper():
    backbone, head = model_cost(builtin_spec("spinenet-49"), 640, 640)
    assert (head.params, head.flops) == (HEAD_PARAMS, HEAD_FLOPS_640)
    assert (backbone.total + head).params == 28_543_383


def test_model_cost_builds_the_head_asked_for():
    """The RetinaNet head with the given convs, filters, classes and anchors (by hand as in
    test_head_by_hand, over SpineNet-49's five 256-channel levels at 64 px: 8^2 + 4^2 + 2^2 + 1 +
    1 = 86 positions), the classification head, or none; an unknown head is refused."""
    spec = builtin_spec("spinenet-49")
    _, head = model_cost(spec, 64, 64, "retinanet", head_convs=1, head_filters=32,
                         num_classes=2, num_anchors=3)
    shared = 9 * 256 * 32 + 32 + 5 * 2 * 32
    assert head.params == 2 * shared + (9 * 32 * 6 + 6) + (9 * 32 * 12 + 12)
    assert head.flops == 86 * (2 * 9 * 256 * 32 + 9 * 32 * 6 + 9 * 32 * 12)
    assert model_cost(spec, 64, 64, "classification", num_classes=7)[1] == Cost(256 * 7 + 7, 0,
                                                                                256 * 7)
    assert model_cost(spec, 64, 64, "none")[1] == Cost()
    with pytest.raises(ValueError, match="head: 'fpn' is not one of"):
        model_cost(spec, 64, 64, "fpn")


def test_cost_table_rows_name_each_part_and_its_output():
    """SpineNet-49 at 640 px: the stem conv (stride 2, 64 filters), the two L2 stem bottlenecks
    (4 x 64 channels at 160 px), its 15 blocks (block 10 is the first output, P4), then one 1x1
    endpoint conv of 256 filters per level P3..P7 reading its output block's feature."""
    rows = backbone_cost(builtin_spec("spinenet-49"), 640, 640).rows
    heads = [(r.name, r.level, r.block_fn, r.parents, r.shape) for r in rows]
    assert heads[:3] == [("stem conv", 1, "conv7x7", (), (320, 320, 64)),
                         ("stem 0", 2, BOTTLENECK, (), (160, 160, 256)),
                         ("stem 1", 2, BOTTLENECK, (), (160, 160, 256))]
    assert [r.name for r in rows[3:18]] == [f"block {k}" for k in range(10)] + [
        f"block {k} (out)" for k in range(10, 15)]
    # Block 0: L2 bottleneck (4 x 64); block 1: L4 residual (256); block 13: L7 bottleneck
    # (4 x 256) reading features 5 and 14.
    assert [heads[3 + k][1:] for k in (0, 1, 13)] == [(2, BOTTLENECK, (0, 1), (160, 160, 256)),
                                                      (4, "residual", (0, 1), (40, 40, 256)),
                                                      (7, BOTTLENECK, (5, 14), (5, 5, 1024))]
    assert heads[18:] == [(f"endpoint P{level}", level, "conv1x1", (feature,), (640 >> level,) * 2
                           + (256,)) for level, feature in ((3, 13), (4, 12), (5, 14), (6, 16),
                                                            (7, 15))]


def test_retinanet_spinenet96_at_1024_exact():
    backbone = backbone_cost(builtin_spec("spinenet-96"), 1024, 1024)
    total = backbone.total + retinanet_head_cost(backbone.levels, 4, 256, 91, 9)
    assert backbone.total.params == 21_831_488 + REPEAT_96 == 36_262_976
    assert total.params == 36_262_976 + HEAD_PARAMS == 42_974_871  # paper: 43.0M
    assert total.flops == 265_024_356_352  # paper: 265.4B


def test_proxy_backbone_counts_match_model_garden():
    spec = builtin_spec("spinenet-49").with_scaling(PROXY_SIZE.scaling)
    cost = backbone_cost(spec, 256, 256).total
    assert (cost.params, cost.bn_statistics) == (1_169_696, 20_960)


def test_classification_variant_matches_imagenet_spinenet49():
    backbone = backbone_cost(builtin_spec("spinenet-49"), 224, 224)
    total = backbone.total + classification_head_cost(backbone.levels, 1000)
    assert total.params == 21_831_488 + 256 * 1000 + 1000  # paper: 22.1M
    assert total.flops == 3_477_684_224 + 256 * 1000  # paper: 3.5B


def test_head_by_hand():
    levels = {3: (8, 8, 64), 4: (4, 4, 64)}
    head = retinanet_head_cost(levels, head_convs=1, head_filters=32, num_classes=2, num_anchors=1)
    shared = 9 * 64 * 32 + 32 + 2 * 32 * 2  # conv + bias + BN per level
    outputs = (9 * 32 * 2 + 2) + (9 * 32 * 4 + 4)
    assert head.params == 2 * shared + outputs
    assert head.bn_statistics == 2 * (2 * 32 * 2)
    assert head.flops == 80 * (2 * 9 * 64 * 32 + 9 * 32 * 2 + 9 * 32 * 4)


def test_non_square_and_odd_sizes_use_ceil():
    assert level_size(100, 37, 3) == (13, 5)
    spec = builtin_spec("spinenet-49")
    square = backbone_cost(spec, 640, 640)
    wide = backbone_cost(spec, 320, 640)
    assert square.total.params == wide.total.params
    assert wide.levels[7] == (3, 5, 256)
    assert wide.total.flops < square.total.flops


def test_params_do_not_depend_on_input_and_scale_with_repeats():
    spec = builtin_spec("spinenet-49")
    assert backbone_cost(spec, 128, 96).total.params == 21_831_488
    assert backbone_cost(builtin_spec("spinenet-96"), 64, 64).total.params == 21_831_488 + REPEAT_96


def test_conv_cost_and_sum():
    assert conv_cost(3, 4, 8, (2, 5)) == Cost(9 * 4 * 8 + 16, 16, 9 * 4 * 8 * 10)
    assert conv_cost(1, 4, 8, (1, 1), bn=False, bias=True) == Cost(40, 0, 32)
    assert Cost(1, 2, 3) + Cost(4, 5, 6) == Cost(5, 7, 9)


@pytest.mark.parametrize("name", ["spinenet-49s", "spinenet-143", "spinenet-190"])
def test_every_builtin_has_a_cost(name):
    cost = backbone_cost(builtin_spec(name), 256, 256)
    assert cost.total.params > 0 and sorted(cost.levels) == [3, 4, 5, 6, 7]

"""Exact cost accounting against the published counts."""

import pytest

from search_space import (PROXY_SIZE, backbone_cost, builtin_spec, classification_head_cost,
                          retinanet_head_cost)
from search_space.cost import Cost, conv_cost, level_size


def test_spinenet49_backbone_params_exact():
    cost = backbone_cost(builtin_spec("spinenet-49"), 640, 640).total
    assert cost.params == 21_831_488


def test_retinanet_spinenet49_params_exact_and_flops_within_1_percent():
    backbone = backbone_cost(builtin_spec("spinenet-49"), 640, 640)
    head = retinanet_head_cost(backbone.levels, 4, 256, 91, 9)
    total = backbone.total + head
    assert total.params == 28_543_383
    assert abs(total.flops / 85.4e9 - 1) < 0.01
    assert abs(backbone.total.flops / 28.3e9 - 1) < 0.01


def test_retinanet_spinenet96_at_1024_flops_within_1_percent():
    backbone = backbone_cost(builtin_spec("spinenet-96"), 1024, 1024)
    total = backbone.total + retinanet_head_cost(backbone.levels, 4, 256, 91, 9)
    assert abs(total.flops / 265.4e9 - 1) < 0.01
    assert round(total.params / 1e6, 1) == 43.0


def test_proxy_backbone_counts_match_model_garden():
    spec = builtin_spec("spinenet-49").with_scaling(PROXY_SIZE.scaling)
    cost = backbone_cost(spec, 256, 256).total
    assert (cost.params, cost.bn_statistics) == (1_169_696, 20_960)


def test_classification_variant_matches_imagenet_spinenet49():
    backbone = backbone_cost(builtin_spec("spinenet-49"), 224, 224)
    total = backbone.total + classification_head_cost(backbone.levels, 1000)
    assert total.params == 21_831_488 + 256 * 1000 + 1000
    assert round(total.params / 1e6, 1) == 22.1
    assert round(total.flops / 1e9, 1) == 3.5


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
    assert backbone_cost(builtin_spec("spinenet-96"), 64, 64).total.params > 21_831_488


def test_conv_cost_and_sum():
    assert conv_cost(3, 4, 8, (2, 5)) == Cost(9 * 4 * 8 + 16, 16, 9 * 4 * 8 * 10)
    assert conv_cost(1, 4, 8, (1, 1), bn=False, bias=True) == Cost(40, 0, 32)
    assert Cost(1, 2, 3) + Cost(4, 5, 6) == Cost(5, 7, 9)


@pytest.mark.parametrize("name", ["spinenet-49s", "spinenet-143", "spinenet-190"])
def test_every_builtin_has_a_cost(name):
    cost = backbone_cost(builtin_spec(name), 256, 256)
    assert cost.total.params > 0 and sorted(cost.levels) == [3, 4, 5, 6, 7]

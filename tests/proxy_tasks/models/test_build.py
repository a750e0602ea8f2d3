"""Built models equal the cost model to the unit and give the reference's output shapes.

Everything here is traced with `jax.eval_shape`: no parameters are materialized.
"""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nas.cli import main
from proxy_tasks.models import ClassificationConfig, RetinaNetConfig, build_model, count_variables
from search_space import (MODEL_SIZES, PROXY_SIZE, SPACES, Scaling, backbone_cost, builtin_spec,
                          classification_head_cost, decode, random_genome, retinanet_head_cost)


def traced(model, height, width, batch=1):
    """(variable shapes, output shapes) of `model` on `batch` images of `height` x `width`."""
    images = jax.ShapeDtypeStruct((batch, height, width, 3), jnp.float32)
    outputs, variables = jax.eval_shape(
        lambda x: model.init_with_output(jax.random.PRNGKey(0), x, train=False), images)
    return variables, outputs


def expected_cost(spec, head, height, width):
    backbone = backbone_cost(spec, height, width)
    if isinstance(head, RetinaNetConfig):
        return backbone.total + retinanet_head_cost(backbone.levels, head.num_convs, head.num_filters,
                                                    head.num_classes, head.num_anchors)
    if isinstance(head, ClassificationConfig):
        return backbone.total + classification_head_cost(backbone.levels, head.num_classes)
    return backbone.total


@pytest.mark.parametrize("name", sorted(MODEL_SIZES))
def test_builtin_retinanet_params_equal_cost_model(name):
    spec, head = builtin_spec(name), RetinaNetConfig.for_size(MODEL_SIZES[name])
    cost = expected_cost(spec, head, 256, 256)
    assert count_variables(build_model(spec, head), 256, 256) == (cost.params, cost.bn_statistics)


def test_reference_counts():
    """Model Garden's trainable counts: the proxy backbone and RetinaNet + SpineNet-49."""
    proxy = builtin_spec("spinenet-49").with_scaling(PROXY_SIZE.scaling)
    assert count_variables(build_model(proxy)) == (1_169_696, 20_960)
    head = RetinaNetConfig.for_size(MODEL_SIZES["spinenet-49"])
    assert count_variables(build_model(builtin_spec("spinenet-49"), head))[0] == 28_543_383


HEADS = (RetinaNetConfig.for_size(PROXY_SIZE), ClassificationConfig(1000), None)


@pytest.mark.parametrize("seed", range(20))
def test_random_genome_params_equal_cost_model(seed):
    space = SPACES["spinenet-49"]
    spec = decode(random_genome(space, np.random.default_rng(seed)), space, PROXY_SIZE.scaling)
    head = HEADS[seed % len(HEADS)]
    variables, outputs = traced(build_model(spec, head), 96, 80)
    count = lambda tree: sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))
    cost = expected_cost(spec, head, 96, 80)
    assert (count(variables["params"]), count(variables["batch_stats"])) == (cost.params, cost.bn_statistics)
    assert {lvl: x.shape for lvl, x in outputs["endpoints"].items()} == {
        lvl: (1, -(-96 // 2 ** lvl), -(-80 // 2 ** lvl), 64) for lvl in range(3, 8)}


# Model Garden's test configurations: input, filter_size_scale, block_repeats, resample_alpha,
# endpoints_num_filters, min_level, max_level.
MODEL_GARDEN_CONFIGS = [(128, 0.65, 1, 0.5, 128, 4, 6), (256, 1.0, 1, 0.5, 256, 3, 6),
                        (384, 1.0, 2, 0.5, 256, 4, 7)]


@pytest.mark.parametrize("size, scale, repeats, alpha, endpoints, min_level, max_level",
                         MODEL_GARDEN_CONFIGS)
def test_model_garden_output_shapes(size, scale, repeats, alpha, endpoints, min_level, max_level):
    spec = builtin_spec("spinenet-49").with_scaling(Scaling(endpoints, scale, alpha, repeats))
    model = build_model(spec, endpoint_levels=range(min_level, max_level + 1))
    _, outputs = traced(model, size, size, batch=2)
    assert {lvl: x.shape for lvl, x in outputs["endpoints"].items()} == {
        lvl: (2, size // 2 ** lvl, size // 2 ** lvl, endpoints) for lvl in range(min_level, max_level + 1)}


def test_non_square_odd_sizes_and_head_outputs():
    spec = builtin_spec("spinenet-49").with_scaling(PROXY_SIZE.scaling)
    head = dataclasses.replace(RetinaNetConfig.for_size(PROXY_SIZE), num_classes=7)
    _, outputs = traced(build_model(spec, head), 100, 75, batch=2)
    for lvl in range(3, 8):
        h, w = -(-100 // 2 ** lvl), -(-75 // 2 ** lvl)
        assert outputs["endpoints"][lvl].shape == (2, h, w, 64)
        assert outputs["class_outputs"][lvl].shape == (2, h, w, 9 * 7)
        assert outputs["box_outputs"][lvl].shape == (2, h, w, 9 * 4)
    _, outputs = traced(build_model(spec, ClassificationConfig(5)), 100, 75, batch=2)
    assert outputs["logits"].shape == (2, 5)


def test_nas_inspect_build(capsys):
    assert main(["inspect", "spinenet-49", "--build", "--json", "--head", "classification",
                 "--input-size", "224", "--num-classes", "1000"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["built_params"] == out["total_params"] == 22_088_488
    assert main(["inspect", "spinenet-49", "--build", "--filter-size-scale", "0.25",
                 "--resample-alpha", "0.25", "--endpoints-num-filters", "64", "--head", "none"]) == 0
    assert "built Flax model: 1,169,696 trainable params (equal to the cost model)" in capsys.readouterr().out

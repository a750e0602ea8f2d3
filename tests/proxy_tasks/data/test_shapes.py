"""The embedded shapes dataset: each shape fills its box, boxes sit on the drawn pixels, object
sizes span the promised octaves, rendering is deterministic, the TFDS builder serves it."""

import dataclasses
import itertools

import numpy as np
import pytest

from proxy_tasks.data import prepare_embedded
from proxy_tasks.data.config import EmbeddedConfig
from proxy_tasks.data.embedded import ID_STRIDE
from proxy_tasks.data.render import MASK_ALPHA
from proxy_tasks.data.shapes import SHAPES, flat_background, render_shapes_scene, shape_alpha

SIZE = 96
CONFIG = EmbeddedConfig(image_size=SIZE, scenes="shapes")


def _extent(mask):
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return rows[0], cols[0], rows[-1] + 1, cols[-1] + 1


@pytest.mark.parametrize("height,width", [(6, 6), (6, 9), (31, 40), (96, 96)])
def test_every_shape_spans_its_box(height, width):
    # Up to one pixel: a triangle's apex or a diamond's tips cover under half a pixel.
    for label in range(len(SHAPES)):
        extent = _extent(shape_alpha(label, height, width) > MASK_ALPHA)
        assert np.abs(np.subtract(extent, (0, 0, height, width))).max() <= 1, SHAPES[label]


def test_the_ten_shapes_differ():
    masks = [shape_alpha(label, 48, 48) > MASK_ALPHA for label in range(len(SHAPES))]
    for a, b in itertools.combinations(range(len(SHAPES)), 2):
        iou = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
        assert iou < 0.85, (SHAPES[a], SHAPES[b], iou)


def test_boxes_sit_on_the_drawn_pixels():
    # One shape and no strokes: the pixels that differ from the background (the first thing
    # drawn from the seed) are the shape's; its box is theirs, up to the anti-aliased edge.
    config = dataclasses.replace(CONFIG, min_objects=1, max_objects=1, max_distractors=0)
    checked = 0
    for index in range(60):
        scene = render_shapes_scene(np.random.default_rng([5, index]), config)
        if not len(scene.boxes):
            continue
        ground = flat_background(np.random.default_rng([5, index]), SIZE)
        difference = np.abs(scene.image - np.round(ground)).max(-1)
        changed = difference > difference.max() / 2  # covered by at least about half
        extent = np.array(_extent(changed))
        assert np.abs(extent - scene.boxes[0]).max() <= 1, (index, extent, scene.boxes[0])
        checked += 1
    assert checked == 60  # a lone shape is never occluded


def test_object_sizes_span_four_octaves_log_uniformly():
    sides = np.concatenate([
        np.maximum(s.boxes[:, 2] - s.boxes[:, 0], s.boxes[:, 3] - s.boxes[:, 1])
        for s in (render_shapes_scene(np.random.default_rng([6, i]), CONFIG) for i in range(300))])
    assert CONFIG.octaves == 4 and sides.min() <= 7 and sides.max() >= 90
    shares = np.histogram(np.log2(sides / 6), bins=4, range=(0, 4))[0] / len(sides)
    assert shares.min() > 0.15, shares  # each octave, 6-12 ... 48-96 px, about a quarter


def test_rendering_is_a_function_of_the_seed():
    first, again, other = (render_shapes_scene(np.random.default_rng(seed), CONFIG)
                           for seed in ([1, 2], [1, 2], [1, 3]))
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.boxes, again.boxes)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert not np.array_equal(first.image, other.image)


def test_the_builder_serves_the_rendered_scenes(tmp_path):
    config = EmbeddedConfig(image_size=64, train_images=6, holdout_images=3, validation_images=3,
                            seed=4, scenes="shapes")
    builder = prepare_embedded(str(tmp_path), config)
    assert builder.name == "shapes"
    assert builder.info.features["objects"]["label"].names == list(SHAPES)
    source = builder.as_data_source("holdout")
    for record in source:  # stored in TFDS's order; the image id names the example
        index = record["image/id"] - ID_STRIDE - 1
        scene = render_shapes_scene(np.random.default_rng([4, 1, index]), config)
        objects = record["objects"]
        np.testing.assert_allclose(objects["bbox"], scene.boxes / 64, atol=1e-6)
        np.testing.assert_array_equal(objects["label"], scene.labels)
    with pytest.raises(ValueError, match="scenes='squares': must be one of"):
        EmbeddedConfig(scenes="squares")

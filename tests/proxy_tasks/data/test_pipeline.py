"""Numpy input pipelines: anchor targets, geometry, determinism, batching and padding."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

from proxy_tasks.data import (AnchorConfig, ClassificationRecord, DetectionRecord, InputConfig,
                              classification_batches, detection_batches)
from proxy_tasks.data.targets import assign_targets, pairwise_iou
from proxy_tasks.data.transforms import (MEAN, STD, boxes_to_output, flip_horizontally, normalize,
                                         resize_crop_pad)
from proxy_tasks.models.boxes import assign_targets as jax_assign_targets
from proxy_tasks.models.boxes import decode_boxes, iou
from proxy_tasks.models.losses import IGNORE, NEGATIVE
from tests.proxy_tasks.data_helpers import scene_records

EVAL = InputConfig(image_size=64, batch_size=4, train=False, num_workers=2)
TRAIN = dataclasses.replace(EVAL, train=True, seed=5)


@pytest.fixture(scope="module")
def records():
    return scene_records(10)


def _equal_batches(a, b):
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x) for x, y in zip(a, b))


def test_assignment_thresholds_and_encoding():
    anchors = np.array([[0, 0, 10, 10]] * 4, np.float32)
    boxes = np.array([[0, 0, 10, 5], [0, 0, 10, 4.5], [0, 0, 10, 3.9], [0, 0, 10, 10]],
                     np.float32)
    for box, expected in zip(boxes[:3], (7, IGNORE, NEGATIVE)):
        cls, targets = assign_targets(anchors[:1], box[None], np.array([7]), force_match=False)
        assert cls.tolist() == [expected]
        cls, targets = assign_targets(anchors[:1], box[None], np.array([7]))
        assert cls.tolist() == [7]  # the box's best anchor, forced
    cls, targets = assign_targets(anchors[:1], boxes[:1], np.array([7]))
    np.testing.assert_allclose(targets[0], [0.0, -0.25, 0.0, np.log(0.5)], atol=1e-6)
    cls, targets = assign_targets(anchors, np.zeros((0, 4), np.float32), np.zeros(0, int))
    assert cls.tolist() == [NEGATIVE] * 4 and not targets.any()


def test_forced_matching_gives_every_box_its_best_anchor():
    anchors = np.array([[0, 0, 10, 10], [0, 10, 10, 20], [40, 40, 50, 50]], np.float32)
    # Box 0 overlaps anchor 0 by 0.25 (under both thresholds); boxes 1 and 2 both have anchor 1
    # as their best, which takes box 2 (IoU 0.5 against 0.2) while box 1 keeps no anchor.
    boxes = np.array([[0, 0, 5, 5], [0, 8, 10, 13], [0, 10, 10, 15]], np.float32)
    labels = np.array([4, 5, 6])
    for assign in (assign_targets, jax_assign_targets):
        cls, targets = assign(anchors, boxes, labels)
        assert np.asarray(cls).tolist() == [4, 6, NEGATIVE]
        np.testing.assert_allclose(np.asarray(targets)[0], [-0.25, -0.25, np.log(0.5), np.log(0.5)],
                                   atol=1e-6)
        cls, _ = assign(anchors, boxes, labels, force_match=False)
        assert np.asarray(cls).tolist() == [NEGATIVE, 6, NEGATIVE]


def test_pairwise_iou_by_hand():
    a = np.array([[0.0, 0, 10, 10]])
    b = np.array([[0.0, 5, 10, 15],  # half overlapping: 50 / 150
                  [20.0, 20, 30, 30],  # apart on both axes
                  [20.0, 0, 30, 10], [0.0, 20, 10, 30],  # apart on one axis only
                  [0.0, 0, 0.1, 0.1],  # inside and tiny: 0.01 / 100
                  [3.0, 3, 3, 3]])  # empty
    got = pairwise_iou(a, b)  # float64 in, float32 out (the pipeline's dtype)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [[50 / 150, 0, 0, 0, 1e-4, 0]], rtol=1e-5)
    tiny = pairwise_iou(np.array([[0.0, 0, 0.1, 0.1]]), np.array([[0.0, 0.05, 0.1, 0.15]]))
    np.testing.assert_allclose(tiny, [[1 / 3]], rtol=1e-5)  # the same pair at 1/100 scale
    empty = np.array([[3.0, 3, 3, 3], [0.0, 0, 0, 5]])
    np.testing.assert_array_equal(pairwise_iou(empty, empty), np.zeros((2, 2)))


def test_pairwise_iou_matches_the_models_jax_iou():
    """The input pipeline's in-place IoU against the model's (tested by hand in test_boxes), on
    boxes that overlap, touch, lie apart and are tiny or empty."""
    rng = np.random.default_rng(0)
    corners = np.sort(rng.choice(np.arange(0.0, 12.0, 0.5), (2, 60, 2, 2)), axis=-1)
    a, b = (np.stack([c[:, 0, 0], c[:, 1, 0], c[:, 0, 1], c[:, 1, 1]], -1) for c in corners)
    b[:5] *= 0.01  # tiny boxes: unions below 1
    np.testing.assert_allclose(pairwise_iou(a, b), iou(a.astype(np.float32), b.astype(np.float32)),
                               rtol=1e-5, atol=1e-7)


def test_assignment_edges_dtypes_and_no_forced_match_without_overlap():
    # IoU exactly 0.4 (40 / 100, exact in float32) is ignored, not negative. The second box
    # overlaps no anchor: its "best" anchor (the first, all IoUs being 0) is not forced to it.
    anchors = np.array([[50.0, 50, 60, 60], [0.0, 0, 10, 10], [0.0, 0, 10, 4]], np.float32)
    boxes = np.array([[0.0, 0, 10, 10], [20.0, 20, 30, 30]], np.float32)
    cls, targets = assign_targets(anchors, boxes, np.array([5, 6]))
    assert cls.dtype == np.int32 and targets.dtype == np.float32
    assert cls.tolist() == [NEGATIVE, 5, IGNORE]
    np.testing.assert_array_equal(targets, 0)  # the one positive is its box exactly
    empty_cls, empty_targets = assign_targets(anchors, np.zeros((0, 4)), np.zeros(0, np.int64))
    assert (empty_cls.dtype, empty_targets.dtype) == (np.int32, np.float32)


@pytest.mark.parametrize("force_match", [True, False])
def test_numpy_assignment_matches_the_models_jax_assignment(records, force_match):
    anchors = AnchorConfig().anchors(64)
    positives = 0
    for record in records[:4]:
        boxes, labels = record.boxes * 64, record.labels
        cls, targets = assign_targets(anchors, boxes, labels, force_match=force_match)
        padded_boxes = np.zeros((8, 4), np.float32)  # one shape: jax compiles once
        padded_boxes[:len(boxes)] = boxes
        padded_labels = np.full(8, -1, np.int32)
        padded_labels[:len(labels)] = labels
        jax_cls, jax_targets = jax_assign_targets(anchors, padded_boxes, padded_labels,
                                                  force_match=force_match)
        np.testing.assert_array_equal(cls, np.asarray(jax_cls))
        np.testing.assert_allclose(targets, np.asarray(jax_targets), atol=1e-5)
        positives += int((cls >= 0).sum())
        if force_match:  # every box has a positive anchor of its own class
            assert set(labels.tolist()) <= set(cls[cls >= 0].tolist())
    assert positives > 0  # the comparison covered positive anchors, not only background


def test_resize_pads_bottom_right_and_reports_scale():
    image = np.full((50, 100, 3), 200, np.uint8)
    output, scale, offset = resize_crop_pad(image, 64)
    assert scale == 0.64 and offset == (0, 0)
    np.testing.assert_allclose(output[:32], np.broadcast_to((200 - MEAN) / STD, (32, 64, 3)),
                               rtol=1e-6)
    assert not output[32:].any()
    jittered, scale, offset = resize_crop_pad(image, 64, jitter=2.0, offset_fraction=(0.5, 0.5))
    assert scale == 1.28 and offset == (0, 32) and jittered.shape == (64, 64, 3)
    # No overhang on an axis, no offset on it, whatever the fraction.
    _, _, offset = resize_crop_pad(image, 64, offset_fraction=(1.0, 1.0))
    assert offset == (0, 0)


def test_resize_crops_each_axis_at_its_own_offset_with_bilinear_sampling():
    image = np.random.default_rng(0).integers(0, 256, (10, 8, 3), dtype=np.uint8)
    output, scale, offset = resize_crop_pad(image, 10, jitter=2.0, offset_fraction=(0.25, 0.75))
    # Scaled by 2 to 20 x 16: overhangs of 10 rows and 6 columns, offsets int(2.5), int(4.5).
    assert scale == 2.0 and offset == (2, 4)
    scaled = np.asarray(Image.fromarray(image).resize((16, 20), Image.BILINEAR), np.float32)
    np.testing.assert_allclose(output, (scaled[2:12, 4:14] - MEAN) / STD, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape", [(1, 200, 3), (200, 1, 3)])
def test_resize_keeps_one_row_or_column_of_a_sliver(shape):
    # 1 pixel * 0.32 rounds to none: the sliver keeps one output row (column), the rest is padding.
    output, scale, _ = resize_crop_pad(np.full(shape, 200, np.uint8), 64)
    assert scale == 0.32
    sliver = output[:1] if shape[0] == 1 else output[:, :1]
    np.testing.assert_allclose(sliver, np.broadcast_to((200 - MEAN) / STD, sliver.shape), rtol=1e-6)
    assert np.count_nonzero(output.any(-1)) == 64


def test_boxes_to_output_scales_shifts_and_clips_to_the_output():
    boxes = np.array([[0.0, 0.25, 0.5, 1.0], [0.5, 0.0, 1.0, 0.5]], np.float32)
    # 100 x 200 pixels, halved, less the offset (10, 20): [-10, 5, 15, 80] and [15, -20, 40, 30].
    pixels = boxes_to_output(boxes, (100, 200), 0.5, (10, 20), 64)
    assert pixels.dtype == np.float32
    np.testing.assert_array_equal(pixels, [[0, 5, 15, 64], [15, 0, 40, 30]])


def test_flip_and_normalize():
    image = np.arange(12, dtype=np.uint8).reshape(1, 4, 3)
    flipped, boxes = flip_horizontally(image, np.array([[0.1, 0.2, 0.5, 0.4]], np.float32))
    assert flipped[0, 0].tolist() == [9, 10, 11]
    np.testing.assert_allclose(boxes, [[0.1, 0.6, 0.5, 0.8]], rtol=1e-6)
    np.testing.assert_allclose(normalize(image), (image - MEAN) / STD, rtol=1e-6)
    assert normalize(image).dtype == np.float32
    assert flip_horizontally(image, np.zeros((0, 4), np.float32))[1].shape == (0, 4)


def test_eval_batches_keep_order_pad_and_carry_original_ground_truth(records):
    batches = list(detection_batches(records, EVAL))
    assert [b["valid"].tolist() for b in batches] == [[True] * 4, [True] * 4,
                                                       [True, True, False, False]]
    assert np.concatenate([b["image_ids"] for b in batches]).tolist() == list(range(1, 11)) + [0, 0]
    first = batches[0]
    n = len(records[0].labels)
    assert first["images"].shape == (4, 64, 64, 3) and first["images"].dtype == np.float32
    assert first["cls_targets"].shape == (4, 9 * (64 + 16 + 4 + 1 + 1))
    assert first["box_targets"].shape == first["cls_targets"].shape + (4,)
    np.testing.assert_allclose(first["gt_boxes"][0, :n], records[0].boxes * 64, rtol=1e-6)
    assert first["gt_classes"][0].tolist() == records[0].labels.tolist() + [-1] * (100 - n)
    assert first["scales"].tolist() == [1.0] * 4


def test_positive_targets_decode_to_their_ground_truth(records):
    anchors = AnchorConfig().anchors(64)
    batch = next(detection_batches(records, EVAL))
    positive = batch["cls_targets"] >= 0
    image_of = np.nonzero(positive)[0]
    decoded = np.asarray(decode_boxes(batch["box_targets"][positive],
                                      np.broadcast_to(anchors, positive.shape + (4,))[positive]))
    for i in range(4):
        gt = batch["gt_boxes"][i][batch["gt_classes"][i] >= 0] * batch["scales"][i]
        distance = np.abs(decoded[image_of == i][:, None, :] - gt[None]).max(-1)
        assert positive[i].any() and distance.min(1).max() < 1e-3


# Three objects in the left half of a 48 x 64 image, each lit in one colour channel alone.
OBJECTS = {0: (10, 14, 22, 26), 1: (26, 16, 38, 30), 2: (12, 30, 24, 40)}  # label: pixel box


def coloured_record(image_id: int) -> DetectionRecord:
    image = np.zeros((48, 64, 3), np.uint8)
    for label, (y0, x0, y1, x1) in OBJECTS.items():
        image[y0:y1, x0:x1, label] = 255
    boxes = np.array(list(OBJECTS.values()), np.float32) / [48, 64, 48, 64]
    return DetectionRecord(image, image_id, boxes, np.array(list(OBJECTS), np.int32),
                           np.array([144, 168, 120], np.float32), np.zeros(3, bool))


def lit_boxes(image: np.ndarray):
    """Per colour channel, the pixel box of the pixels lit in that channel alone (padding and
    the blurred edges of the resized objects are not)."""
    pixels = image * STD + MEAN
    boxes = {}
    for channel in range(3):
        lit = (pixels[..., channel] > 160) & (np.delete(pixels, channel, -1) < 60).all(-1)
        rows, cols = np.nonzero(lit)
        if len(rows):
            boxes[channel] = (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1)
    return boxes


def test_augmented_targets_decode_onto_the_objects_of_the_augmented_image():
    """Flipped, scaled by 0.8-1.2 and cropped (the objects stay inside every crop), each image's
    positive targets decode to the boxes its lit pixels span, to within the resize's blur."""
    anchor_config = AnchorConfig(anchor_size=1.0)
    anchors = anchor_config.anchors(64)
    config = InputConfig(image_size=64, batch_size=4, train=True, seed=3)
    records = [coloured_record(i + 1) for i in range(4)]
    flipped, scales = set(), []
    for epoch in range(4):
        for batch in detection_batches(records, config, anchor_config, epoch):
            scales += batch["scales"].tolist()
            for image, cls, targets in zip(batch["images"], batch["cls_targets"],
                                           batch["box_targets"]):
                objects = lit_boxes(image)
                positive = cls >= 0
                assert set(cls[positive].tolist()) == set(objects) == set(OBJECTS)
                decoded = np.asarray(decode_boxes(targets[positive], anchors[positive]))
                for label, box in zip(cls[positive], decoded):
                    np.testing.assert_allclose(box, objects[label], atol=1.5)
                flipped.add(objects[0][1] > 32)
    assert flipped == {False, True}
    assert min(scales) < 0.9 and max(scales) > 1.1  # jitter; crops are offset above 1


def test_training_batches_are_deterministic_shuffled_per_epoch_and_augmented(records):
    epoch0 = list(detection_batches(records, TRAIN, epoch=0))
    assert len(epoch0) == 2 and all(b["valid"].all() for b in epoch0)
    assert _equal_batches(epoch0, list(detection_batches(
        records, dataclasses.replace(TRAIN, num_workers=1, prefetch_batches=1), epoch=0)))
    epoch1 = list(detection_batches(records, TRAIN, epoch=1))
    assert not _equal_batches(epoch0, epoch1)
    ids = np.concatenate([b["image_ids"] for b in epoch0])
    assert len(set(ids.tolist())) == 8 and ids.tolist() != sorted(ids.tolist())
    scales = np.concatenate([b["scales"] for b in epoch0])
    assert np.all((scales >= 0.8) & (scales <= 1.2)) and len(set(scales.tolist())) == 8


def test_classification_batches():
    rng = np.random.default_rng(0)
    source = [ClassificationRecord(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8), i % 10)
              for i in range(6)]
    config = InputConfig(image_size=16, batch_size=4, train=False)
    batches = list(classification_batches(source, config))
    assert [b["labels"].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 0, 0]]
    assert batches[1]["valid"].tolist() == [True, True, False, False]
    assert batches[0]["images"].shape == (4, 16, 16, 3)
    train = dataclasses.replace(config, train=True)
    assert _equal_batches(list(classification_batches(source, train, epoch=2)),
                          list(classification_batches(source, train, epoch=2)))


def test_training_needs_a_full_batch_and_configs_name_bad_fields(records):
    with pytest.raises(ValueError, match="batch_size=16"):
        list(detection_batches(records, dataclasses.replace(TRAIN, batch_size=16)))
    with pytest.raises(ValueError, match=r"scale_range=\(1.2, 0.8\)"):
        InputConfig(scale_range=(1.2, 0.8))
    with pytest.raises(ValueError, match=r"negative_iou/positive_iou=\(0.6, 0.5\)"):
        AnchorConfig(negative_iou=0.6)

"""The COCO evaluator on hand-made cases, and end to end from input batches."""

import dataclasses

import numpy as np
import pytest

from proxy_tasks.coco_eval import (METRICS, ImageAnnotations, annotations_from_batch,
                                   annotations_from_record,
                                   coco_detections, coco_ground_truth, detections_from_batch,
                                   evaluate)
from proxy_tasks.data import InputConfig, detection_batches
from tests.proxy_tasks.data_helpers import scene_records


def _image(image_id, boxes, labels, areas):
    boxes = np.array(boxes, np.float32).reshape(-1, 4)
    return ImageAnnotations(image_id, boxes, np.array(labels),
                            np.array(areas, np.float32), np.zeros(len(boxes), bool))


# One small (10x10), one medium (50x50) and one large (100x100) box over two classes.
GROUND_TRUTH = [_image(1, [[0, 0, 10, 10], [20, 20, 70, 70]], [0, 1], [100, 2500]),
                _image(2, [[50, 50, 150, 150]], [1], [10000]),
                _image(3, [], [], [])]


def _detect(per_image):
    """COCO results from {image_id: [(box, score, class), ...]}."""
    ids = list(per_image)
    width = max(len(v) for v in per_image.values())
    boxes, scores, classes = np.zeros((len(ids), width, 4)), np.zeros((len(ids), width)), \
        np.full((len(ids), width), -1)
    for i, image_id in enumerate(ids):
        for j, (box, score, label) in enumerate(per_image[image_id]):
            boxes[i, j], scores[i, j], classes[i, j] = box, score, label
    return coco_detections(ids, boxes, scores, classes)


def test_perfect_detections_score_one():
    detections = _detect({image.image_id: [(b, 0.9, l) for b, l in zip(image.boxes, image.labels)]
                          for image in GROUND_TRUTH[:2]})
    metrics = evaluate(coco_ground_truth(GROUND_TRUTH, 2), detections)
    assert metrics == pytest.approx({m: 1.0 for m in METRICS}, abs=1e-12)


def test_no_detections_score_zero():
    assert evaluate(coco_ground_truth(GROUND_TRUTH, 2), []) == {m: 0.0 for m in METRICS}


def test_wrong_class_scores_zero():
    detections = _detect({1: [(GROUND_TRUTH[0].boxes[0], 0.9, 1)]})
    assert evaluate(coco_ground_truth(GROUND_TRUTH[:1], 2), detections)["ap"] == 0.0


def test_known_partial_case():
    """Two 10x10 boxes of one class. Image 1: an exact detection (score 0.9). Image 2: a
    detection 7.25 high over the 10 high box (IoU 0.725, score 0.8).

    At IoU thresholds 0.50..0.70 (5 of 10) both match: precision 1 at every recall -> AP 1.
    At 0.75..0.95 only the first does: recall 0.5 at precision 1, then a false positive; of the
    101 recall points 0, 0.01, ..., 1 the 51 up to 0.5 have precision 1, the rest 0 -> 51/101.
    AP = (5 * 1 + 5 * 51/101) / 10 = 760/1010; AP50 = 1; AP75 = 51/101; all boxes are small
    (area 100 < 32^2), so AP_small = AP and medium/large have no ground truth (reported 0).
    """
    truth = [_image(1, [[0, 0, 10, 10]], [0], [100]), _image(2, [[0, 0, 10, 10]], [0], [100])]
    detections = _detect({1: [([0, 0, 10, 10], 0.9, 0)], 2: [([0, 0, 7.25, 10], 0.8, 0)]})
    metrics = evaluate(coco_ground_truth(truth, 1), detections)
    expected = {"ap": 760 / 1010, "ap50": 1.0, "ap75": 51 / 101, "ap_small": 760 / 1010,
                "ap_medium": 0.0, "ap_large": 0.0}
    assert metrics.keys() == expected.keys()
    for name in expected:
        assert abs(metrics[name] - expected[name]) < 1e-9, name


def test_evaluator_prints_nothing(capsys):
    evaluate(coco_ground_truth(GROUND_TRUTH, 2), [])
    assert capsys.readouterr().out == ""


def test_batches_round_trip_to_perfect_ap():
    """Ground truth from eval batches, and detections at the ground truth in input pixels
    (mapped back by the batches' scales), give AP 1 over images of several sizes."""
    records = scene_records(6, size=64)
    # 64 x 192 (scale 0.25): x * 192 is not exact in float32, so the records' route to the ground
    # truth must round as the batches' does
    wide = np.concatenate([records[1].image] * 3, 1)
    records[1] = dataclasses.replace(records[1], image=wide,
                                     boxes=records[1].boxes / np.float32([1, 3, 1, 3]))
    config = InputConfig(image_size=48, batch_size=4, train=False)
    truth, detections = [], []
    for batch in detection_batches(records, config):
        truth += annotations_from_batch(batch)
        boxes = batch["gt_boxes"] * batch["scales"][:, None, None]
        detections += detections_from_batch(batch, boxes, np.ones(batch["gt_classes"].shape),
                                            batch["gt_classes"])
    assert [t.image_id for t in truth] == [1, 2, 3, 4, 5, 6]
    from_records = coco_ground_truth(map(annotations_from_record, records), 10).dataset
    assert from_records == coco_ground_truth(truth, 10).dataset
    metrics = evaluate(coco_ground_truth(truth, 10), detections)
    assert metrics["ap"] == pytest.approx(1.0, abs=1e-12) and metrics["ap50"] == 1.0


def test_boxes_become_coco_xywh_in_float64():
    """(ymin, xmin, ymax, xmax) = (10, 20, 40, 80) is COCO's [x 20, y 10, w 60, h 30], in
    ground truth and detections alike; float32 corners 2^-20 and 1024 are 1024 - 2^-20 wide
    (float32 arithmetic would round that to 1024)."""
    boxes = np.float32([[10, 20, 40, 80], [0, 2.0 ** -20, 1, 1024]])
    truth = coco_ground_truth([_image(1, boxes, [0, 0], [1800, 1024])], 1).dataset["annotations"]
    found = coco_detections([1], boxes[None], np.ones((1, 2)), np.zeros((1, 2), int))
    expected = [[20, 10, 60, 30], [2.0 ** -20, 0, 1024 - 2.0 ** -20, 1]]
    assert [a["bbox"] for a in truth] == [d["bbox"] for d in found] == expected


def test_second_detection_of_a_matched_box_is_a_false_positive():
    """Two boxes; detections: one on the first (0.9), again on the first (0.8), one on the
    second (0.7): TP, FP, TP. Precision 1 up to recall 0.5, then 2/3 up to recall 1: of the 101
    recall points 51 at 1 and 50 at 2/3 -> AP (51 + 100/3) / 101 = 253/303 at every threshold."""
    first, second = [0, 0, 10, 10], [0, 50, 10, 60]
    truth = [_image(1, [first, second], [0, 0], [100, 100])]
    detections = _detect({1: [(first, 0.9, 0), (first, 0.8, 0), (second, 0.7, 0)]})
    metrics = evaluate(coco_ground_truth(truth, 1), detections)
    assert metrics == pytest.approx({"ap": 253 / 303, "ap50": 253 / 303, "ap75": 253 / 303,
                                     "ap_small": 253 / 303, "ap_medium": 0.0, "ap_large": 0.0},
                                    abs=1e-12)


def test_false_positive_counts_only_in_its_own_area_range():
    """A 10x10 box found (0.8) after a false positive 100 wide, 30 high (area 3000, medium; 0.9):
    over all areas precision is 1/2 at recall 1 -> AP 1/2; among small boxes COCO ignores the
    medium false positive -> AP_small 1; no medium or large ground truth -> 0."""
    truth = [_image(1, [[0, 0, 10, 10]], [0], [100])]
    detections = _detect({1: [([100, 50, 130, 150], 0.9, 0), ([0, 0, 10, 10], 0.8, 0)]})
    metrics = evaluate(coco_ground_truth(truth, 1), detections)
    assert metrics == pytest.approx({"ap": 0.5, "ap50": 0.5, "ap75": 0.5, "ap_small": 1.0,
                                     "ap_medium": 0.0, "ap_large": 0.0}, abs=1e-12)


def test_detections_map_back_to_original_pixels_clipped_to_the_image():
    """Scale 0.5, original image 50 high, 80 wide: input box (-10, 20, 30, 100) is (-20, 40, 60,
    200) in original pixels, clipped to (0, 40, 50, 80): [x 40, y 0, w 40, h 50]. The invalid
    second image gives nothing."""
    batch = {"valid": np.array([True, False]), "image_ids": np.array([7, 8]),
             "image_sizes": np.int32([[50, 80], [50, 80]]), "scales": np.float32([0.5, 0.5])}
    boxes = np.float32([[[-10, 20, 30, 100]], [[0, 0, 10, 10]]])
    found = detections_from_batch(batch, boxes, np.float32([[0.7], [0.9]]), np.array([[3], [1]]))
    assert found == [{"image_id": 7, "category_id": 3, "bbox": [40, 0, 40, 50],
                      "score": pytest.approx(0.7)}]

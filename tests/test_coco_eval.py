"""The COCO evaluator on hand-made cases, and end to end from input batches."""

import dataclasses

import numpy as np
import pytest

from proxy_tasks.coco_eval import (METRICS, ImageAnnotations, annotations_from_batch,
                                   annotations_from_record,
                                   coco_detections, coco_ground_truth, detections_from_batch,
                                   evaluate)
from proxy_tasks.data import InputConfig, detection_batches
from tests.data_helpers import scene_records


def _image(image_id, boxes, labels, areas):
    boxes = np.array(boxes, np.float32).reshape(-1, 4)
    return ImageAnnotations(image_id, 200, 200, boxes, np.array(labels),
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
    wide = np.concatenate([records[1].image, records[1].image], 1)  # 64 x 128: scale 0.375
    records[1] = dataclasses.replace(records[1], image=wide,
                                     boxes=records[1].boxes * np.float32([1, 0.5, 1, 0.5]))
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
    assert (truth[1].height, truth[1].width) == (64, 128)
    metrics = evaluate(coco_ground_truth(truth, 10), detections)
    assert metrics["ap"] == pytest.approx(1.0, abs=1e-12) and metrics["ap50"] == 1.0

"""COCO box AP with pycocotools, from in-memory ground truth and detections (no files).

Boxes come in as `(ymin, xmin, ymax, xmax)` pixels of the original image and are converted to
COCO's `[x, y, width, height]`. pycocotools' printing is silenced; its errors are not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from typing import Dict, Iterable, List, Mapping, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

# Names of COCOeval.stats[0:6], in order.
METRICS = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large")


@dataclasses.dataclass(frozen=True)
class ImageAnnotations:
    """The ground truth of one image, in its original pixels."""

    image_id: int
    boxes: np.ndarray      # float [N, 4] (ymin, xmin, ymax, xmax)
    labels: np.ndarray     # int [N], 0..num_classes-1
    areas: np.ndarray      # float [N], COCO's 'area' (decides small/medium/large)
    is_crowd: np.ndarray   # bool [N]


def _xywh(boxes: np.ndarray) -> np.ndarray:
    """[N, 4] (ymin, xmin, ymax, xmax) -> COCO's (x, y, width, height), in float64."""
    boxes = np.asarray(boxes, np.float64)
    return np.stack([boxes[:, 1], boxes[:, 0], boxes[:, 3] - boxes[:, 1],
                     boxes[:, 2] - boxes[:, 0]], 1)


def _coco(images: List[dict], annotations: List[dict], num_classes: int) -> COCO:
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations,
                    "categories": [{"id": k} for k in range(num_classes)]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def coco_ground_truth(images: Iterable[ImageAnnotations], num_classes: int) -> COCO:
    """A pycocotools COCO object of the given images; annotation ids are 1.. (COCOeval treats 0
    as 'unmatched'). Box evaluation reads no image size, so the images carry none."""
    image_entries, annotations = [], []
    for image in images:
        image_entries.append({"id": int(image.image_id)})
        for box, label, area, crowd in zip(_xywh(image.boxes), image.labels, image.areas,
                                           image.is_crowd):
            annotations.append({"id": len(annotations) + 1, "image_id": int(image.image_id),
                                "category_id": int(label), "bbox": box.tolist(),
                                "area": float(area), "iscrowd": int(crowd)})
    return _coco(image_entries, annotations, num_classes)


def coco_detections(image_ids: Sequence[int], boxes: np.ndarray, scores: np.ndarray,
                    classes: np.ndarray) -> List[dict]:
    """COCO result dicts from per-image arrays [B], [B, M, 4], [B, M], [B, M]; class < 0 rows
    (past an image's last detection) are skipped."""
    results = []
    for image_id, image_boxes, image_scores, image_classes in zip(image_ids, boxes, scores,
                                                                  classes):
        for box, score, label in zip(_xywh(image_boxes), image_scores, image_classes):
            if label >= 0:
                results.append({"image_id": int(image_id), "category_id": int(label),
                                "bbox": box.tolist(), "score": float(score)})
    return results


def evaluate(ground_truth: COCO, detections: Sequence[Mapping]) -> Dict[str, float]:
    """COCOeval box metrics `METRICS` in [0, 1]; a metric with no ground truth in its area
    range (COCOeval's -1) is reported as 0.0."""
    results = [dict(d, id=i + 1, area=d["bbox"][2] * d["bbox"][3])
               for i, d in enumerate(detections)]
    predicted = _coco(ground_truth.dataset["images"], results,
                      len(ground_truth.dataset["categories"]))
    evaluator = COCOeval(ground_truth, predicted, iouType="bbox")
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: max(float(value), 0.0) for name, value in zip(METRICS, evaluator.stats)}


def annotations_from_record(record) -> ImageAnnotations:
    """The ground truth of a `proxy_tasks.data.DetectionRecord` (normalized boxes -> pixels)."""
    height, width = record.image.shape[:2]
    return ImageAnnotations(record.image_id,
                            record.boxes * np.array([height, width, height, width], np.float32),
                            record.labels, record.areas, record.is_crowd)


def annotations_from_batch(batch: Mapping[str, np.ndarray]) -> List[ImageAnnotations]:
    """The ground truth carried by a detection input batch (its `valid` images only)."""
    out = []
    for i in np.flatnonzero(batch["valid"]):
        real = batch["gt_classes"][i] >= 0
        out.append(ImageAnnotations(
            image_id=int(batch["image_ids"][i]), boxes=batch["gt_boxes"][i][real],
            labels=batch["gt_classes"][i][real], areas=batch["gt_areas"][i][real],
            is_crowd=batch["gt_is_crowd"][i][real]))
    return out


def detections_from_batch(batch: Mapping[str, np.ndarray], boxes: np.ndarray, scores: np.ndarray,
                          classes: np.ndarray) -> List[dict]:
    """COCO results for an evaluation batch's valid images from detections in input pixels
    ([B, M, 4], as `proxy_tasks.models.detect` returns them), mapped back to original pixels by
    dividing by `scales` (evaluation batches are never cropped, so there is no offset)."""
    valid = np.flatnonzero(batch["valid"])
    sizes = batch["image_sizes"][valid]
    limits = np.concatenate([sizes, sizes], 1)[:, None, :]
    original = np.clip(np.asarray(boxes)[valid] / batch["scales"][valid][:, None, None], 0,
                       limits)
    return coco_detections(batch["image_ids"][valid], original, np.asarray(scores)[valid],
                           np.asarray(classes)[valid])

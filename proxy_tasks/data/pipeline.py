"""Batched, prefetched numpy input pipelines for detection and classification (no TensorFlow).

Examples are transformed in a thread pool; each one's augmentation draws from its own RNG
seeded by (seed, epoch, position), so an epoch's batches are identical whatever the thread
timing. Training shuffles per epoch and drops the last partial batch; evaluation keeps order
and pads the last batch, marking padding with `valid = False`.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np
from PIL import Image

from proxy_tasks.data.config import check
from proxy_tasks.data.prefetch import parallel_map
from proxy_tasks.data.records import ClassificationRecord, DetectionRecord
from proxy_tasks.data.targets import assign_targets
from proxy_tasks.data.transforms import (boxes_to_output, flip_horizontally, normalize,
                                         resize_crop_pad)
from proxy_tasks.models.anchors import anchor_boxes


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """Batching and augmentation shared by both pipelines; augmentation only when `train`."""

    image_size: int = 256
    batch_size: int = 16
    train: bool = True
    seed: int = 0
    scale_range: Tuple[float, float] = (0.8, 1.2)
    flip: bool = True
    num_workers: int = 2
    prefetch_batches: int = 4

    def __post_init__(self):
        check(self.image_size >= 8, "image_size", self.image_size, "must be >= 8")
        check(self.batch_size >= 1, "batch_size", self.batch_size, "must be >= 1")
        check(0 < self.scale_range[0] <= self.scale_range[1], "scale_range", self.scale_range,
              "need 0 < low <= high")
        check(self.num_workers >= 1, "num_workers", self.num_workers, "must be >= 1")
        check(self.prefetch_batches >= 1, "prefetch_batches", self.prefetch_batches,
              "must be >= 1")


@dataclasses.dataclass(frozen=True)
class AnchorConfig:
    """RetinaNet anchors and target assignment: IoU thresholds (spec section 4) and whether each
    box's best anchor is forced positive (see `proxy_tasks.data.targets`)."""

    min_level: int = 3
    max_level: int = 7
    num_scales: int = 3
    aspect_ratios: Tuple[float, ...] = (1.0, 2.0, 0.5)
    anchor_size: float = 3.0
    positive_iou: float = 0.5
    negative_iou: float = 0.4
    force_match: bool = True
    max_boxes: int = 100

    def __post_init__(self):
        check(1 <= self.min_level <= self.max_level, "min_level/max_level",
              (self.min_level, self.max_level), "need 1 <= min_level <= max_level")
        check(0 < self.negative_iou <= self.positive_iou <= 1, "negative_iou/positive_iou",
              (self.negative_iou, self.positive_iou), "need 0 < negative <= positive <= 1")
        check(self.max_boxes >= 1, "max_boxes", self.max_boxes, "must be >= 1")

    def anchors(self, image_size: int) -> np.ndarray:
        """[N, 4] anchors in output pixels, in the models' flattened order."""
        return anchor_boxes(image_size, image_size, range(self.min_level, self.max_level + 1),
                            self.num_scales, self.aspect_ratios, self.anchor_size)


def epoch_order(num_examples: int, config: InputConfig, epoch: int) -> List[np.ndarray]:
    """The example positions of each batch of `epoch`; -1 marks evaluation padding."""
    if config.train:
        order = np.random.default_rng([config.seed, epoch]).permutation(num_examples)
        whole = num_examples // config.batch_size * config.batch_size
        check(whole > 0, "batch_size", config.batch_size,
              f"exceeds the {num_examples} training examples")
        return list(order[:whole].reshape(-1, config.batch_size))
    padded = -(-num_examples // config.batch_size) * config.batch_size
    order = np.where(np.arange(padded) < num_examples, np.arange(padded), -1)
    return list(order.reshape(-1, config.batch_size))


def _example_rng(config: InputConfig, epoch: int, position: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, epoch, position, 1])


def _pad_rows(values: np.ndarray, rows: int, fill) -> np.ndarray:
    out = np.full((rows,) + values.shape[1:], fill, values.dtype)
    out[:len(values)] = values
    return out


def detection_example(record: DetectionRecord, rng: np.random.Generator, config: InputConfig,
                      anchor_config: AnchorConfig, anchors: np.ndarray) -> Dict[str, np.ndarray]:
    """One image's model inputs, anchor targets and (original pixel) ground truth."""
    check(len(record.labels) <= anchor_config.max_boxes, "max_boxes", anchor_config.max_boxes,
          f"image {record.image_id} has {len(record.labels)} boxes")
    height, width = record.image.shape[:2]
    image, boxes, jitter, offset = record.image, record.boxes, 1.0, (0.0, 0.0)
    if config.train:
        if config.flip and rng.random() < 0.5:
            image, boxes = flip_horizontally(image, boxes)
        jitter = rng.uniform(*config.scale_range)
        offset = tuple(rng.random(2))
    pixels, scale, crop = resize_crop_pad(image, config.image_size, jitter, offset)
    out_boxes = boxes_to_output(boxes, (height, width), scale, crop, config.image_size)
    keep = ((out_boxes[:, 2] > out_boxes[:, 0]) & (out_boxes[:, 3] > out_boxes[:, 1])
            & ~record.is_crowd)
    cls_targets, box_targets = assign_targets(anchors, out_boxes[keep], record.labels[keep],
                                              anchor_config.positive_iou,
                                              anchor_config.negative_iou,
                                              anchor_config.force_match)
    original = record.boxes * np.array([height, width, height, width], np.float32)
    rows = anchor_config.max_boxes
    return {"images": pixels, "cls_targets": cls_targets, "box_targets": box_targets,
            "image_ids": np.int64(record.image_id), "scales": np.float32(scale),
            "image_sizes": np.array([height, width], np.int32),
            "gt_boxes": _pad_rows(original, rows, 0.0),
            "gt_classes": _pad_rows(record.labels.astype(np.int32), rows, -1),
            "gt_areas": _pad_rows(record.areas, rows, 0.0),
            "gt_is_crowd": _pad_rows(record.is_crowd, rows, False),
            "valid": np.bool_(True)}


def _collate(examples: List[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    """Stacks examples; a None example (eval padding) becomes a zero row with valid=False."""
    template = next(e for e in examples if e is not None)
    filler = {k: np.zeros_like(v) for k, v in template.items()}
    filler["valid"] = np.bool_(False)
    return {k: np.stack([(e if e is not None else filler)[k] for e in examples])
            for k in template}


def _batches(source: Sequence, config: InputConfig, epoch: int, make) -> Iterator[Dict]:
    def batch(positions):
        return _collate([make(source[p], _example_rng(config, epoch, p)) if p >= 0 else None
                         for p in positions])
    return parallel_map(batch, epoch_order(len(source), config, epoch), config.num_workers,
                        config.prefetch_batches)


def detection_batches(source: Sequence[DetectionRecord], config: InputConfig,
                      anchor_config: AnchorConfig = AnchorConfig(), epoch: int = 0
                      ) -> Iterator[Dict[str, np.ndarray]]:
    """One epoch of detection batches: `images` f32 [B, S, S, 3], `cls_targets` i32 [B, N]
    (class, NEGATIVE -1, IGNORE -2), `box_targets` f32 [B, N, 4], and for evaluation
    `image_ids`, `scales`, `image_sizes`, `gt_*` (original pixels, classes -1 past the last)
    and `valid`."""
    anchors = anchor_config.anchors(config.image_size)
    return _batches(source, config, epoch,
                    lambda record, rng: detection_example(record, rng, config, anchor_config,
                                                          anchors))


def classification_example(record: ClassificationRecord, rng: np.random.Generator,
                           config: InputConfig) -> Dict[str, np.ndarray]:
    """One image resized to the square input (flipped at random when training) and its label."""
    image = record.image
    if config.train and config.flip and rng.random() < 0.5:
        image = image[:, ::-1]
    if image.shape[:2] != (config.image_size, config.image_size):
        image = Image.fromarray(np.ascontiguousarray(image)).resize(
            (config.image_size, config.image_size), Image.BILINEAR)
    return {"images": normalize(image), "labels": np.int32(record.label), "valid": np.bool_(True)}


def classification_batches(source: Sequence[ClassificationRecord], config: InputConfig,
                           epoch: int = 0) -> Iterator[Dict[str, np.ndarray]]:
    """One epoch of `images` f32 [B, S, S, 3], `labels` i32 [B] and `valid` bool [B]."""
    return _batches(source, config, epoch,
                    lambda record, rng: classification_example(record, rng, config))

"""Decoded examples as plain numpy records, and random-access views over TFDS data sources."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class DetectionRecord:
    """One image and its objects; boxes are normalized `(ymin, xmin, ymax, xmax)`."""

    image: np.ndarray       # uint8 [H, W, 3]
    image_id: int
    boxes: np.ndarray       # float32 [N, 4]
    labels: np.ndarray      # int32 [N]
    areas: np.ndarray       # float32 [N], in pixels of the stored image (COCO's 'area')
    is_crowd: np.ndarray    # bool [N]


@dataclasses.dataclass(frozen=True)
class ClassificationRecord:
    image: np.ndarray       # uint8 [H, W, 3]
    label: int


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, np.uint8)
    return np.repeat(image, 3, -1) if image.shape[-1] == 1 else image


def detection_record(example: dict) -> DetectionRecord:
    """A TFDS coco-style example (as a numpy data source returns it) as a `DetectionRecord`."""
    objects = example["objects"]
    return DetectionRecord(
        image=_rgb(example["image"]), image_id=int(example["image/id"]),
        boxes=np.asarray(objects["bbox"], np.float32).reshape(-1, 4),
        labels=np.asarray(objects["label"], np.int32).reshape(-1),
        areas=np.asarray(objects["area"], np.float32).reshape(-1),
        is_crowd=np.asarray(objects["is_crowd"], bool).reshape(-1))


def classification_record(example: dict) -> ClassificationRecord:
    """A TFDS supervised image example (`image`, `label`) as a `ClassificationRecord`."""
    return ClassificationRecord(image=_rgb(example["image"]), label=int(example["label"]))


class IndexedSource(Sequence):
    """The examples `indices` of a random-access `source`, each passed through `decode`."""

    def __init__(self, source: Sequence, decode: Callable[[Any], Any],
                 indices: Sequence[int] = None):
        self._source, self._decode = source, decode
        self._indices = np.arange(len(source)) if indices is None else np.asarray(indices)

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, i: int):
        return self._decode(self._source[int(self._indices[i])])

"""Configuration of the embedded datasets (digits on photos, or shapes), validated on
construction."""

from __future__ import annotations

import dataclasses
import hashlib
import math

from proxy_tasks.presets import SCENES

SPLITS = ("train", "holdout", "validation")


def check(condition: bool, field: str, value, requirement: str) -> None:
    """Raises ValueError naming `field` and `value` unless `condition` holds."""
    if not condition:
        raise ValueError(f"{field}={value!r}: {requirement}")


@dataclasses.dataclass(frozen=True)
class EmbeddedConfig:
    """What the embedded datasets contain; equal configs give byte-identical datasets.

    `scenes`: outlined handwritten digits on photo crops, or geometric shapes on noisy flat
    backgrounds (proxy_tasks/data/shapes.py; the digit and photo fields do not apply).
    Object sizes (the long side of an object's box) are log-uniform between
    `min_object_fraction` and `max_object_fraction` of `image_size`. Digits of the three splits
    come from disjoint samples of scikit-learn's digits, in proportions `digit_fractions`.
    Each photo crop's contrast is scaled by a factor drawn from `background_contrast`: a dimmed
    photo keeps its clutter but lets the digits stand out, so a short proxy learns them sooner.
    """

    image_size: int = 256
    train_images: int = 2048
    holdout_images: int = 512
    validation_images: int = 512
    seed: int = 0
    min_objects: int = 1
    max_objects: int = 6
    min_object_fraction: float = 1 / 16
    max_object_fraction: float = 1.0
    max_distractors: int = 4
    background_contrast: tuple = (0.2, 0.5)
    min_visible: float = 0.5
    digit_fractions: tuple = (0.6, 0.2, 0.2)
    scenes: str = "digits"

    def __post_init__(self):
        check(self.scenes in SCENES, "scenes", self.scenes, f"must be one of {SCENES}")
        check(self.image_size >= 32, "image_size", self.image_size, "must be >= 32")
        for name in ("train_images", "holdout_images", "validation_images"):
            check(getattr(self, name) >= 1, name, getattr(self, name), "must be >= 1")
        check(self.seed >= 0, "seed", self.seed, "must be >= 0")
        check(1 <= self.min_objects <= self.max_objects, "min_objects/max_objects",
              (self.min_objects, self.max_objects), "need 1 <= min_objects <= max_objects")
        check(0 < self.min_object_fraction < self.max_object_fraction <= 1.0,
              "min_object_fraction/max_object_fraction",
              (self.min_object_fraction, self.max_object_fraction),
              "need 0 < min < max <= 1")
        check(self.min_object_fraction * self.image_size >= 4, "min_object_fraction",
              self.min_object_fraction, f"objects under 4 px at image_size={self.image_size}")
        check(self.max_distractors >= 0, "max_distractors", self.max_distractors, "must be >= 0")
        check(len(self.background_contrast) == 2
              and 0 <= self.background_contrast[0] <= self.background_contrast[1],
              "background_contrast", self.background_contrast,
              "need (low, high) with 0 <= low <= high")
        check(0 < self.min_visible <= 1, "min_visible", self.min_visible, "must be in (0, 1]")
        check(len(self.digit_fractions) == 3 and min(self.digit_fractions) > 0
              and math.isclose(sum(self.digit_fractions), 1.0), "digit_fractions",
              self.digit_fractions, "need three positive fractions summing to 1")

    @property
    def octaves(self) -> float:
        """How many octaves the object sizes span."""
        return math.log2(self.max_object_fraction / self.min_object_fraction)

    def images_in(self, split: str) -> int:
        check(split in SPLITS, "split", split, f"must be one of {SPLITS}")
        return {"train": self.train_images, "holdout": self.holdout_images,
                "validation": self.validation_images}[split]

    @property
    def name(self) -> str:
        """A directory-safe name that differs for every distinct config."""
        digest = hashlib.sha1(repr(dataclasses.astuple(self)).encode()).hexdigest()[:10]
        return f"s{self.image_size}_seed{self.seed}_{digest}"

"""The real images the embedded datasets are made of: scikit-learn digits and skimage photos.

Both ship inside the installed packages, so nothing is downloaded.
"""

from __future__ import annotations

import functools
import os
from typing import Tuple

import numpy as np
from PIL import Image

from proxy_tasks.data.config import SPLITS, EmbeddedConfig

# Photographs bundled with scikit-image (text, drawings and synthetic patterns left out).
PHOTOS = ("astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "coffee.png",
          "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png",
          "motorcycle_left.png", "retina.jpg", "rocket.jpg")


def _skimage_data_dir() -> str:
    # skimage.data's directory holds the bundled files; reading them directly avoids its fetcher.
    import skimage
    return os.path.join(os.path.dirname(skimage.__file__), "data")


@functools.lru_cache(maxsize=4)
def load_photos(max_short_side: int) -> Tuple[Image.Image, ...]:
    """The bundled photographs in RGB, shrunk so the short side is at most `max_short_side`.

    Shrinking once up front keeps every later crop-and-resize cheap.
    """
    directory = _skimage_data_dir()
    photos = []
    for name in PHOTOS:
        photo = Image.open(os.path.join(directory, name)).convert("RGB")
        shrink = max_short_side / min(photo.size)
        if shrink < 1:
            photo = photo.resize((round(photo.width * shrink), round(photo.height * shrink)),
                                 Image.BILINEAR, reducing_gap=3.0)
        photos.append(photo)
    return tuple(photos)


@functools.lru_cache(maxsize=1)
def load_digits() -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits: (images float32 [N, 8, 8] in [0, 1], labels [N])."""
    from sklearn.datasets import load_digits as sklearn_digits
    data = sklearn_digits()
    return (data.images / 16.0).astype(np.float32), data.target.astype(np.int64)


def split_digit_indices(config: EmbeddedConfig, split: str) -> np.ndarray:
    """Indices of the digit samples `split` draws from; the three splits' are disjoint.

    A seeded permutation of each class is cut in `config.digit_fractions`, so every split has
    every class.
    """
    labels = load_digits()[1]
    position = SPLITS.index(split)
    rng = np.random.default_rng([config.seed, 7919])
    chosen = []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        cuts = np.round(np.cumsum((0.0,) + config.digit_fractions) * len(members)).astype(int)
        chosen.append(members[cuts[position]:cuts[position + 1]])
    return np.sort(np.concatenate(chosen))


def split_digits(config: EmbeddedConfig, split: str) -> Tuple[np.ndarray, np.ndarray]:
    """(images, labels) of the digit samples of `split`."""
    images, labels = load_digits()
    chosen = split_digit_indices(config, split)
    return images[chosen], labels[chosen]

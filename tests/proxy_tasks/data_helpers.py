"""Shared test helpers: small in-memory detection records rendered by the embedded generator."""

import numpy as np

from proxy_tasks.data import DetectionRecord, EmbeddedConfig
from proxy_tasks.data.render import render_scene
from proxy_tasks.data.sources import load_photos, split_digits


def scene_records(count: int, size: int = 64, seed: int = 0):
    """`count` DetectionRecords of size x size scenes (image ids 1..count)."""
    config = EmbeddedConfig(image_size=size, seed=seed)
    digits, labels = split_digits(config, "train")
    records = []
    for i in range(count):
        scene = render_scene(np.random.default_rng([seed, i]), load_photos(2 * size), digits,
                             labels, config)
        records.append(DetectionRecord(
            image=scene.image, image_id=i + 1, boxes=scene.boxes / size,
            labels=scene.labels.astype(np.int32), areas=scene.areas.astype(np.float32),
            is_crowd=np.zeros(len(scene.labels), bool)))
    return records

"""COCO 2017 from a TFDS data directory the user prepared, with the paper's seeded holdout.

Nothing downloads. Prepare once, on a machine with TensorFlow and the COCO files:

    pip install tensorflow tensorflow-datasets
    tfds build coco/2017 --file_format=array_record --data_dir DATA_DIR
    # or in Python:
    # tfds.builder("coco/2017", data_dir=DATA_DIR, file_format="array_record").download_and_prepare()

then copy DATA_DIR/coco/2017/<version>/ here. Reading it needs no TensorFlow.
"""

from __future__ import annotations

import os
from typing import Dict, Tuple

import numpy as np
import tensorflow_datasets as tfds

from proxy_tasks.data.config import check
from proxy_tasks.data.records import IndexedSource, detection_record

COCO_HOLDOUT_SIZE = 7392  # images of train2017 held out as the search reward split
PREPARE_HINT = ("prepare it once where TensorFlow and the COCO files are available: "
                "`tfds build coco/2017 --file_format=array_record --data_dir {data_dir}` "
                "(see proxy_tasks/data/coco.py)")


class DatasetNotPrepared(FileNotFoundError):
    """A dataset directory is missing or was not prepared in array_record format."""


def _version_dirs(root: str):
    names = os.listdir(root) if os.path.isdir(root) else []
    return sorted((n for n in names if os.path.isfile(os.path.join(root, n, "dataset_info.json"))),
                  key=lambda n: tuple(int(p) for p in n.split(".") if p.isdigit()))


def coco_builder(data_dir: str) -> tfds.core.DatasetBuilder:
    """The prepared `coco/2017` under `data_dir` (newest version), read without TensorFlow."""
    root = os.path.join(os.fspath(data_dir), "coco", "2017")
    versions = _version_dirs(root)
    if not versions:
        raise DatasetNotPrepared(f"COCO 2017 is not prepared in data_dir={data_dir!r} (no "
                                 f"{root}/<version>/dataset_info.json); "
                                 + PREPARE_HINT.format(data_dir=data_dir))
    builder = tfds.builder_from_directory(os.path.join(root, versions[-1]))
    file_format = builder.info.file_format
    if file_format is None or file_format.value != "array_record":
        raise DatasetNotPrepared(f"COCO 2017 in data_dir={data_dir!r} is in file format "
                                 f"{file_format and file_format.value!r}, not array_record; "
                                 + PREPARE_HINT.format(data_dir=data_dir))
    return builder


def holdout_split(num_examples: int, holdout_size: int = COCO_HOLDOUT_SIZE,
                  seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """(train indices, holdout indices), sorted and disjoint: a seeded random `holdout_size`."""
    check(0 < holdout_size < num_examples, "holdout_size", holdout_size,
          f"must be in (0, {num_examples}), the number of train2017 examples")
    chosen = np.random.default_rng([seed, 2017]).permutation(num_examples)
    return np.sort(chosen[holdout_size:]), np.sort(chosen[:holdout_size])


def coco_sources(data_dir: str, seed: int = 0,
                 holdout_size: int = COCO_HOLDOUT_SIZE) -> Dict[str, IndexedSource]:
    """`train` (train2017 less the holdout), `holdout` (the reward split) and `validation`
    (val2017) as sequences of `DetectionRecord`s; labels are TFDS' contiguous 0..79."""
    builder = coco_builder(data_dir)
    train = builder.as_data_source("train")
    train_indices, holdout_indices = holdout_split(len(train), holdout_size, seed)
    return {"train": IndexedSource(train, detection_record, train_indices),
            "holdout": IndexedSource(train, detection_record, holdout_indices),
            "validation": IndexedSource(builder.as_data_source("validation"), detection_record)}

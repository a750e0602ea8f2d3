"""COCO 2017 from a prepared TFDS directory: a tiny fake `coco/2017` written with TFDS, in the
real builder's features spec, read without TensorFlow; the seeded 7,392-style holdout."""

import io
import json
import shutil
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from proxy_tasks.data import (COCO_HOLDOUT_SIZE, DatasetNotPrepared, coco_builder, coco_sources,
                              holdout_split)

TRAIN, VALIDATION, HOLDOUT = 30, 6, 7


class FakeCoco(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """`coco/2017` as TFDS 4.9 writes it (same name, config, version and features)."""

    name = "coco"
    VERSION = tfds.core.Version("1.1.0")
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="2017")]
    url_infos = None

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(encoding_format="jpeg"),
            "image/filename": tfds.features.Text(),
            "image/id": np.int64,
            "objects": tfds.features.Sequence({
                "id": np.int64, "area": np.int64, "bbox": tfds.features.BBoxFeature(),
                "label": tfds.features.ClassLabel(num_classes=80), "is_crowd": np.bool_}),
        }))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(TRAIN, 0),
                "validation": self._generate_examples(VALIDATION, 1000)}

    def _generate_examples(self, count, first_id):
        for i in range(count):
            image_id = first_id + i + 1
            buffer = io.BytesIO()
            Image.fromarray(np.full((24 + i, 40, 3), i * 8, np.uint8)).save(buffer, "jpeg")
            yield image_id, {
                "image": buffer.getvalue(), "image/filename": f"{image_id:012d}.jpg",
                "image/id": image_id,
                "objects": [{"id": image_id * 10 + k, "area": 20 + k,
                             "bbox": tfds.features.BBox(0.1 * k, 0.1, 0.1 * k + 0.2, 0.5),
                             "label": (image_id + k) % 80, "is_crowd": k == 1}
                            for k in range(i % 3)],
            }


@pytest.fixture(scope="module")
def coco_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("coco_data")
    FakeCoco(data_dir=str(directory), file_format="array_record").download_and_prepare()
    return directory


def test_holdout_split_is_seeded_disjoint_and_complete():
    train, holdout = holdout_split(118_287)
    assert len(holdout) == COCO_HOLDOUT_SIZE == 7392 and len(train) == 118_287 - 7392
    assert not set(train.tolist()) & set(holdout.tolist())
    assert np.array_equal(holdout, holdout_split(118_287)[1])
    assert not np.array_equal(holdout, holdout_split(118_287, seed=1)[1])
    with pytest.raises(ValueError, match="holdout_size=7392"):
        holdout_split(7000)


def test_sources_read_the_prepared_dataset_without_tensorflow(coco_dir):
    sources = coco_sources(coco_dir, holdout_size=HOLDOUT)
    assert [len(sources[s]) for s in ("train", "holdout", "validation")] == [23, 7, 6]
    train_ids = {r.image_id for r in sources["train"]}
    holdout_ids = {r.image_id for r in sources["holdout"]}
    assert not train_ids & holdout_ids and train_ids | holdout_ids == set(range(1, 31))
    assert {r.image_id for r in sources["validation"]} == set(range(1001, 1007))
    record = next(r for r in sources["holdout"] if len(r.labels) == 2)
    i = record.image_id - 1
    assert record.image.shape == (24 + i, 40, 3)
    np.testing.assert_allclose(record.boxes, [[0, 0.1, 0.2, 0.5], [0.1, 0.1, 0.3, 0.5]],
                               atol=1e-6)
    assert record.labels.tolist() == [(i + 1) % 80, (i + 2) % 80]
    assert record.areas.tolist() == [20, 21] and record.is_crowd.tolist() == [False, True]
    assert "tensorflow" not in sys.modules


def test_missing_dataset_says_how_to_prepare_it(tmp_path):
    with pytest.raises(DatasetNotPrepared, match="tfds build coco/2017 --file_format=array_record"):
        coco_builder(tmp_path)


def test_dataset_in_another_file_format_is_refused(coco_dir, tmp_path):
    copy = tmp_path / "coco" / "2017" / "1.1.0"
    shutil.copytree(coco_dir / "coco" / "2017" / "1.1.0", copy)
    info = json.loads((copy / "dataset_info.json").read_text())
    info["fileFormat"] = "tfrecord"
    (copy / "dataset_info.json").write_text(json.dumps(info))
    with pytest.raises(DatasetNotPrepared, match="'tfrecord', not array_record"):
        coco_builder(tmp_path)

"""The embedded datasets as TFDS builders written in array_record, buildable and readable
without TensorFlow.

`digits_on_photos` and `shapes` are COCO-like detection (features as TFDS `coco`);
`digits_on_photos_cls` is one digit per image with its class. Every example is a pure function
of (seed, split, index).
"""

from __future__ import annotations

import dataclasses
import io
import os
from typing import Dict, Optional

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from proxy_tasks.data.config import SPLITS, EmbeddedConfig
from proxy_tasks.data.prefetch import parallel_map
from proxy_tasks.data.records import (IndexedSource, classification_record,
                                      detection_record)
from proxy_tasks.data.render import Scene, render_digit_photo, render_scene
from proxy_tasks.data.shapes import SHAPES, render_shapes_scene
from proxy_tasks.data.sources import load_photos, split_digits

CLASS_NAMES = tuple(str(d) for d in range(10))
# Image ids of split s are s * ID_STRIDE + index + 1, unique across splits and never 0.
ID_STRIDE = 10_000_000
JPEG_QUALITY = 90


@dataclasses.dataclass
class EmbeddedBuilderConfig(tfds.core.BuilderConfig):
    """A TFDS builder config that carries the `EmbeddedConfig` it was made from."""

    spec: Optional[EmbeddedConfig] = None


def _jpeg(image: np.ndarray) -> bytes:
    # Encoded here (with PIL) because TFDS' own encoder needs TensorFlow.
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="jpeg", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _rng(config: EmbeddedConfig, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, SPLITS.index(split), index])


def _image_id(split: str, index: int) -> int:
    return SPLITS.index(split) * ID_STRIDE + index + 1


class _EmbeddedBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared plumbing: config handling, the three splits, parallel example generation."""

    # Bump when rendering changes: a built dataset is reused for as long as its version matches.
    VERSION = tfds.core.Version("2.0.0")
    # Nothing is downloaded; left to TFDS, finding a checksums file needs importlib_resources.
    url_infos = None

    def __init__(self, *, spec: EmbeddedConfig, **kwargs):
        super().__init__(config=EmbeddedBuilderConfig(name=spec.name, spec=spec), **kwargs)

    @property
    def spec(self) -> EmbeddedConfig:
        return self.builder_config.spec

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(split) for split in SPLITS}

    def _generate_examples(self, split: str):
        """Examples in index order, rendered and encoded on all CPUs (PIL and numpy release the
        GIL); each depends only on (seed, split, index), so the output is the same."""
        sources = self._sources(split)
        examples = parallel_map(lambda i: self._example(split, i, *sources),
                                range(self.spec.images_in(split)), os.cpu_count() or 1, 64)
        yield from enumerate(examples)

    def _sources(self, split: str) -> tuple:
        """What every example of `split` is drawn from: the photos, the split's digit samples
        and their labels."""
        return (load_photos(2 * self.spec.image_size), *split_digits(self.spec, split))

    def _example(self, split: str, index: int, *sources) -> dict:
        """The example `index` of `split`."""
        raise NotImplementedError


class _DetectionBuilder(_EmbeddedBuilder, skip_registration=True):
    """A detection dataset: each example a `Scene` with COCO's features."""

    CLASS_NAMES = CLASS_NAMES

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
            "image/id": np.int64,
            "objects": tfds.features.Sequence({
                "id": np.int64,
                "area": np.int64,
                "bbox": tfds.features.BBoxFeature(),
                "label": tfds.features.ClassLabel(names=self.CLASS_NAMES),
                "is_crowd": np.bool_,
            }),
        }), description=type(self).__doc__)

    def _scene(self, split: str, index: int, *sources) -> Scene:
        raise NotImplementedError

    def _example(self, split: str, index: int, *sources) -> dict:
        spec = self.spec
        scene = self._scene(split, index, *sources)
        image_id = _image_id(split, index)
        return {
            "image": _jpeg(scene.image),
            "image/id": image_id,
            "objects": {
                "id": image_id * 100 + np.arange(len(scene.labels)),
                "area": scene.areas,
                "bbox": np.clip(scene.boxes / spec.image_size, 0.0, 1.0),
                "label": scene.labels,
                "is_crowd": np.zeros(len(scene.labels), np.bool_),
            },
        }


class DigitsOnPhotos(_DetectionBuilder):
    """Outlined handwritten digits on photo crops, 4+ octaves of object size, occlusion and
    clutter."""

    name = "digits_on_photos"

    def _scene(self, split: str, index: int, photos, digits, labels) -> Scene:
        return render_scene(_rng(self.spec, split, index), photos, digits, labels, self.spec)


class Shapes(_DetectionBuilder):
    """Ten geometric shapes in saturated colours on noisy flat backgrounds with stroke clutter,
    4+ octaves of object size, occlusion."""

    name = "shapes"
    VERSION = tfds.core.Version("1.0.0")
    CLASS_NAMES = SHAPES

    def _sources(self, split: str) -> tuple:
        return ()

    def _scene(self, split: str, index: int) -> Scene:
        return render_shapes_scene(_rng(self.spec, split, index), self.spec)


class DigitsOnPhotosCls(_EmbeddedBuilder):
    """One outlined handwritten digit per photo crop; the label is the digit."""

    name = "digits_on_photos_cls"

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
            "image/id": np.int64,
            "label": tfds.features.ClassLabel(names=CLASS_NAMES),
        }), description=type(self).__doc__, supervised_keys=("image", "label"))

    def _example(self, split: str, index: int, photos, digits, labels) -> dict:
        image, digit = render_digit_photo(_rng(self.spec, split, index), photos, digits,
                                          self.spec)
        return {"image": _jpeg(image), "image/id": _image_id(split, index),
                "label": int(labels[digit])}


def _prepare(builder_class, data_dir: str, config: EmbeddedConfig) -> tfds.core.DatasetBuilder:
    builder = builder_class(spec=config, data_dir=os.fspath(data_dir), file_format="array_record")
    tfds.disable_progress_bar()  # a search builds datasets from workers: no terminal bars
    builder.download_and_prepare()  # a no-op when this config is already built in data_dir
    return builder


def prepare_embedded(data_dir: str, config: EmbeddedConfig = EmbeddedConfig()
                     ) -> tfds.core.DatasetBuilder:
    """The detection dataset for `config` under `data_dir`, built only if it is not there yet."""
    return _prepare(Shapes if config.scenes == "shapes" else DigitsOnPhotos, data_dir, config)


def prepare_embedded_classification(data_dir: str, config: EmbeddedConfig = EmbeddedConfig()
                                    ) -> tfds.core.DatasetBuilder:
    """The classification dataset for `config` under `data_dir`, built only if missing."""
    if config.scenes != "digits":
        raise ValueError(f"scenes: the classification dataset is made of digits, got "
                         f"{config.scenes!r}")
    return _prepare(DigitsOnPhotosCls, data_dir, config)


def embedded_sources(data_dir: str, config: EmbeddedConfig = EmbeddedConfig()
                     ) -> Dict[str, IndexedSource]:
    """Each split of the detection dataset (built if missing) as `DetectionRecord`s."""
    builder = prepare_embedded(data_dir, config)
    return {split: IndexedSource(builder.as_data_source(split), detection_record)
            for split in SPLITS}


def embedded_classification_sources(data_dir: str, config: EmbeddedConfig = EmbeddedConfig()
                                    ) -> Dict[str, IndexedSource]:
    """Each split of the classification dataset (built if missing) as `ClassificationRecord`s."""
    builder = prepare_embedded_classification(data_dir, config)
    return {split: IndexedSource(builder.as_data_source(split), classification_record)
            for split in SPLITS}

"""Datasets and input pipelines: the embedded datasets (shapes, the default proxy's, and digits
on photos), COCO 2017 from a prepared TFDS directory, and numpy detection/classification
pipelines with anchor targets."""

from proxy_tasks.data.coco import (COCO_HOLDOUT_SIZE, DatasetNotPrepared, coco_builder,
                                   coco_sources, holdout_split)
from proxy_tasks.data.config import SPLITS, EmbeddedConfig
from proxy_tasks.data.embedded import (DigitsOnPhotos, DigitsOnPhotosCls,
                                       embedded_classification_sources, embedded_sources,
                                       prepare_embedded, prepare_embedded_classification)
from proxy_tasks.data.pipeline import (AnchorConfig, InputConfig, classification_batches,
                                       detection_batches)
from proxy_tasks.data.records import (ClassificationRecord, DetectionRecord, IndexedSource,
                                      classification_record, detection_record)
from proxy_tasks.data.targets import assign_targets

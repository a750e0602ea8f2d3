"""JAX/Flax SpineNet, RetinaNet and classification models, their anchors, losses and post-processing."""

from proxy_tasks.models.anchors import anchor_boxes, flatten_outputs
from proxy_tasks.models.boxes import assign_targets, decode_boxes, encode_boxes, iou
from proxy_tasks.models.losses import (IGNORE, NEGATIVE, classification_loss, focal_loss,
                                       huber_loss, retinanet_loss)
from proxy_tasks.models.model import (ClassificationConfig, HeadConfig, RetinaNetConfig,
                                      SpineNetModel, build_model, count_variables, init_variables,
                                      variable_shapes)
from proxy_tasks.models.options import ModelOptions
from proxy_tasks.models.postprocess import detect, nms

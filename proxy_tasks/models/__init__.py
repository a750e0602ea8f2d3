"""JAX/Flax SpineNet, RetinaNet and classification models, their anchors, losses and post-processing.

    model = build_model(spec, RetinaNetConfig.for_size(PROXY_SIZE), ModelOptions())
    variables = init_variables(model, rng, height, width)        # {"params", "batch_stats"}
    out = model.apply(variables, images, train=True, mutable=["batch_stats"])[0]
    anchors = anchor_boxes(height, width, range(3, 8), anchor_size=3.0)    # [N, 4]
    cls, box = assign_targets(anchors, gt_boxes, gt_classes)            # per image (vmap)
    loss = retinanet_loss(flatten_outputs(out["class_outputs"], num_classes),
                          flatten_outputs(out["box_outputs"], 4), cls, box)["loss"]

Class targets: 0..K-1 positive, NEGATIVE (-1) background, IGNORE (-2) no loss.
"""

from proxy_tasks.models.anchors import anchor_boxes, flatten_outputs
from proxy_tasks.models.boxes import assign_targets, decode_boxes, encode_boxes, iou
from proxy_tasks.models.losses import (IGNORE, NEGATIVE, classification_loss, focal_loss,
                                       huber_loss, retinanet_loss)
from proxy_tasks.models.model import (ClassificationConfig, HeadConfig, RetinaNetConfig,
                                      SpineNetModel, build_model, count_variables, init_variables,
                                      variable_shapes)
from proxy_tasks.models.options import ModelOptions
from proxy_tasks.models.postprocess import detect, nms

"""How fast does the proxy detector learn the embedded task? One compiled SpineNet-49 proxy,
trained afresh on each embedded-data variant; AP and class-agnostic AP after every epoch.

python bench/proxy_learning.py [--train-images 1024] [--epochs 3] [--set KEY=VALUE ...]
                               [--out FILE]
                               [VARIANT_JSON ...]   # EmbeddedConfig overrides, e.g.
                                                    # '{}' '{"max_distractors": 0}'

Class-agnostic AP (every class merged into one) separates "finds digits" from "names them".
The model, optimizer and steps are compiled once, so a variant costs its data and training only.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from proxy_tasks import coco_eval
from proxy_tasks.data import (AnchorConfig, EmbeddedConfig, InputConfig, detection_batches,
                              embedded_sources)
from proxy_tasks.mesh import make_mesh
from proxy_tasks.presets import get_preset, with_overrides
from proxy_tasks.training import create_state, detection_loss, make_detect_step, make_train_step
from proxy_tasks.trial import EMBEDDED_CLASSES, build_proxy_model, proxy_optimizer
from search_space import builtin_spec


def holdout_ap(state, infer, source, eval_input, anchors, score_threshold: float,
               lower_thresholds=()) -> dict:
    """AP with the preset's score threshold, and with each lower one (`infer` keeps scores down
    to the lowest: greedy NMS by score makes filtering afterwards the same as filtering first)."""
    truth, found = [], []
    for batch in detection_batches(source, eval_input, anchors):
        out = jax.device_get(infer(state, batch["images"]))
        truth += coco_eval.annotations_from_batch(batch)
        found += coco_eval.detections_from_batch(batch, out["boxes"], out["scores"], out["classes"])
    def above(threshold):
        return [f for f in found if f["score"] >= threshold]

    ground_truth = coco_eval.coco_ground_truth(truth, EMBEDDED_CLASSES)
    kept = above(score_threshold)
    ap = coco_eval.evaluate(ground_truth, kept)
    merged_truth = [dataclasses.replace(t, labels=np.zeros_like(t.labels)) for t in truth]
    merged = coco_eval.evaluate(coco_eval.coco_ground_truth(merged_truth, EMBEDDED_CLASSES),
                                [dict(f, category_id=0) for f in kept])
    lower = {str(t): coco_eval.evaluate(ground_truth, above(t))["ap"] for t in lower_thresholds}
    return {"ap": ap["ap"], "ap50": ap["ap50"], "agnostic_ap": merged["ap"],
            "agnostic_ap50": merged["ap50"], "detections": len(kept),
            **({"ap_at_score_threshold": lower} if lower else {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", default=["{}"])
    parser.add_argument("--train-images", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="ProxyConfig field of the default preset (model, optimizer, data dir)")
    parser.add_argument("--out", default="bench/results/proxy_learning.jsonl")
    parser.add_argument("--lower-score-thresholds", type=float, nargs="*", default=[],
                        help="also report the AP with these score thresholds (below the preset's)")
    args = parser.parse_args()
    config = with_overrides(get_preset("default"), args.overrides)
    size, batch_size = config.image_size, config.batch_size
    anchors = AnchorConfig(anchor_size=config.anchor_size)
    model = build_proxy_model(builtin_spec("spinenet-49"), config)
    steps = args.epochs * (args.train_images // batch_size)
    optimizer = proxy_optimizer(config, steps)
    mesh = make_mesh()
    initial = create_state(model, optimizer, jax.random.PRNGKey(0), size, size, mesh)
    train_step = make_train_step(model, optimizer,
                                 functools.partial(detection_loss, num_classes=EMBEDDED_CLASSES),
                                 mesh)
    lowest = min([config.score_threshold, *args.lower_score_thresholds])
    infer = make_detect_step(model, anchors.anchors(size), EMBEDDED_CLASSES, mesh,
                             score_threshold=lowest)
    train_input = InputConfig(image_size=size, batch_size=batch_size, train=True)
    eval_input = InputConfig(image_size=size, batch_size=config.eval_batch_size, train=False)

    with open(args.out, "a") as out:
        for text in args.variants:
            overrides = json.loads(text)
            started = time.perf_counter()
            splits = embedded_sources(config.data_root, EmbeddedConfig(
                image_size=size, train_images=args.train_images,
                holdout_images=config.holdout_images, validation_images=config.holdout_images,
                **overrides))
            state = jax.tree.map(jnp.copy, initial)  # the train step donates its state
            curve = []
            for epoch in range(args.epochs):
                cls_losses, tick = [], time.perf_counter()
                for batch in detection_batches(splits["train"], train_input, anchors, epoch=epoch):
                    state, metrics = train_step(state, {k: batch[k] for k in
                                                        ("images", "cls_targets", "box_targets")})
                    cls_losses.append(metrics["cls_loss"])
                cls_loss = float(np.mean(jax.device_get(cls_losses)))
                train_s = time.perf_counter() - tick  # the first epoch run includes compiling
                metrics = holdout_ap(state, infer, splits["holdout"], eval_input, anchors,
                                     config.score_threshold, args.lower_score_thresholds)
                curve.append({"epoch": epoch + 1, "train_cls_loss": cls_loss, "train_s": train_s,
                              **metrics})
                print(json.dumps({"variant": overrides, **curve[-1]}), flush=True)
            record = {"variant": overrides, "overrides": args.overrides,
                      "train_images": args.train_images, "steps": steps,
                      "devices": [str(d) for d in jax.devices()], "curve": curve,
                      "wall_s": time.perf_counter() - started}
            out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()

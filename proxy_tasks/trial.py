"""`run_proxy_trial`: train one architecture on the proxy task and measure its reward.

Detection: RetinaNet on an embedded dataset (shapes by default, or digits on photos) or COCO,
reward = COCO AP on the holdout split. Classification: the classification head on the embedded
digits, reward = top-1 accuracy on the holdout split.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import math
import time
from typing import Callable, Dict, Optional

import jax
import numpy as np

from proxy_tasks import coco_eval
from proxy_tasks.checkpoint import TrialCheckpoints
from proxy_tasks.data import (AnchorConfig, EmbeddedConfig, InputConfig, classification_batches,
                              coco_sources, detection_batches, embedded_classification_sources,
                              embedded_sources)
from proxy_tasks.mesh import global_batch, make_mesh, process_rows
from proxy_tasks.models import ClassificationConfig, ModelOptions, RetinaNetConfig, build_model
from proxy_tasks.optim import make_optimizer
from proxy_tasks.presets import ProxyConfig
from proxy_tasks.training import (classification_losses, detection_loss, lower_init,
                                  make_classify_step, make_detect_step, make_train_step,
                                  run_init)
from search_space.cost import model_cost
from search_space.hashing import canonical_hash
from search_space.spec import SpineNetSpec

COCO_CLASSES = 80
EMBEDDED_CLASSES = 10
TRAIN_KEYS = {"detection": ("images", "cls_targets", "box_targets"),
              "classification": ("images", "labels")}


class TrialFailed(RuntimeError):
    """The trial cannot produce a reward (a NaN loss, say); the message says why and where."""


def _embedded_config(config: ProxyConfig) -> EmbeddedConfig:
    return EmbeddedConfig(image_size=config.image_size, train_images=config.train_images,
                          holdout_images=config.holdout_images,
                          validation_images=config.holdout_images, seed=config.data_seed,
                          scenes=config.scenes)


def num_classes(config: ProxyConfig) -> int:
    """The classes of the proxy's dataset: COCO's 80 or the embedded digits' or shapes' 10."""
    return COCO_CLASSES if config.dataset == "coco" else EMBEDDED_CLASSES


def _embedded_splits(task: str, data_root: str, embedded: EmbeddedConfig):
    sources = embedded_classification_sources if task == "classification" else embedded_sources
    splits = sources(data_root, embedded)
    return splits["train"], splits["holdout"]


def prepare_data(config: ProxyConfig):
    """(train source, holdout source); builds the embedded dataset on first use, and says how
    to prepare COCO when it is missing."""
    if config.dataset == "coco":  # the classification proxy reads only the embedded digits
        splits = coco_sources(config.data_root, seed=config.data_seed)
        return splits["train"], splits["holdout"]
    return _embedded_splits(config.task, config.data_root, _embedded_config(config))


def _read_only(record):
    """`record` with its arrays read-only: a kept record is shared by every epoch and trial."""
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
    return record


@functools.lru_cache(maxsize=1)
def _decoded(task: str, data_root: str, embedded: EmbeddedConfig):
    return tuple(tuple(map(_read_only, split))
                 for split in _embedded_splits(task, data_root, embedded))


def load_records(config: ProxyConfig):
    """`prepare_data`'s splits to train and evaluate on. The embedded dataset's are decoded once
    a process and kept (35 MB at `default`): every epoch, and every trial of a search's worker,
    reads them again, and decoding was half of the input pipeline's CPU. COCO's stay on disk."""
    if config.dataset == "coco":
        return prepare_data(config)
    return _decoded(config.task, config.data_root, _embedded_config(config))


def example_batch(config: ProxyConfig, num_anchors: int) -> Dict[str, np.ndarray]:
    """Zeros shaped like a training batch, to compile the step before any data is read."""
    b, s = config.batch_size, config.image_size
    example = {"images": np.zeros((b, s, s, 3), np.float32)}
    if config.task == "detection":
        example.update(cls_targets=np.zeros((b, num_anchors), np.int32),
                       box_targets=np.zeros((b, num_anchors, 4), np.float32))
    else:
        example["labels"] = np.zeros((b,), np.int32)
    return example


def _check_finite(metrics, step: int) -> None:
    loss = float(metrics["loss"])
    if not math.isfinite(loss):
        raise TrialFailed(f"loss became {loss} at step {step}; the trial stops here")


def model_options(config: ProxyConfig) -> ModelOptions:
    """The model options a proxy config asks for."""
    return ModelOptions(activation=config.activation, norm=config.norm,
                        bn_momentum=config.bn_momentum,
                        zero_init_residual=config.zero_init_residual,
                        dtype=getattr(jax.numpy, config.dtype))


def build_proxy_model(spec: SpineNetSpec, config: ProxyConfig):
    """`spec` rescaled to the proxy's scaling, with the head of the proxy's task."""
    if config.task == "detection":
        head = RetinaNetConfig(num_classes(config), config.head_convs, config.head_filters,
                               anchor_size=config.anchor_size)
    else:
        head = ClassificationConfig(num_classes(config))
    return build_model(spec.with_scaling(config.scaling), head, model_options(config))


def proxy_optimizer(config: ProxyConfig, total_steps: int):
    """The proxy's optimizer and schedule over `total_steps`."""
    return make_optimizer(config.learning_rate, config.warmup_steps, total_steps,
                          config.schedule, config.momentum, config.weight_decay,
                          config.clip_norm, config.optimizer)


def run_proxy_trial(spec: SpineNetSpec, config: ProxyConfig, seed: int = 0,
                    report: Optional[Callable[[Dict], None]] = None, mesh=None) -> Dict:
    """Trains `spec` (rescaled to the proxy's scaling) for `config.epochs` and evaluates it.

    `report(metrics)` is called after every epoch with `epoch`, the epoch's mean training
    metrics (`train_loss`, `train_cls_loss`, ...) and, with
    `eval_every_epoch` or at the last epoch, the reward metrics. Returns the reward metrics,
    `reward`, `params`, `flops`, `compile_s`, `train_s`, `eval_s`, `train_images_per_s`, and the
    `devices`, `processes` and `global_batch` it trained with.
    Same seed, config and machine give the same metrics.
    """
    spec = spec.with_scaling(config.scaling)
    mesh = mesh or make_mesh()
    if config.batch_size % mesh.size or config.eval_batch_size % mesh.size:
        raise ValueError(f"batch_size/eval_batch_size: {config.batch_size}/"
                         f"{config.eval_batch_size} must divide among {mesh.size} devices")
    train_source, holdout_source = load_records(config)
    classes = num_classes(config)
    anchor_config = AnchorConfig(anchor_size=config.anchor_size)
    if config.task == "detection":
        loss_fn = functools.partial(detection_loss, num_classes=classes)
        batches = functools.partial(detection_batches, anchor_config=anchor_config)
    else:
        loss_fn, batches = classification_losses, classification_batches
    model = build_proxy_model(spec, config)
    steps_per_epoch = len(train_source) // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size: {config.batch_size} exceeds the {len(train_source)} "
                         f"training images")
    total_steps = steps_per_epoch * config.epochs
    optimizer = proxy_optimizer(config, total_steps)
    size = config.image_size
    train_input = InputConfig(image_size=size, batch_size=config.batch_size, train=True, seed=seed)
    eval_input = InputConfig(image_size=size, batch_size=config.eval_batch_size, train=False,
                             seed=seed)

    started = time.perf_counter()
    rng = jax.random.PRNGKey(seed)
    init = lower_init(model, optimizer, rng, size, size, mesh)
    anchors = anchor_config.anchors(size)
    if config.task == "detection":
        infer_step = make_detect_step(model, anchors, classes, mesh,
                                      score_threshold=config.score_threshold)
    else:
        infer_step = make_classify_step(model, mesh)

    def feed(batch):
        """A batch every process loaded whole, as a global array of this process's rows."""
        return global_batch(process_rows(batch), mesh)

    eval_images = feed(np.zeros((config.eval_batch_size, size, size, 3), np.float32))
    # XLA compiles without holding the GIL: the init and the steps compile side by side, and
    # the next step traces meanwhile.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        state = pool.submit(run_init, init, rng)
        example = feed(example_batch(config, len(anchors)))
        train_step = pool.submit(make_train_step(model, optimizer, loss_fn, mesh).lower(
            init.out_info, example).compile)
        infer = pool.submit(infer_step.lower(init.out_info, eval_images).compile)
        state, train_step, infer = state.result(), train_step.result(), infer.result()
    checkpoints = TrialCheckpoints(config.checkpoint_dir) if config.checkpoint_dir else None
    if checkpoints is not None and checkpoints.latest_step() is not None:
        state = checkpoints.restore(state)
    first_epoch = int(state.step) // steps_per_epoch
    keys = TRAIN_KEYS[config.task]
    compile_s = time.perf_counter() - started

    def evaluate() -> Dict[str, float]:
        if config.task == "classification":
            correct = total = 0
            for batch in classification_batches(holdout_source, eval_input):
                logits = np.asarray(infer(state, feed(batch["images"])))
                hits = (logits.argmax(-1) == batch["labels"]) & batch["valid"]
                correct, total = correct + int(hits.sum()), total + int(batch["valid"].sum())
            return {"accuracy": correct / total, "reward": correct / total}
        truth, found = [], []
        for batch in detection_batches(holdout_source, eval_input, anchor_config):
            out = jax.device_get(infer(state, feed(batch["images"])))
            truth += coco_eval.annotations_from_batch(batch)
            found += coco_eval.detections_from_batch(batch, out["boxes"], out["scores"],
                                                     out["classes"])
        metrics = coco_eval.evaluate(coco_eval.coco_ground_truth(truth, classes), found)
        return dict(metrics, reward=metrics["ap"])

    train_s = eval_s = 0.0

    def timed_evaluate() -> Dict[str, float]:
        nonlocal eval_s
        tick = time.perf_counter()
        metrics = evaluate()
        eval_s += time.perf_counter() - tick
        return metrics

    results: Dict[str, float] = {}
    step = int(state.step)
    for epoch in range(first_epoch, config.epochs):
        tick = time.perf_counter()
        pending, history = None, []
        for batch in batches(train_source, train_input, epoch=epoch):
            state, metrics = train_step(state, feed({k: batch[k] for k in keys}))
            step += 1
            if pending is not None:  # checked one step late, so the check never stalls the device
                _check_finite(pending, step - 1)
                history.append(jax.device_get(pending))
            pending = metrics
        _check_finite(pending, step)
        history.append(jax.device_get(pending))
        train_s += time.perf_counter() - tick
        if checkpoints is not None:
            checkpoints.save(step, state)
        epoch_metrics = {"epoch": epoch + 1}
        epoch_metrics.update({f"train_{k}": float(np.mean([h[k] for h in history]))
                              for k in history[0]})
        if config.eval_every_epoch or epoch + 1 == config.epochs:
            results = timed_evaluate()
            epoch_metrics.update(results)
        if report is not None:
            report(epoch_metrics)
    if not results:  # resumed after the last epoch had been trained: evaluate what was saved
        results = timed_evaluate()
    if checkpoints is not None:
        checkpoints.close()

    trained = (config.epochs - first_epoch) * steps_per_epoch * config.batch_size
    backbone, head_cost = model_cost(
        spec, size, size, "retinanet" if config.task == "detection" else "classification",
        config.head_convs, config.head_filters, classes,
        model.head.num_anchors if config.task == "detection" else 0)
    cost = backbone.total + head_cost
    return dict(results, params=cost.params, flops=cost.flops, compile_s=compile_s,
                train_s=train_s, eval_s=eval_s,
                train_images_per_s=trained / train_s if train_s else 0.0,
                spec_hash=canonical_hash(spec), seed=seed, steps=step, devices=mesh.size,
                processes=jax.process_count(), global_batch=example["images"].shape[0])

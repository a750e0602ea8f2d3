"""How fast can a small CNN learn the digit classes at a given magnification? A control for the
proxy's learning speed, independent of SpineNet, RetinaNet and our training step.

python bench/digit_learnability.py [--steps 384] [--sizes 16 32 64] [--embedded]
                                   [--out bench/results/digit_learnability.json]

A plain 3-layer CNN (3x3 convs 32/64/128, 2x2 max-pools, global average pooling, linear) is
trained with Adam (1e-3, batch 16) on scikit-learn's digits upscaled bilinearly to each size
(first 1,400 digits train, the other 397 test). With `--embedded`, the same CNN is also trained
on the embedded classification dataset at 64 px (`$NAS_DATA_DIR`; one digit of 40-90% of the
image on a cluttered photo crop) and scored on its holdout split.
"""

from __future__ import annotations

import argparse
import json
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from PIL import Image
from sklearn.datasets import load_digits


class PlainCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        for features in (32, 64, 128):
            x = nn.max_pool(nn.relu(nn.Conv(features, (3, 3))(x)), (2, 2), (2, 2))
        return nn.Dense(10)(x.mean((1, 2)))


def train_and_test(train_batches, test_images, test_labels, size: int) -> dict:
    """Trains a fresh PlainCNN on the batches; returns train accuracy over the last 64 steps and
    test accuracy."""
    model, optimizer = PlainCNN(), optax.adam(1e-3)
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, size, size, 3)))
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, images, labels):
        def loss_of(params):
            logits = model.apply(params, images)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
            return loss, (logits.argmax(-1) == labels).mean()
        (_, accuracy), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, accuracy

    accuracies = []
    for images, labels in train_batches:
        params, opt_state, accuracy = step(params, opt_state, images, labels)
        accuracies.append(float(accuracy))
    predictions = np.concatenate([np.asarray(model.apply(params, test_images[i:i + 256])).argmax(-1)
                                  for i in range(0, len(test_images), 256)])
    return {"steps": len(accuracies), "train_accuracy_last_64": float(np.mean(accuracies[-64:])),
            "test_accuracy": float((predictions == test_labels).mean())}


def sklearn_digits(size: int, steps: int) -> dict:
    digits = load_digits()
    images = np.stack([np.asarray(Image.fromarray((d * 16).astype(np.uint8)).resize(
        (size, size), Image.BILINEAR)) for d in digits.images]).astype(np.float32) / 255
    images = np.repeat(images[..., None], 3, -1)
    rng = np.random.default_rng(0)
    batches = ((images[i], digits.target[i]) for i in (rng.integers(0, 1400, 16)
                                                       for _ in range(steps)))
    return train_and_test(batches, images[1400:], digits.target[1400:], size)


def embedded_digits(steps: int) -> dict:
    from proxy_tasks.data import (EmbeddedConfig, InputConfig, classification_batches,
                                  embedded_classification_sources)
    from proxy_tasks.presets import default_data_dir
    size = 64
    splits = embedded_classification_sources(default_data_dir(), EmbeddedConfig(
        image_size=size, train_images=1024, holdout_images=256, validation_images=256))
    train_input = InputConfig(image_size=size, batch_size=16, train=True, flip=False)
    epochs = -(-steps // (1024 // 16))
    batches = ((b["images"], b["labels"]) for epoch in range(epochs)
               for b in classification_batches(splits["train"], train_input, epoch=epoch))
    holdout = list(classification_batches(splits["holdout"], InputConfig(
        image_size=size, batch_size=256, train=False)))
    images = np.concatenate([b["images"][b["valid"]] for b in holdout])
    labels = np.concatenate([b["labels"][b["valid"]] for b in holdout])
    return train_and_test((b for _, b in zip(range(steps), batches)), images, labels, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=384)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--embedded", action="store_true")
    parser.add_argument("--out", default="bench/results/digit_learnability.json")
    args = parser.parse_args()
    results = []
    for size in args.sizes:
        started = time.perf_counter()
        results.append({"data": "sklearn digits", "size": size,
                        **sklearn_digits(size, args.steps), "wall_s": time.perf_counter() - started})
        print(json.dumps(results[-1]), flush=True)
    if args.embedded:
        started = time.perf_counter()
        results.append({"data": "embedded classification", "size": 64,
                        **embedded_digits(args.steps), "wall_s": time.perf_counter() - started})
        print(json.dumps(results[-1]), flush=True)
    with open(args.out, "w") as out:
        json.dump({"model": "PlainCNN 32/64/128, Adam 1e-3, batch 16", "results": results}, out,
                  indent=2)


if __name__ == "__main__":
    main()

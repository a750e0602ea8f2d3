"""Training-step speed of TF Model Garden's SpineNet-49 backbone at the proxy scaling, for a
side-by-side with `model_step.py --models backbone`. Runs in its own virtual environment with
`tf-models-official` (never a project dependency):

    /tmp/mg-venv/bin/python bench/model_garden_step.py [--sizes 128 256] [--out FILE]

Same case: filter_size_scale 0.25, resample_alpha 0.25, endpoints 64, batch 16; loss = sum of
the mean squares of the five outputs; SGD momentum 0.9; `tf.function` (TF's oneDNN kernels).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time


def run(size: int, batch: int, steps: int, warmup: int, jit: bool) -> dict:
    import tensorflow as tf
    import tf_keras
    from official.vision.modeling.backbones import spinenet

    model = spinenet.SpineNet(
        input_specs=tf_keras.layers.InputSpec(shape=[None, size, size, 3]),
        endpoints_num_filters=64, resample_alpha=0.25, filter_size_scale=0.25)
    optimizer = tf_keras.optimizers.SGD(0.01, momentum=0.9)
    images = tf.random.normal((batch, size, size, 3), seed=1)

    @tf.function(jit_compile=jit)
    def step(images):
        with tf.GradientTape() as tape:
            outputs = model(images, training=True)
            loss = tf.add_n([tf.reduce_mean(tf.square(x)) for x in outputs.values()])
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    start = time.perf_counter()
    step(images).numpy()
    first = time.perf_counter() - start
    times, cpu_times = [], []
    for _ in range(warmup + steps):
        t, c = time.perf_counter(), time.process_time()
        step(images).numpy()
        times.append(time.perf_counter() - t)
        cpu_times.append(time.process_time() - c)
    median = statistics.median(times[warmup:])
    return {"model": "model_garden_backbone", "size": size, "batch": batch, "xla_jit": jit,
            "first_step_s": round(first, 2), "step_s": round(median, 4),
            "images_per_s": round(batch / median, 1),
            "step_cpu_s": round(statistics.median(cpu_times[warmup:]), 4),
            "step_s_range": [round(min(times[warmup:]), 4), round(max(times[warmup:]), 4)],
            "trainable_params": int(sum(v.shape.num_elements() for v in model.trainable_variables)),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "tensorflow": tf.__version__}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--jit", action="store_true", help="tf.function(jit_compile=True)")
    p.add_argument("--out", help="JSON file to write (default: print)")
    args = p.parse_args()
    results = [run(size, args.batch, args.steps, args.warmup, args.jit) for size in args.sizes]
    text = json.dumps({"date": time.strftime("%Y-%m-%d %H:%M:%S"), "results": results}, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

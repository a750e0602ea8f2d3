"""Speed of the embedded dataset build and of the numpy detection input pipeline on this machine.

    python bench/input_pipeline.py [--size 256] [--batch 16] [--images 2048] [--out FILE]

Builds the digits-on-photos dataset (train `--images`, holdout and validation a quarter each)
into a fresh temporary directory unless --data-dir, then times one training epoch of detection
batches (decode, flip, scale jitter, resize/pad, anchor targets, collate; --workers threads)
and one evaluation pass. Writes JSON: build seconds, pipeline images/s, CPU milliseconds per
image (load-independent cost), positive anchors per level, and the machine's CPU count and
load average (other processes share the CPUs).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from proxy_tasks.data import (AnchorConfig, EmbeddedConfig, InputConfig,  # noqa: E402
                              detection_batches, embedded_sources)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--images", type=int, default=2048, help="training images to build")
    p.add_argument("--workers", type=int, default=os.cpu_count())
    p.add_argument("--data-dir", help="reuse or build here instead of a fresh temp dir")
    p.add_argument("--out", help="write the JSON here as well as to stdout")
    return p.parse_args(argv)


def time_epoch(source, config, anchor_config):
    """(images/s over one pass, CPU ms per image, positives per level summed over the pass)."""
    sizes = [anchor_config.num_scales * len(anchor_config.aspect_ratios)
             * math.ceil(config.image_size / 2 ** level) ** 2
             for level in range(anchor_config.min_level, anchor_config.max_level + 1)]
    bounds = np.cumsum([0] + sizes)
    positives = np.zeros(len(sizes), np.int64)
    start, cpu_start, images = time.perf_counter(), time.process_time(), 0
    for batch in detection_batches(source, config, anchor_config):
        images += int(batch["valid"].sum())
        positives += np.add.reduceat((batch["cls_targets"] >= 0).sum(0), bounds[:-1])
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return images / wall, 1000 * cpu / images, positives


def main(argv=None):
    args = parse_args(argv)
    config = EmbeddedConfig(image_size=args.size, train_images=args.images,
                            holdout_images=args.images // 4, validation_images=args.images // 4)
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_dir or scratch
        start, cpu_start = time.perf_counter(), time.process_time()
        sources = embedded_sources(data_dir, config)
        build_seconds = time.perf_counter() - start
        build_cpu_seconds = time.process_time() - cpu_start
        anchor_config = AnchorConfig()
        train = InputConfig(image_size=args.size, batch_size=args.batch,
                            num_workers=args.workers)
        evaluation = InputConfig(image_size=args.size, batch_size=args.batch, train=False,
                                 num_workers=args.workers)
        train_rate, train_cpu_ms, positives = time_epoch(sources["train"], train, anchor_config)
        eval_rate, eval_cpu_ms, _ = time_epoch(sources["holdout"], evaluation, anchor_config)
    built = args.images + 2 * (args.images // 4)
    result = {
        "image_size": args.size, "batch_size": args.batch, "workers": args.workers,
        "images_built": built,
        "build_seconds": round(build_seconds, 2) if not args.data_dir else None,
        "build_ms_per_image": round(1000 * build_seconds / built, 2) if not args.data_dir
        else None,
        "build_cpu_ms_per_image": round(1000 * build_cpu_seconds / built, 2)
        if not args.data_dir else None,
        "train_pipeline_images_per_s": round(train_rate, 1),
        "eval_pipeline_images_per_s": round(eval_rate, 1),
        # CPU time (all threads) per image: images/s one free core sustains = 1000 / this.
        "train_pipeline_cpu_ms_per_image": round(train_cpu_ms, 2),
        "eval_pipeline_cpu_ms_per_image": round(eval_cpu_ms, 2),
        "train_positive_anchors_per_level": {
            f"P{anchor_config.min_level + i}": int(n) for i, n in enumerate(positives)},
        "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
                    "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version()},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()

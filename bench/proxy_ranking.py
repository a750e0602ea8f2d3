"""Can the proxy tell architectures apart? AP of the ResNet-50 seed, SpineNet-49 and random
genomes of the paper space over several seeds, with each trial's time split.

python bench/proxy_ranking.py [--preset default] [--seeds 0 1 2] [--random-genomes 3]
                              [--archs NAME ...] [--set KEY=VALUE ...] [--out FILE]

`--archs` runs only the named architectures (resnet50-seed, spinenet-49, random-0, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import numpy as np

from proxy_tasks.presets import get_preset, with_overrides
from proxy_tasks.trial import run_proxy_trial
from search_space import builtin_spec, decode, get_space, random_genome, seed_genome

TIMES = ("compile_s", "train_s", "eval_s")


def architectures(num_random: int):
    space = get_space("spinenet-49")
    archs = {"resnet50-seed": decode(seed_genome(space), space),
             "spinenet-49": builtin_spec("spinenet-49")}
    rng = np.random.default_rng(2024)
    for i in range(num_random):
        archs[f"random-{i}"] = decode(random_genome(space, rng), space)
    return archs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--random-genomes", type=int, default=3)
    parser.add_argument("--archs", nargs="+", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", default="bench/results/proxy_ranking.json")
    args = parser.parse_args()
    config = with_overrides(get_preset(args.preset), args.overrides)
    archs = architectures(args.random_genomes)
    unknown = set(args.archs or ()) - set(archs)
    if unknown:
        parser.error(f"--archs: unknown {sorted(unknown)}; known: {sorted(archs)}")

    if args.archs:
        archs = {name: spec for name, spec in archs.items() if name in args.archs}

    trials = []
    for name, spec in archs.items():
        for seed in args.seeds:
            started = time.perf_counter()
            result = run_proxy_trial(spec, config, seed=seed)
            wall = time.perf_counter() - started
            trials.append({"arch": name, "seed": seed, "wall_s": wall,
                           **{k: result[k] for k in ("ap", "ap50", "ap75", "ap_small", "ap_medium",
                                                     "ap_large", "params", "flops", *TIMES,
                                                     "train_images_per_s")}})
            print(f"{name:>14} seed {seed}: AP {result['ap']:.4f}  AP50 {result['ap50']:.4f}  "
                  + "  ".join(f"{k} {result[k]:.1f}" for k in TIMES) + f"  wall {wall:.1f}s",
                  flush=True)
            summary = write(args, config, trials)  # after every trial: a long run keeps its results
    for name in sorted(summary, key=lambda n: -summary[n]["ap_mean"]):
        s = summary[name]
        print(f"{name:>14}: AP {s['ap_mean']:.4f} +- {s['ap_std']:.4f}  "
              f"({s['flops'] / 1e9:.2f}B FLOPs)  wall {s['wall_s_mean']:.1f}s")


def write(args, config, trials) -> dict:
    """Writes the trials so far and their per-architecture summary to `args.out`."""
    summary = {}
    for name in dict.fromkeys(t["arch"] for t in trials):
        rows = [t for t in trials if t["arch"] == name]
        aps = np.array([t["ap"] for t in rows])
        summary[name] = {"ap_mean": float(aps.mean()), "ap_std": float(aps.std(ddof=1)) if len(aps) > 1 else 0.0,
                         "ap50_mean": float(np.mean([t["ap50"] for t in rows])),
                         "flops": rows[0]["flops"], "params": rows[0]["params"],
                         "wall_s_mean": float(np.mean([t["wall_s"] for t in rows])),
                         **{f"{k}_mean": float(np.mean([t[k] for t in rows])) for k in TIMES}}
    out = {"preset": args.preset, "config": config.__dict__, "seeds": args.seeds,
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "devices": [str(d) for d in jax.devices()],
                       "load_avg_at_end": os.getloadavg()},
           "ranking": sorted(summary, key=lambda n: -summary[n]["ap_mean"]),
           "summary": summary, "trials": trials}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
    return summary


if __name__ == "__main__":
    main()

"""Is the proxy reward worth searching on? Issue 16's panel (the ResNet-50 seed, SpineNet-49, two
single-decision mutants of each, four random genomes) over seeds and on a longer schedule, with
signal, reliability, fidelity, direction and cost against their gates.

python bench/proxy_fidelity.py [--preset default] [--set KEY=VALUE ...] [--seeds 3] [--factor 4]
                               [--out bench/results/proxy_fidelity.json] [--progress FILE.jsonl]

Each finished trial goes to the JSON-lines `--progress` file (default: `--out` with .jsonl):
run the same command again after an interruption and finished trials are not trained again.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import jax

from nas import runtime
from nas.fidelity_cmd import print_report, trial_line
from proxy_tasks.fidelity import default_panel, measure_fidelity
from proxy_tasks.presets import get_preset, with_overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--out", default="bench/results/proxy_fidelity.json")
    parser.add_argument("--progress", default=None)
    args = parser.parse_args()
    config = with_overrides(get_preset(args.preset), args.overrides)
    progress = args.progress or str(Path(args.out).with_suffix(".jsonl"))
    runtime.enable_compile_cache()

    result = measure_fidelity(config, default_panel(), args.seeds, args.factor, log=progress,
                              on_trial=lambda record: print(trial_line(record), flush=True))
    result = dict(preset=args.preset, overrides=args.overrides, progress=progress,
                  machine={"cpus": os.cpu_count(), "platform": platform.platform(),
                           "devices": [str(d) for d in jax.devices()],
                           "load_avg_at_end": os.getloadavg()}, **result)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print_report(result)


if __name__ == "__main__":
    main()

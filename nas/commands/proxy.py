"""`nas proxy`: run one proxy trial of a model or spec file and print its metrics."""

from __future__ import annotations

import contextlib
import json
import sys

from nas import runtime
from nas.console import stdout_to_stderr
from nas.commands.common import resolve_model
from proxy_tasks.presets import PRESETS, get_preset, with_overrides

JSON_KEYS = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "accuracy", "reward",
             "params", "flops", "compile_s", "train_s", "eval_s", "train_images_per_s", "steps",
             "seed", "spec_hash")


def register(sub) -> None:
    p = sub.add_parser("proxy", help="train and evaluate one architecture on the proxy task")
    p.add_argument("model", metavar="MODEL_OR_SPEC_FILE")
    p.add_argument("--preset", default="default", help=f"one of {', '.join(PRESETS)}")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config field (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from proxy_tasks.trial import TrialFailed, run_proxy_trial  # jax loads only here

    config = with_overrides(get_preset(args.preset), args.overrides)
    spec, _ = resolve_model(args.model)

    def progress(metrics):
        if not args.json:
            print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in metrics.items()), flush=True)

    runtime.enable_compile_cache()
    try:
        with stdout_to_stderr() if args.json else contextlib.nullcontext():
            result = run_proxy_trial(spec, config, seed=args.seed, report=progress)
    except TrialFailed as err:
        print(f"nas proxy: trial failed: {err}", file=sys.stderr)
        return 3
    shown = {k: result[k] for k in JSON_KEYS if k in result}
    if args.json:
        print(json.dumps(shown, indent=2))
    else:
        for key, value in shown.items():
            print(f"{key:>20}: {value:.4f}" if isinstance(value, float) else f"{key:>20}: {value}")
    return 0

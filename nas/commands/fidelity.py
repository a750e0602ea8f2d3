"""`nas fidelity`: how well a proxy config ranks a panel of architectures (signal, reliability,
fidelity, direction, cost), for any preset plus `--set` overrides, with verdicts against the
gates a user passes."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import sys
from pathlib import Path

from nas import runtime
from nas.commands.common import resolve_model
from nas.console import stdout_to_stderr
from proxy_tasks.presets import PRESETS, get_preset, with_overrides
from search_space import SpecError

# Loggers whose records (TFDS's dataset notes, JAX's) go to the log beside --out, not the console.
QUIET_LOGGERS = ("absl", "jax")


def register(sub) -> None:
    p = sub.add_parser("fidelity", help="rank fidelity of a proxy config over a panel of "
                                        "architectures")
    p.add_argument("--archs", nargs="+", metavar="NAME_OR_SPEC_FILE",
                   help="built-in models, names of the default panel or spec files "
                        "(default: the whole default panel)")
    p.add_argument("--preset", default="default", help=f"one of {', '.join(PRESETS)}")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config field (repeatable)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 on the config (default 3)")
    p.add_argument("--factor", type=int, default=4,
                   help="the long schedule trains F times the steps, once (default 4)")
    p.add_argument("--gate", dest="gates", action="append", default=[], metavar="NAME>=VALUE",
                   help="judge a figure (signal, reliability, fidelity, direction, cost_s) "
                        "against a bound, with >=, <=, > or <; repeatable")
    p.add_argument("--out", metavar="FILE.json",
                   help="write the result here, the finished trials beside it (FILE.jsonl: a "
                        "rerun resumes from them) and the libraries' logs (FILE.log)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def panel_of(names):
    """The architectures to measure by name: the default panel, or each of `names` (a name of
    the default panel, a built-in model or a spec file)."""
    from proxy_tasks.fidelity import default_panel

    panel = default_panel()
    if not names:
        return panel
    chosen = {}
    for name in names:
        if name in chosen:
            raise ValueError(f"--archs: {name!r} is given twice")
        try:
            chosen[name] = panel[name] if name in panel else resolve_model(name)[0]
        except SpecError as err:
            raise ValueError(f"--archs: {name!r}: {err}; default panel: "
                             f"{', '.join(panel)}") from None
    return chosen


def _check_positive(option: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{option}: must be a positive integer, got {value}")


def run(args) -> int:
    from proxy_tasks.fidelity import measure_fidelity, parse_gate  # jax loads only here

    _check_positive("--seeds", args.seeds)
    _check_positive("--factor", args.factor)
    gates = dict(parse_gate(text) for text in args.gates)
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix != ".json":
        raise ValueError(f"--out: {args.out!r} must end in .json (the finished trials go "
                         f"beside it, in .jsonl)")
    config = with_overrides(get_preset(args.preset), args.overrides)
    panel = panel_of(args.archs)

    def progress(record):
        if not args.json:
            print(trial_line(record), flush=True)

    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
    quiet_logs(out.with_suffix(".log") if out else None)
    runtime.enable_compile_cache()
    with stdout_to_stderr() if args.json else contextlib.nullcontext():
        result = measure_fidelity(config, panel, args.seeds, args.factor,
                                  log=out and str(out.with_suffix(".jsonl")), on_trial=progress,
                                  gates=gates)
    result = {"preset": args.preset, "overrides": args.overrides, "machine": _machine(),
              **result}
    if out is not None:
        out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
    return 0


def quiet_logs(path) -> None:
    """The libraries' log records to `path` (or, without one, only their errors to stderr)."""
    handler = logging.FileHandler(path) if path else logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO if path else logging.ERROR)


def _machine() -> dict:
    import jax

    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "devices": [str(d) for d in jax.devices()], "load_avg_at_end": os.getloadavg()}


def trial_line(record) -> str:
    """One finished trial: architecture, schedule, seed, reward (or why it failed), seconds."""
    reward = record["reward"]
    shown = "failed: " + record["error"] if reward is None else f"reward {reward:.4f}"
    return (f"{record['arch']:>24} {record['schedule']:>4} seed {record['seed']}: {shown}  "
            f"compile {record.get('compile_s', 0.0):.1f}s  wall {record['wall_s']:.1f}s")


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def print_report(result, out=None) -> None:
    """The per-architecture table (mean, spread, every seed's value, the long schedule's) and
    each figure with what it means, and its verdict where it has a gate."""
    from proxy_tasks.fidelity import FIGURES

    out = out or sys.stdout
    seeds = result["seeds"]
    print(f"{'architecture':>24} {'GFLOPs':>7} {'mean':>7} {'spread':>7} "
          + " ".join(f"{f'seed {s}':>7}" for s in range(seeds))
          + f" {'x' + str(result['factor']):>7}", file=out)
    for row in result["architectures"]:
        flops = "-" if row["flops"] is None else f"{row['flops'] / 1e9:.3f}"
        print(f"{row['name']:>24} {flops:>7} {_number(row['mean']):>7} {_number(row['std']):>7} "
              + " ".join(f"{_number(v):>7}" for v in row["rewards"])
              + f" {_number(row['long']):>7}", file=out)
        for error in row["errors"]:
            print(f"{'':>24} failed: {error}", file=out)
    for name, figure in result["figures"].items():
        verdict = ""
        if "gate" in figure:
            met = {None: "not measured", True: "met", False: "not met"}[figure["met"]]
            verdict = f"  gate {figure['gate']}: {met}"
        print(f"{name:>12}: {_number(figure['value']):>8}  {FIGURES[name]}{verdict}", file=out)

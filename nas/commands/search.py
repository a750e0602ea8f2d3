"""`nas search`: start or resume an architecture search on Ray Tune."""

from __future__ import annotations

import time

from nas import run_dir as layout
from nas.commands.common import add_results_dir, preflight, summary


def register(sub) -> None:
    p = sub.add_parser("search", help="run an architecture search (Ray Tune)")
    p.add_argument("--config", metavar="FILE.yaml", help="search config (YAML)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="set one config key, dotted (controller.name=ppo, proxy.preset=tiny, "
                        "proxy.epochs=1); repeatable")
    p.add_argument("--name", help="run name (default: search-DATE-TIME)")
    add_results_dir(p)
    p.add_argument("--resume", action="store_true",
                   help="continue the run NAME where it stopped")
    p.add_argument("--allow-version-change", action="store_true",
                   help="resume even though the proxy code or config changed")
    p.add_argument("--address", help="join this Ray cluster (default: start Ray locally)")
    p.add_argument("--max-trials", type=int, help="trials to finish (config key max_trials)")
    p.add_argument("--concurrency", type=int, help="trials at once (config key concurrency)")
    p.add_argument("--quiet", action="store_true", help="one plain line per finished trial")
    p.add_argument("--show-config", action="store_true",
                   help="print the effective config and exit without running")
    p.set_defaults(func=run)


def run(args) -> int:
    from nas.config import dump_config, load_config
    from nas.driver import RunOptions, run_search

    sets = list(args.sets)
    overrides = {}
    for key in ("max_trials", "concurrency"):
        value = getattr(args, key)
        if value is not None:
            sets.append(f"{key}={value}")
            overrides[key] = value
    if args.resume:
        if args.config or args.sets:
            raise ValueError("--resume: a run keeps its config; only --max-trials and "
                             "--concurrency may change")
        if not args.name:
            raise ValueError("--resume: name the run to resume with --name")
        config = None
    else:
        config = load_config(args.config, sets)
        preflight(config)
    if args.show_config:
        print(dump_config(config) if config is not None else f"--resume {args.name}")
        return 0
    name = layout.check_name(args.name or time.strftime("search-%Y%m%d-%H%M%S"))
    options = RunOptions(name=name, results_dir=args.results_dir, resume=args.resume,
                         address=args.address, quiet=args.quiet,
                         allow_version_change=args.allow_version_change)
    if config is not None:
        print(summary(name, args.results_dir, config), flush=True)
    return run_search(config, options, overrides)

"""`nas rediscover`: the paper's search for SpineNet-49 from the ResNet-50 seed as a preset of
`nas search` (its space, the seed first, the controller scaled to the budget), then the
retraining of the seed, SpineNet-49 and the winners, and the rediscovery report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List

from nas import run_dir as layout
from nas.commands.common import DEFAULT_RESULTS, add_results_dir, preflight, summary
from proxy_tasks.presets import PRESETS

CONTROLLERS = ("evolution", "ppo")
OBJECTIVES = ("ap", "similarity")
# About 70 minutes of the default proxy on 2 cores; a few minutes of similarity checks.
DEFAULT_BUDGET = {"ap": 60, "similarity": 300}
DEFAULT_RETRAIN_SEEDS = {"ap": 3, "similarity": 0}
# Evolution's population: a tenth of the budget within these bounds (bench/results/
# controllers.md: 200 for budgets of thousands), tournaments of half of it.
POPULATION_BOUNDS = (4, 200)


def register(sub) -> None:
    p = sub.add_parser("rediscover", help="search for SpineNet-49 from the ResNet-50 seed, "
                                          "retrain the winners and report")
    p.add_argument("--controller", choices=CONTROLLERS, help="default evolution")
    p.add_argument("--budget", type=int, help="trials to finish (default "
                   + ", ".join(f"{v} for {k}" for k, v in DEFAULT_BUDGET.items()) + ")")
    p.add_argument("--proxy", choices=tuple(PRESETS), help="proxy preset (default: default, "
                   "the embedded dataset; paper: COCO through TFDS)")
    p.add_argument("--objective", choices=OBJECTIVES,
                   help="ap (default) or similarity: decision agreement with SpineNet-49, a "
                        "controller check that trains nothing")
    p.add_argument("--retrain-seeds", type=int, help="retrain the seed, SpineNet-49 and the top "
                   "3 with this many seeds after the search (default 3; none for similarity)")
    p.add_argument("--name", help="run name (default: rediscover-DATE-TIME)")
    add_results_dir(p)
    p.add_argument("--resume", action="store_true",
                   help="continue the run NAME where it stopped (only --budget and "
                        "--retrain-seeds may change)")
    p.add_argument("--address", help="join this Ray cluster (default: start Ray locally)")
    p.add_argument("--quiet", action="store_true", help="one plain line per finished trial")
    p.set_defaults(func=run)


def rediscovery_sets(controller: str, budget: int, proxy: str, objective: str) -> List[str]:
    """The `nas search --set` assignments of a rediscovery."""
    sets = ["space=spinenet-49", f"controller.name={controller}",
            "controller.initial=[resnet50-seed]", f"objective.name={objective}",
            "objective.target=spinenet-49", f"proxy.preset={proxy}", f"max_trials={budget}"]
    if controller == "evolution":
        low, high = POPULATION_BOUNDS
        population = min(high, max(low, budget // 10))
        # The first population is the seed and its single mutants.
        sets += [f"controller.evolution.population_size={population}",
                 f"controller.evolution.tournament_size={population // 2}",
                 f"controller.initial_mutants={population - 1}"]
    return sets


def run(args) -> int:
    from nas.config import load_config
    from nas.driver import RunOptions, run_search

    for option in ("budget", "retrain_seeds"):
        value = getattr(args, option)
        if value is not None and value < (1 if option == "budget" else 0):
            raise ValueError(f"--{option.replace('_', '-')}: must be >= "
                             f"{1 if option == 'budget' else 0}, got {value}")
    if args.resume:
        config, objective, recorded = None, *_recorded(args)
        overrides = {"max_trials": args.budget} if args.budget is not None else {}
    else:
        objective, recorded = args.objective or "ap", None
        config = load_config(None, rediscovery_sets(
            args.controller or "evolution",
            args.budget if args.budget is not None else DEFAULT_BUDGET[objective],
            args.proxy or "default", objective))
        preflight(config)
        overrides = None
    seeds = args.retrain_seeds if args.retrain_seeds is not None else (
        recorded if recorded is not None else DEFAULT_RETRAIN_SEEDS[objective])
    if objective == "similarity" and seeds:
        raise ValueError(f"--retrain-seeds: the similarity objective trains nothing, got {seeds}")
    name = layout.check_name(args.name or time.strftime("rediscover-%Y%m%d-%H%M%S"))
    if config is not None:
        print(summary(name, args.results_dir, config), flush=True)
    if objective == "similarity":
        from nas.reports.rediscovery import CONTROLLER_CHECK
        print(f"objective similarity: {CONTROLLER_CHECK}", flush=True)
    options = RunOptions(name=name, results_dir=args.results_dir, resume=args.resume,
                         address=args.address, quiet=args.quiet)
    folder = args.results_dir / name
    ours = args.resume or not folder.exists()  # never mark a run that run_search refuses
    try:
        status = run_search(config, options, overrides)
    finally:
        if ours:
            _mark(folder, seeds)
    if status == 0:
        status = _retrain_and_report(folder, seeds)
    if status != 0:
        print(f"rediscover {name}: continue with: nas rediscover --name {name} --resume"
              + (f" --results-dir {args.results_dir}"
                 if args.results_dir != Path(DEFAULT_RESULTS) else ""))
    return status


def _recorded(args):
    """(objective, retrain seeds or None) of the run to resume."""
    from nas.reports.rediscovery import META_KEY

    if args.controller or args.proxy or args.objective:
        raise ValueError("--resume: a run keeps its controller, proxy and objective; only "
                         "--budget and --retrain-seeds may change")
    if not args.name:
        raise ValueError("--resume: name the run to resume with --name")
    _, ledger = layout.open_run(args.results_dir, args.name)
    try:
        return (ledger.meta("config")["objective"]["name"],
                (ledger.meta(META_KEY) or {}).get("retrain_seeds"))
    finally:
        ledger.close()


def _mark(folder: Path, seeds: int) -> None:
    """Records in the run's ledger (if the run exists) that it is a rediscovery, so that
    `nas report` writes the rediscovery report too."""
    from nas.ledger import LEDGER_FILE, Ledger
    from nas.reports.rediscovery import META_KEY

    if not (folder / LEDGER_FILE).exists():
        return
    ledger = Ledger(folder / LEDGER_FILE)
    try:
        ledger.set_meta({META_KEY: {**(ledger.meta(META_KEY) or {}), "retrain_seeds": seeds}})
    finally:
        ledger.close()


def _retrain_and_report(folder: Path, seeds: int) -> int:
    """Retrains the report's architectures `seeds` times each, then writes the report."""
    from nas.config import SearchConfig, from_data
    from nas.driver import INTERRUPTED
    from nas.reports.rediscovery import (CONTROLLER_CHECK, META_KEY, architectures,
                                        write_rediscovery_report)
    from nas.reports.search import exported_files
    from nas.retrain import retrain

    _, ledger = layout.open_run(folder.parent, folder.name)
    try:
        config = from_data(SearchConfig, ledger.meta("config"))
        if seeds:
            files, models = exported_files(folder), {}
            for row in architectures(ledger, config):  # a built-in name before a spec file
                models.setdefault(row["spec_hash"],
                                  row["model"] or _json_spec(folder, files[row["trial_id"]]))
            try:
                retrain(folder, ledger, models, config.proxy.preset, config.proxy.set,
                        range(seeds), META_KEY)
            except KeyboardInterrupt:
                print(f"rediscover {folder.name}: retraining stopped")
                return INTERRUPTED
        path = write_rediscovery_report(folder, ledger)
    finally:
        ledger.close()
    check = config.objective.name == "similarity"
    print(f"rediscovery report {path}" + (f" ({CONTROLLER_CHECK})" if check else ""))
    return 0


def _json_spec(folder: Path, names: List[str]) -> str:
    """The exported JSON spec file among a trial's exported files."""
    (name,) = [n for n in names if n.endswith(".json")]
    return str(folder / layout.SPECS_DIR / name)

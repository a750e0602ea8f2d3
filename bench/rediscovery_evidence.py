"""The real rediscovery and its evidence, step by step, each step resumable: the evolution run
(`nas rediscover`, which retrains the seed, SpineNet-49 and its top 3 over 3 seeds), a
random-search control in the same space on the same proxy, the control's best retrained over
the same seeds, and evolution's winner and SpineNet-49 once more on the 4x schedule.

Run it with the pinned worktree's interpreter from that worktree, so that every training runs
the run's own code (it uses only what that commit has: the `nas` CLI, `nas.retrain`):

    cd WORKTREE && .venv/bin/python MAIN/bench/rediscovery_evidence.py [--steps ...]

Interrupting it (Ctrl-C) loses no finished trial; running it again continues where it stopped.
The retrained rewards land in the evolution run's ledger (meta `rediscovery` for the 3 seeds,
`rediscovery_long` for the 4x schedule), where `nas report` reads them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

# Run as a script, this file's folder would shadow the `controllers` package; the packages are
# the worktree's (its venv installs them).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

from nas.export import MANIFEST, top_trials  # noqa: E402
from nas.ledger import LEDGER_FILE, Ledger  # noqa: E402
from nas.retrain import _train, retrain  # noqa: E402
from search_space import builtin_spec, canonical_hash  # noqa: E402

EVOLUTION, CONTROL = "rediscover-default-150", "random-control-default-60"
BUDGET, CONTROL_BUDGET, SEEDS = 150, 60, 3
LONG = ["epochs=24", "warmup_steps=200"]  # the fidelity panel's 4x schedule
LONG_KEY = "rediscovery_long"
STEPS = ("evolution", "control", "control-best", "long")


def nas(*args: str) -> int:
    """Runs the worktree's `nas` with these arguments; its exit status."""
    return subprocess.run([sys.executable, "-m", "nas.cli", *args]).returncode


def evolution(results: Path) -> int:
    resume = ["--name", EVOLUTION, "--resume"] if (results / EVOLUTION).exists() else \
        ["--name", EVOLUTION]
    return nas("rediscover", "--budget", str(BUDGET), *resume, "--quiet")


def control(results: Path) -> int:
    if (results / CONTROL).exists():
        return nas("search", "--name", CONTROL, "--resume", "--quiet")
    sets = ["space=spinenet-49", "controller.name=random", "controller.initial=[resnet50-seed]",
            "controller.initial_mutants=0", "objective.name=ap", "proxy.preset=default",
            f"max_trials={CONTROL_BUDGET}"]
    return nas("search", *(a for s in sets for a in ("--set", s)), "--name", CONTROL, "--quiet")


def control_best(results: Path) -> int:
    """The control's best, retrained over the rediscovery's seeds into evolution's ledger."""
    ledger = Ledger(results / CONTROL / LEDGER_FILE)
    try:
        (best,) = top_trials(ledger, 1)
    finally:
        ledger.close()
    entry = json.loads((results / CONTROL / "specs" / MANIFEST).read_text())[0]
    if entry["spec_hash"] != best["spec_hash"]:
        raise SystemExit(f"{CONTROL}: the exported rank 1 is not the ledger's best; run "
                         f"`nas export {CONTROL}` first")
    spec = str(results / CONTROL / "specs" / entry["files"][0])
    ledger = Ledger(results / EVOLUTION / LEDGER_FILE)
    try:
        retrain(results / EVOLUTION, ledger, {best["spec_hash"]: spec}, "default", [],
                range(SEEDS), "rediscovery")
    finally:
        ledger.close()
    return 0


def long_schedule(results: Path) -> int:
    """Evolution's winner and SpineNet-49, seed 0, on the 4x schedule (a search's seed-0
    reward is the 6-epoch one, so these are trained here, not taken from the ledger)."""
    (winner,) = json.loads((results / EVOLUTION / "specs" / MANIFEST).read_text())[:1]
    models = {winner["spec_hash"]: str(results / EVOLUTION / "specs" / winner["files"][0]),
              canonical_hash(builtin_spec("spinenet-49")): "spinenet-49"}
    ledger = Ledger(results / EVOLUTION / LEDGER_FILE)
    try:
        record = ledger.meta(LONG_KEY) or {"overrides": LONG, "retrain": {}}
        for spec_hash, model in models.items():
            if record["retrain"].get(spec_hash, {}).get("0") is None:  # not yet, or failed
                reward = _train(results / EVOLUTION, model, "default", LONG, "0")
                record["retrain"][spec_hash] = {"0": reward}
                ledger.set_meta({LONG_KEY: record})
                print(f"{model} on {', '.join(LONG)} (seed 0): reward {reward}", flush=True)
    finally:
        ledger.close()
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    run = {"evolution": evolution, "control": control, "control-best": control_best,
           "long": long_schedule}
    for step in args.steps:
        print(f"== {step}", flush=True)
        status = run[step](args.results_dir)
        if status != 0:
            print(f"== {step} ended with status {status}; run again to continue", flush=True)
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`nas status`: where a search stands (or, without a name, the runs in a results folder)."""

from __future__ import annotations

import json

from nas.export import best_trial
from nas.ledger import DONE, FAILED, IN_FLIGHT, INFEASIBLE, LEDGER_FILE
from nas.run_dir import driver_running, open_run
from nas.commands.common import add_results_dir


def register(sub) -> None:
    p = sub.add_parser("status", help="show a search's progress and trials")
    p.add_argument("name", nargs="?", help="run name (omit to list the runs)")
    add_results_dir(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def status(results_dir, name: str) -> dict:
    folder, ledger = open_run(results_dir, name)
    try:
        counts, config = ledger.counts(), ledger.meta("config")
        trials = ledger.trials()
        return {
            "name": name,
            "max_trials": config["max_trials"],
            "finished": counts[DONE] + counts[FAILED],
            "done": counts[DONE],
            "failed": counts[FAILED],
            "infeasible": counts[INFEASIBLE],
            "duplicate": counts["duplicate"],
            "in_flight": sum(counts[s] for s in IN_FLIGHT),
            "driver_running": driver_running(folder),
            "code_version": ledger.meta("code_version"),
            "best": best_trial(ledger),
            "trials": [{k: t[k] for k in ("trial_id", "spec_hash", "status", "reward", "attempts")}
                       for t in trials],
        }
    finally:
        ledger.close()


def run(args) -> int:
    if args.name is None:
        runs = sorted(p.parent.name for p in args.results_dir.glob(f"*/{LEDGER_FILE}"))
        reports = [status(args.results_dir, name) for name in runs]
        if args.json:
            print(json.dumps([{k: v for k, v in r.items() if k != "trials"} for r in reports],
                             indent=2))
        for r in [] if args.json else reports:
            print(_headline(r))
        return 0
    report = status(args.results_dir, args.name)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(_headline(report))
    for t in report["trials"]:
        reward = "-" if t["reward"] is None else f"{t['reward']:.4f}"
        print(f"  {t['trial_id']:<18}{t['status']:<12}{reward:>8}  attempts {t['attempts']}  "
              f"{t['spec_hash'][:12]}")
    return 0


def _headline(r: dict) -> str:
    best = r["best"]
    best_text = "-" if best is None else f"{best['reward']:.4f} ({best['trial_id']})"
    state = "running" if r["driver_running"] else "stopped"
    return (f"{r['name']}: {r['finished']}/{r['max_trials']} finished ({r['failed']} failed), "
            f"{r['in_flight']} in flight, {r['duplicate']} duplicate, {r['infeasible']} "
            f"infeasible; best {best_text}; driver {state}")

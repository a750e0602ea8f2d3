"""How fast real searches run on this machine.

    python bench/search_throughput.py concurrency [--trials 6] [--preset default]
    python bench/search_throughput.py step-time [--arch spinenet-49] [--preset default] [--repeats 3]
    python bench/search_throughput.py run RESULTS_DIR/NAME [RESULTS_DIR/NAME ...]

`concurrency`: the same architectures (the ResNet-50 seed and its first mutants) searched once
with one trial at a time on all CPUs and once with one trial per CPU side by side; the
compilation cache is off, so no trial reuses another's programs. `step-time`: training images
per second of one architecture in `nas proxy` and inside a Ray worker of `nas search`, the two
alternated (this machine's speed drifts by 20-40% within an hour; the ratio of the medians).
`run`: trials per hour and the share of trial time spent compiling, from a run's ledger (from
each run's, for runs side by side).
Each writes JSON under bench/results/ (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def nas(*args, env=None) -> str:
    out = subprocess.run([sys.executable, "-m", "nas.cli", *map(str, args)], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"nas {' '.join(map(str, args))} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def no_cache_env() -> dict:
    return dict(os.environ, NAS_COMPILE_CACHE="0")


def run_summary(folder: Path) -> dict:
    """Wall time from the first start to the last finish, trials per hour, and the mean and
    total split of trial time (compile, train, eval) over done trials."""
    with sqlite3.connect(folder / "ledger.sqlite") as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute(
            "SELECT trial_id, status, started_at, finished_at, compile_s, train_s, eval_s, "
            "reward, metrics FROM trials WHERE status = 'done'")]
    wall = max(r["finished_at"] for r in rows) - min(r["started_at"] for r in rows)
    trial_s = sum(r["finished_at"] - r["started_at"] for r in rows)
    compile_s = sum(r["compile_s"] for r in rows)
    return {
        "trials": len(rows),
        "wall_s": round(wall, 1),
        "trials_per_hour": round(3600 * len(rows) / wall, 2),
        "mean_trial_s": round(trial_s / len(rows), 1),
        "mean_compile_s": round(compile_s / len(rows), 1),
        "mean_train_s": round(sum(r["train_s"] for r in rows) / len(rows), 1),
        "mean_eval_s": round(sum(r["eval_s"] for r in rows) / len(rows), 1),
        "compile_share_of_trial_time": round(compile_s / trial_s, 3),
        "train_images_per_s": [round(json.loads(r["metrics"])["train_images_per_s"], 1)
                               for r in rows],
        "rewards": {r["trial_id"]: r["reward"] for r in rows},
    }


def search(results: Path, name: str, trials: int, concurrency: int, cpus: float, preset: str,
           env=None, initial=("resnet50-seed",)) -> dict:
    """A search whose trials are exactly the initial genomes and mutants (random controller)."""
    nas("search", "--set", "controller.name=random", "--set",
        f"controller.initial=[{', '.join(initial)}]", "--set",
        f"controller.initial_mutants={trials - len(initial)}", "--set",
        f"proxy.preset={preset}", "--set", f"resources.cpus={cpus}", "--max-trials", trials,
        "--concurrency", concurrency, "--name", name, "--results-dir", results, "--quiet",
        env=env)
    return run_summary(results / name)


def machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "ld_preload": os.environ.get("LD_PRELOAD", "")}


def concurrency(args) -> dict:
    results = Path(tempfile.mkdtemp(prefix="nas-bench-throughput-"))
    cores = os.cpu_count()
    one = search(results, "one-at-a-time", args.trials, 1, cores, args.preset, no_cache_env())
    side = search(results, "side-by-side", args.trials, cores, 1, args.preset, no_cache_env())
    return {"preset": args.preset, "trials": args.trials, "compile_cache": "off",
            f"concurrency_1_cpus_{cores}": one, f"concurrency_{cores}_cpus_1": side,
            "speedup_side_by_side": round(one["wall_s"] / side["wall_s"], 3)}


def step_time(args) -> dict:
    """`nas proxy` and a one-trial search, alternated `--repeats` times (proxy first in even
    rounds, the worker first in odd ones), so a drift of the machine's speed hits both alike."""
    proxy_runs, worker_runs = [], []
    for round_ in range(args.repeats):
        def run_proxy():
            out = json.loads(nas("proxy", args.arch, "--preset", args.preset, "--json",
                                 env=no_cache_env()))
            proxy_runs.append({k: out[k] for k in ("compile_s", "train_s", "eval_s",
                                                     "train_images_per_s", "reward")})

        def run_worker():
            results = Path(tempfile.mkdtemp(prefix="nas-bench-step-"))
            worker_runs.append(search(results, "worker", 1, 1, os.cpu_count(), args.preset,
                                      no_cache_env(), initial=(args.arch,)))

        for run in ((run_proxy, run_worker) if round_ % 2 == 0 else (run_worker, run_proxy)):
            run()
    proxy_rates = [run["train_images_per_s"] for run in proxy_runs]
    worker_rates = [run["train_images_per_s"][0] for run in worker_runs]
    return {"arch": args.arch, "preset": args.preset, "compile_cache": "off",
            "nas_proxy": proxy_runs, "ray_worker": worker_runs,
            "worker_to_proxy_images_per_s_by_round": [
                round(w / p, 3) for w, p in zip(worker_rates, proxy_rates)],
            "worker_to_proxy_images_per_s": round(
                statistics.median(worker_rates) / statistics.median(proxy_rates), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("concurrency")
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--preset", default="default")
    p = sub.add_parser("step-time")
    p.add_argument("--arch", default="spinenet-49")
    p.add_argument("--preset", default="default")
    p.add_argument("--repeats", type=int, default=3)
    p = sub.add_parser("run")
    p.add_argument("folders", type=Path, nargs="+")
    for p in sub.choices.values():
        p.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.mode == "run" and len(args.folders) == 1:
        result = {"run": str(args.folders[0]), **run_summary(args.folders[0])}
    elif args.mode == "run":
        result = {"runs": {str(folder): run_summary(folder) for folder in args.folders}}
    else:
        result = (concurrency if args.mode == "concurrency" else step_time)(args)
    result["machine"] = machine()
    out = args.out or RESULTS / f"search_throughput_{args.mode}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

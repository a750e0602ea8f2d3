"""The search driver's own cost: a search of many trivial trials through `nas search`.

    python bench/search_driver.py [--trials 2000] [--concurrency 2] [--out FILE]

Each trial is a similarity check (no training, no delay), so what is measured is the driver
(controller, ledger, Tune, Ray) alone. The driver's resident memory is sampled with its number
of finished trials; writes JSON with the RSS at 100 trials and at the end, their ratio, the
driver's wall and CPU seconds per trial, and the sampled curve.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def finished(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute("SELECT COUNT(*) FROM trials WHERE status IN ('done', 'failed')"
                                ).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--controller", default="evolution")
    parser.add_argument("--out", default=str(ROOT / "bench/results/search_driver.json"))
    args = parser.parse_args()
    results = Path(tempfile.mkdtemp(prefix="nas-bench-driver-"))
    command = [sys.executable, "-m", "nas.cli", "search", "--set", "objective.name=similarity",
               "--set", f"controller.name={args.controller}", "--max-trials", str(args.trials),
               "--concurrency", str(args.concurrency), "--set", "resources.cpus=1",
               "--name", "bench", "--results-dir", str(results), "--quiet"]
    started = time.monotonic()
    driver = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    process = psutil.Process(driver.pid)
    ledger = results / "bench" / "ledger.sqlite"
    samples, first_trial_s, cpu_s = [], None, None
    while driver.poll() is None:
        try:
            rss, cpu = process.memory_info().rss, process.cpu_times()
        except psutil.Error:
            break
        done = finished(ledger)
        if done and first_trial_s is None:
            first_trial_s = time.monotonic() - started
        samples.append({"t": round(time.monotonic() - started, 2), "finished": done,
                        "rss_mib": round(rss / 2 ** 20, 1)})
        cpu_s = cpu.user + cpu.system
        if done >= args.trials:
            break
        time.sleep(0.25)
    driver.wait()
    if driver.returncode != 0:
        raise SystemExit(f"the search failed ({driver.returncode}): {driver.stderr.read()}")
    total_s = time.monotonic() - started

    def rss_at(count):
        return next(s["rss_mib"] for s in samples if s["finished"] >= count)

    last = [s for s in samples if s["finished"] >= args.trials]
    out = {
        "command": " ".join(command[1:]),
        "trials": args.trials, "concurrency": args.concurrency, "controller": args.controller,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "rss_mib_at_100": rss_at(100),
        "rss_mib_at_end": last[0]["rss_mib"] if last else samples[-1]["rss_mib"],
        "seconds_to_first_trial": round(first_trial_s, 2),
        "total_s": round(total_s, 2),
        "driver_wall_s_per_trial": round((total_s - first_trial_s) / args.trials, 4),
        "driver_cpu_s_per_trial": round(cpu_s / args.trials, 4),
        "samples": samples[::max(1, len(samples) // 200)],
    }
    out["rss_ratio_end_to_100"] = round(out["rss_mib_at_end"] / out["rss_mib_at_100"], 3)
    shutil.rmtree(results)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "samples"}, indent=2))


if __name__ == "__main__":
    main()

"""Retraining a few architectures with a search's proxy over several seeds: each training is a
`nas proxy` process of its own (the machine's accelerators, not the driver's CPU-only JAX), and
each reward is recorded in the run's ledger as it arrives, so an interrupted retraining resumes.
A seed the search already trained an architecture with is taken from the search's ledger."""

from __future__ import annotations

import ctypes
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Sequence

from nas import run_dir as layout
from nas.ledger import DONE, Ledger

RETRAIN_KEY = "retrain"  # in the ledger's `rediscovery` meta: {spec hash: {seed: reward}}
LOG_FILE = "retrain.log"


def searched_rewards(ledger: Ledger) -> Dict[str, Dict[str, float]]:
    """{spec hash: {seed: reward}} of every seed the search trained each network with."""
    known: Dict[str, Dict[str, float]] = {}
    for trial in ledger.trials([DONE]):
        for run in trial["metrics"].get("per_seed", []):
            known.setdefault(trial["spec_hash"], {})[str(run["seed"])] = run["reward"]
    return known


def retrain(folder: Path, ledger: Ledger, models: Mapping[str, str], preset: str,
            overrides: Sequence[str], seeds: Sequence[int], meta_key: str,
            say: Callable[[str], None] = print) -> Dict[str, Dict[str, Optional[float]]]:
    """Rewards {spec hash: {seed: reward, None if the training failed}} of each model
    ({spec hash: built-in name or spec file}) for every seed; trains only what neither the
    search nor an earlier retraining recorded."""
    known = searched_rewards(ledger)
    record = ledger.meta(meta_key) or {}
    rewards = {h: dict(v) for h, v in record.get(RETRAIN_KEY, {}).items()}
    for spec_hash, model in models.items():
        for seed in map(str, seeds):
            values = rewards.setdefault(spec_hash, {})
            if seed in values:
                continue
            values[seed] = known.get(spec_hash, {}).get(seed)
            if values[seed] is None:
                values[seed] = _train(folder, model, preset, overrides, seed)
                say(f"retrained {model} (seed {seed}): "
                    + ("FAILED, see " + str(folder / layout.LOGS_DIR / LOG_FILE)
                       if values[seed] is None else f"reward {values[seed]:.4f}"))
            ledger.set_meta({meta_key: {**record, RETRAIN_KEY: rewards}})
    return rewards


def _train(folder: Path, model: str, preset: str, overrides: Sequence[str],
           seed: str) -> Optional[float]:
    """The reward of one `nas proxy` run, its stderr appended to the run's retrain log."""
    command = [sys.executable, "-m", "nas.cli", "proxy", model, "--preset", preset,
               *(arg for override in overrides for arg in ("--set", override)),
               "--seed", seed, "--json"]
    logs = folder / layout.LOGS_DIR
    logs.mkdir(exist_ok=True)
    with open(logs / LOG_FILE, "a") as log:
        log.write(f"$ {' '.join(command[1:])}\n")
        log.flush()
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True,
                              preexec_fn=_die_with_parent)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout)["reward"]


def _die_with_parent() -> None:
    """In the child, before it runs: on Linux the kernel kills it when the driver dies, so a
    driver killed during a retraining leaves no training behind (a resume trains that seed
    again)."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

"""Rank fidelity of a proxy config: a panel of architectures trained over several seeds and once
on a longer schedule, and the figures that say whether its reward is worth searching on (signal,
reliability, fidelity, direction, cost), judged against gates where the user gives some.

Every finished trial is appended to a JSON-lines log, so an interrupted panel resumes without
training a finished trial again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import operator
import re
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import stats

from proxy_tasks.presets import ProxyConfig
from proxy_tasks.trial import TrialFailed, run_proxy_trial
from search_space import (Genome, SpineNetSpec, builtin_spec, canonical_hash, decode, distance,
                          genome_from_spec, get_space, mutate, random_genome)

PANEL_SPACE = "spinenet-49"
PANEL_SEED = 16  # every mutant and random genome of the panel is drawn from it; another draws
# another panel
SEED_MODEL, SPINENET_49 = "resnet50-seed", "spinenet-49"
MUTANTS_PER_PARENT = 2
RANDOM_GENOMES = 4
FIGURES = {"signal": "SpineNet-49's mean reward",
           "reliability": "mean seed std / std of the means (lower: seeds overturn less)",
           "fidelity": "Kendall tau of the means against the long schedule",
           "direction": "SpineNet-49 - ResNet-50 seed on the long schedule",
           "cost_s": "SpineNet-49's first trial, wall seconds"}
COMPARISONS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
Gates = Dict[str, Tuple[str, float]]  # figure -> (comparison, bound) it must meet


def parse_gate(text: str) -> Tuple[str, Tuple[str, float]]:
    """`NAME>=VALUE` (or <=, >, <) as (figure, (comparison, bound))."""
    match = re.fullmatch(r"\s*(\w+)\s*(>=|<=|>|<)\s*(\S+)\s*", text)
    if not match or match[1] not in FIGURES:
        raise ValueError(f"--gate: {text!r} is not NAME>=VALUE (or <=, >, <) with NAME one of "
                         f"{', '.join(FIGURES)}")
    try:
        return match[1], (match[2], float(match[3]))
    except ValueError:
        raise ValueError(f"--gate: {text!r}: {match[3]!r} is not a number") from None
TIMES = ("compile_s", "train_s", "eval_s", "wall_s")


def single_mutants(genome: Genome, count: int, rng: np.random.Generator) -> List[Genome]:
    """`count` distinct networks one decision away from `genome` in the panel space (`mutate`
    may move a second level when two blocks trade places: such children are drawn again);
    gives up after 100 draws a mutant."""
    space = get_space(PANEL_SPACE)
    seen = {canonical_hash(decode(genome, space))}
    mutants = []
    for _ in range(100 * count):
        if len(mutants) == count:
            return mutants
        child = mutate(genome, space, rng)
        key = canonical_hash(decode(child, space))
        if distance(genome, child, space)["total"] == 1 and key not in seen:
            seen.add(key)
            mutants.append(child)
    raise ValueError(f"found only {len(mutants)} single-decision mutants, not {count}")


def default_panel() -> Dict[str, SpineNetSpec]:
    """The default panel, by name: the ResNet-50 seed, SpineNet-49, two single-decision mutants
    of each and four random genomes of the paper space, all drawn from `PANEL_SEED` (random-k
    from the stream [PANEL_SEED, 100 + k])."""
    space = get_space(PANEL_SPACE)
    panel = {}
    for index, name in enumerate((SEED_MODEL, SPINENET_49)):
        parent = genome_from_spec(builtin_spec(name), space)
        panel[name] = decode(parent, space)
        rng = np.random.default_rng([PANEL_SEED, index])
        for k, child in enumerate(single_mutants(parent, MUTANTS_PER_PARENT, rng)):
            panel[f"{name}-mutant-{k}"] = decode(child, space)
    for k in range(RANDOM_GENOMES):
        genome = random_genome(space, np.random.default_rng([PANEL_SEED, 100 + k]))
        panel[f"random-{k}"] = decode(genome, space)
    return panel


def long_schedule(config: ProxyConfig, factor: int) -> ProxyConfig:
    """`config` trained `factor` times as many steps with the same schedule shape: the epochs and
    the warm-up steps both multiplied (the decay follows the total steps by itself)."""
    if not (isinstance(factor, int) and factor >= 1):
        raise ValueError(f"factor: must be a positive integer, got {factor!r}")
    return dataclasses.replace(config, epochs=config.epochs * factor,
                               warmup_steps=config.warmup_steps * factor)


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> Optional[float]:
    """Kendall's tau-b of two rankings (ties counted as tau-b does); None where it is undefined
    (fewer than two items, or one side all tied)."""
    if len(x) != len(y):
        raise ValueError(f"kendall_tau: {len(x)} values against {len(y)}")
    if len(x) < 2 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(stats.kendalltau(x, y).statistic)


def reliability(seed_stds: Sequence[float], means: Sequence[float]) -> Optional[float]:
    """Mean seed standard deviation over the spread (sample standard deviation) of the
    architectures' means: the share of a ranking that seed noise can overturn. None where
    undefined (fewer than two architectures, or all means equal)."""
    if len(means) < 2 or not seed_stds:
        return None
    spread = float(np.std(means, ddof=1))
    return float(np.mean(seed_stds)) / spread if spread > 0 else None


class TrialLog:
    """Finished trials, one JSON object a line, keyed by what determines their result (network,
    config, seed). A last line cut short by an interruption is dropped."""

    def __init__(self, path: Optional[str]):
        self.path = Path(path) if path else None
        self.records: Dict[str, Dict] = {}
        if self.path is None or not self.path.exists():
            return
        text = self.path.read_text()
        lines = text.split("\n")
        if lines[-1]:  # no newline after the last record: its write was interrupted
            self.path.write_text(text[:len(text) - len(lines[-1])])
        for number, line in enumerate(lines[:-1], 1):
            try:
                record = json.loads(line)
                self.records[record["key"]] = record
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{self.path}: line {number} is not a trial record") from None

    def append(self, record: Dict) -> None:
        self.records[record["key"]] = record
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(json.dumps(record, default=float) + "\n")


def trial_key(spec_hash: str, config: ProxyConfig, seed: int) -> str:
    """What a trial's result depends on: the network, every config field, the seed."""
    fields = json.dumps(dataclasses.asdict(config), sort_keys=True)
    return f"{spec_hash}/{hashlib.sha256(fields.encode()).hexdigest()[:16]}/{seed}"


def _train(name: str, spec: SpineNetSpec, config: ProxyConfig, seed: int, schedule: str,
           key: str) -> Dict:
    """One trial as a log record: its metrics and wall time, or the error that stopped it."""
    started = time.perf_counter()
    try:
        result = run_proxy_trial(spec, config, seed=seed)
    except TrialFailed as err:
        result = {"reward": None, "error": str(err)}
    return dict(result, key=key, arch=name, seed=seed, schedule=schedule, epochs=config.epochs,
                wall_s=time.perf_counter() - started)


def measure_fidelity(config: ProxyConfig, panel: Dict[str, SpineNetSpec], seeds: int,
                     factor: int, log: Optional[str] = None,
                     on_trial: Optional[Callable[[Dict], None]] = None,
                     gates: Optional[Gates] = None) -> Dict:
    """Trains every architecture of `panel` with `config` over seeds 0..`seeds`-1 and once
    (seed 0) on the `factor` times longer schedule, skipping trials already in the JSON-lines
    `log` and appending each new one there; `on_trial(record)` after each new trial. Returns
    the per-architecture rows and the figures (`summarize`), each judged against `gates`."""
    if not (isinstance(seeds, int) and seeds >= 1):
        raise ValueError(f"seeds: must be a positive integer, got {seeds!r}")
    if config.checkpoint_dir:
        raise ValueError(f"checkpoint_dir: {config.checkpoint_dir!r}; the panel's trials would "
                         f"resume each other's checkpoints")
    if not panel:
        raise ValueError("archs: the panel is empty")
    long = long_schedule(config, factor)
    trials = TrialLog(log)
    done = {}
    for name, spec in panel.items():
        spec_hash = canonical_hash(spec.with_scaling(config.scaling))
        runs = [(config, seed, "base") for seed in range(seeds)] + [(long, 0, "long")]
        for run_config, seed, schedule in runs:
            key = trial_key(spec_hash, run_config, seed)
            if key not in trials.records:
                trials.append(_train(name, spec, run_config, seed, schedule, key))
                if on_trial is not None:
                    on_trial(trials.records[key])
            done[name, schedule, seed] = trials.records[key]
    return summarize(config, panel, seeds, factor, done, gates)


def _mean_std(values: List[Optional[float]]):
    if any(v is None for v in values):
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else None


def _figure(value, gate: Optional[Tuple[str, float]]) -> Dict:
    """A figure's value and, where it has a gate, the gate and whether the value meets it (None
    where the value is unmeasured)."""
    if gate is None:
        return {"value": value}
    op, bound = gate
    return {"value": value, "gate": f"{op} {bound:.4g}",
            "met": None if value is None else bool(COMPARISONS[op](value, bound))}


def summarize(config: ProxyConfig, panel: Dict[str, SpineNetSpec], seeds: int, factor: int,
              done: Dict, gates: Optional[Gates] = None) -> Dict:
    """Per-architecture rows and the figures, from the trial records `done[name, schedule,
    seed]`. Architectures with a failed trial are listed but left out of the figures."""
    rows = []
    for name, spec in panel.items():
        base = [done[name, "base", seed] for seed in range(seeds)]
        long = done[name, "long", 0]
        rewards = [t["reward"] for t in base]
        mean, std = _mean_std(rewards)
        first = next((t for t in base + [long] if "flops" in t), {})
        rows.append({"name": name, "spec_hash": canonical_hash(spec.with_scaling(config.scaling)),
                     "params": first.get("params"), "flops": first.get("flops"),
                     "rewards": rewards, "mean": mean, "std": std, "long": long["reward"],
                     "errors": [f"{t['schedule']} seed {t['seed']}: {t['error']}"
                                for t in base + [long] if "error" in t],
                     "seconds": [{"schedule": t["schedule"], "seed": t["seed"],
                                  **{k: t.get(k) for k in TIMES}} for t in base + [long]]})
    complete = [r for r in rows if r["mean"] is not None and r["long"] is not None]
    by_hash = {r["spec_hash"]: r for r in rows}

    def row_of(model: str) -> Optional[Dict]:
        return by_hash.get(canonical_hash(builtin_spec(model).with_scaling(config.scaling)))

    sn49, seed_model = row_of(SPINENET_49), row_of(SEED_MODEL)
    beats = (sn49["long"] - seed_model["long"]
             if sn49 and seed_model and None not in (sn49["long"], seed_model["long"]) else None)
    stds = [r["std"] for r in complete if r["std"] is not None]
    values = {
        "signal": sn49 and sn49["mean"],
        "reliability": reliability(stds, [r["mean"] for r in complete]),
        "fidelity": kendall_tau([r["mean"] for r in complete], [r["long"] for r in complete]),
        "direction": beats,
        "cost_s": sn49 and sn49["seconds"][0]["wall_s"],
    }
    figures = {name: _figure(value, (gates or {}).get(name)) for name, value in values.items()}
    long = long_schedule(config, factor)
    return {"config": dataclasses.asdict(config), "seeds": seeds, "factor": factor,
            "long_schedule": {"epochs": long.epochs, "warmup_steps": long.warmup_steps},
            "architectures": rows, "figures": figures}

"""Benchmark of the search controllers on a cheap, exact objective over the real search space.

The reward of a genome is the fraction of its decisions that agree with a hidden target genome
(`search_space.distance.similarity`): a random genome of the paper space drawn from a seed the
controller never sees, or SpineNet-49 itself. `--noise SIGMA` adds Gaussian noise to every reward
the controller sees (real proxy rewards are noisy; dedup then answers repeats with the first
noisy value, as a search ledger does), while progress is judged by the true reward. Reports, per
controller over seeds, the samples (trainings: dedup answers repeats for free) to reach reward
0.8 and 1.0 (exact rediscovery), the best true reward at each budget of the curve, and the
controller's time per propose+feedback.

    python bench/controllers.py [--controllers random evolution ppo] [--seeds 10]
        [--max-samples 10000] [--target random|spinenet-49] [--noise SIGMA]
        [--budget-curve [N ...]] [--initial-mutants N] [--set KEY=VALUE ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time

# Run as a script, this file's folder would shadow the `controllers` package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from controllers import (Dedup, EvolutionConfig, PPOConfig, PPOController,  # noqa: E402
                         RandomSearch, RegularizedEvolution)
from search_space import (SPACES, builtin_spec, distinct_mutants, genome_from_spec,  # noqa: E402
                          random_genome, seed_genome, similarity)

CONTROLLERS = {"random": RandomSearch, "evolution": RegularizedEvolution, "ppo": PPOController}
CONFIGS = {"evolution": EvolutionConfig, "ppo": PPOConfig}
THRESHOLDS = (0.8, 1.0)
BUDGETS = (100, 300, 1000, 3000, 10000)
TARGET_SEED_OFFSET = 7_919_000  # keeps target draws apart from controller seeds
NOISE_STREAM = 1  # the noise generator of seed s is default_rng([s, NOISE_STREAM])
STALL = 500  # repeats in a row after which a search has nothing new to try


def controller_configs(assignments) -> dict:
    """Each configurable controller's config with `NAME.FIELD=VALUE` settings (YAML scalars)."""
    values = {name: {} for name in CONFIGS}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        name, _, field = key.strip().partition(".")
        if not sep or name not in CONFIGS or field not in {
                f.name for f in dataclasses.fields(CONFIGS[name])}:
            raise ValueError(f"--set {assignment!r}: expected NAME.FIELD=VALUE, NAME one of "
                             f"{sorted(CONFIGS)} and FIELD one of its config's fields")
        values[name][field] = yaml.safe_load(text)
    return {name: CONFIGS[name](**fields) for name, fields in values.items()}


def noisy_rewards(seed: int, sigma: float):
    """The reward the controller sees from a true one: plus N(0, sigma) noise, drawn in order
    from a generator of `seed` alone, so a run is reproducible."""
    rng = np.random.default_rng([seed, NOISE_STREAM])
    return lambda reward: reward + sigma * float(rng.standard_normal()) if sigma else reward


def hidden_target(kind: str, space, seed: int):
    if kind == "spinenet-49":
        return genome_from_spec(builtin_spec("spinenet-49"), space)
    return random_genome(space, np.random.default_rng(TARGET_SEED_OFFSET + seed))


def initial_genomes(space, seed: int, mutants: int) -> tuple:
    """The ResNet-50 seed and `mutants` distinct single mutants of it, drawn as `nas search`
    draws `controller.initial_mutants` for controller seed `seed`."""
    start = seed_genome(space)
    rng = np.random.default_rng([seed, 1])
    return (start, *distinct_mutants(start, space, mutants, rng, exclude=[start]))


def run_one(name: str, space, target, seed: int, max_samples: int, dedup: bool,
            noise: float = 0.0, config=None, budgets=BUDGETS, initial_mutants: int = 0) -> dict:
    """One search until exact rediscovery, `max_samples` trainings, or nothing new to try."""
    inner = CONTROLLERS[name](space, seed=seed,
                              initial_genomes=initial_genomes(space, seed, initial_mutants),
                              **({} if config is None else {"config": config}))
    controller = Dedup(inner, max_attempts=STALL) if dedup else inner
    observe = noisy_rewards(seed, noise)
    best, best_at, reached, at_checkpoint = -1.0, 0, {}, {}
    spent, stop = 0.0, "max_samples"
    samples = 0
    while samples < max_samples:
        start = time.perf_counter()
        try:
            proposal = controller.propose()
        except RuntimeError:
            stop = "no new architectures"
            break
        spent += time.perf_counter() - start
        reward = similarity(proposal.genome, target, space)
        start = time.perf_counter()
        controller.feedback(proposal.id, observe(reward))
        spent += time.perf_counter() - start
        samples += 1
        if reward > best:
            best, best_at = reward, samples
        for threshold in THRESHOLDS:
            if best >= threshold - 1e-9 and threshold not in reached:
                reached[threshold] = samples
        if samples in budgets:
            at_checkpoint[samples] = best
        if best >= 1.0 - 1e-9:
            stop = "rediscovered"
            break
    for checkpoint in budgets:  # a search that stopped keeps its best
        if checkpoint <= max_samples and checkpoint not in at_checkpoint:
            at_checkpoint[checkpoint] = best
    return {"seed": seed, "samples": samples, "proposals": inner.num_proposed, "stop": stop,
            "best_reward": best, "best_at": best_at,
            **{f"samples_to_{t}": reached.get(t) for t in THRESHOLDS},
            "best_reward_at": {str(c): r for c, r in sorted(at_checkpoint.items())},
            "ms_per_sample": 1000 * spent / max(samples, 1)}


def summarize(runs: list) -> dict:
    def stats(values):
        values = [v for v in values if v is not None]
        if not values:
            return None
        return {"mean": statistics.fmean(values), "median": statistics.median(values),
                "std": statistics.pstdev(values),
                "min": min(values), "max": max(values), "n": len(values)}

    out = {}
    for t in THRESHOLDS:
        s = stats(r[f"samples_to_{t}"] for r in runs)
        out[f"samples_to_{t}"] = None if s is None else s["mean"]
        out[f"samples_to_{t}_spread"] = s
        out[f"reached_{t}"] = f"{0 if s is None else s['n']}/{len(runs)}"
        # Over all seeds, a seed that never got there counting as more than any that did.
        ranked = sorted(r[f"samples_to_{t}"] or float("inf") for r in runs)
        middle = statistics.median(ranked)
        out[f"samples_to_{t}_median"] = None if middle == float("inf") else middle
    out["best_at"] = statistics.fmean(r["best_at"] for r in runs)
    out["best_reward"] = stats(r["best_reward"] for r in runs)
    out["best_reward_at"] = {c: stats(r["best_reward_at"][c] for r in runs)
                             for c in runs[0]["best_reward_at"]}
    out["ms_per_sample"] = statistics.fmean(r["ms_per_sample"] for r in runs)
    out["per_seed"] = runs
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--controllers", nargs="+", choices=sorted(CONTROLLERS),
                        default=["random", "evolution", "ppo"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--max-samples", type=int, default=10000)
    parser.add_argument("--target", choices=("random", "spinenet-49"), default="random")
    parser.add_argument("--space", choices=sorted(SPACES), default="spinenet-49")
    parser.add_argument("--no-dedup", action="store_true",
                        help="count repeated architectures as samples too")
    parser.add_argument("--noise", type=float, default=0.0, metavar="SIGMA",
                        help="standard deviation of the Gaussian noise on every observed reward")
    parser.add_argument("--budget-curve", nargs="*", type=int, metavar="N",
                        help=f"print the best true reward at these budgets (default "
                             f"{' '.join(map(str, BUDGETS))}); the JSON always has them")
    parser.add_argument("--initial-mutants", type=int, default=0, metavar="N",
                        help="propose N distinct single mutants of the seed after it, as "
                             "nas search's controller.initial_mutants")
    parser.add_argument("--set", nargs="+", default=[], metavar="NAME.FIELD=VALUE",
                        help="controller settings, e.g. evolution.population_size=50")
    parser.add_argument("--out", help="write the JSON summary here")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.max_samples < 1:
        parser.error(f"--seeds and --max-samples must be >= 1, got {args.seeds}, {args.max_samples}")
    if args.initial_mutants < 0:
        parser.error(f"--initial-mutants must be >= 0, got {args.initial_mutants}")
    if not args.noise >= 0:
        parser.error(f"--noise must be >= 0, got {args.noise}")
    try:
        configs = controller_configs(args.set)
    except ValueError as err:
        parser.error(str(err))
    budgets = tuple(sorted(set(args.budget_curve or BUDGETS)))
    space = SPACES[args.space]
    report = {"config": {**vars(args), "reward": "similarity to the hidden target",
                         "initial_genomes": f"ResNet-50 seed and {args.initial_mutants} "
                                            "single mutants",
                         "controller_configs": {k: dataclasses.asdict(v)
                                                for k, v in configs.items()}},
              "controllers": {}}
    for name in args.controllers:
        runs = []
        for seed in range(args.seeds):
            runs.append(run_one(name, space, hidden_target(args.target, space, seed), seed,
                                args.max_samples, not args.no_dedup, args.noise,
                                configs.get(name), budgets, args.initial_mutants))
            r = runs[-1]
            print(f"{name} seed {seed}: best {r['best_reward']:.3f} at {r['best_at']}, "
                  f"to 0.8: {r['samples_to_0.8']}, to 1.0: {r['samples_to_1.0']}, "
                  f"{r['ms_per_sample']:.2f} ms/sample ({r['stop']})", flush=True)
        summary = summarize(runs)
        report["controllers"][name] = summary
        print(f"== {name}: to 0.8 {summary['samples_to_0.8']} ({summary['reached_0.8']}), "
              f"to 1.0 {summary['samples_to_1.0']} ({summary['reached_1.0']}), "
              f"{summary['ms_per_sample']:.2f} ms/sample", flush=True)
        if args.budget_curve is not None:
            print("   best true reward (median, min-max) at " + ", ".join(
                f"{c}: {s['median']:.3f} ({s['min']:.3f}-{s['max']:.3f})"
                for c, s in summary["best_reward_at"].items()), flush=True)
    text = json.dumps(report, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()

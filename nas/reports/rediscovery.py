"""The rediscovery report of a `nas rediscover` run: `rediscovery.md` with the ResNet-50 seed,
SpineNet-49, the top 3 found architectures and a control run's best (costs, search and retrained
rewards, decision distance to SpineNet-49, the traits in which SpineNet-49 differs from the seed,
level sequences, spec links), a longer schedule's rewards where one was run, their diagrams side
by side, the search's rewards with SpineNet-49's and the seed's as bands, how far the search
moved toward SpineNet-49 trial by trial, and what it cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from nas.config import SearchConfig, from_data
from nas.export import top_trials
from nas.ledger import DONE, Ledger
from nas.reports.search import (Reference, best_so_far, cost_lines, draw_architecture,
                                exported_files, finished_in_order, plot_rewards, reward_text,
                                save, spec_link, trial_axis)
from nas.retrain import RETRAIN_KEY
from nas.stack import genome_of, proxy_cost_fn
from search_space import (TRAITS, Genome, SearchSpace, canonical_hash, decisions, decode, distance,
                          get_space, num_decisions, parse_spec_text, similarity, traits)

META_KEY = "rediscovery"  # ledger meta of a rediscover run: {"retrain_seeds": N, "retrain": ...}
# Ledger meta of a retraining on a longer schedule: {"overrides": [...], "retrain": ...}.
LONG_KEY = "rediscovery_long"
REPORT_FILE = "rediscovery.md"
DIAGRAMS_PNG = "rediscovery_architectures.png"
REWARD_PNG = "rediscovery_reward.png"
DISTANCE_PNG = "rediscovery_distance.png"
DISTANCE_EVERY = 10  # trials between the rows of the distance table
Control = Tuple[str, Ledger]  # another run's name and ledger, e.g. a random-search control
SEED, TARGET = "resnet50-seed", "spinenet-49"
TOP = 3
CONTROLLER_CHECK = "a controller check, not a training result"


def architectures(ledger: Ledger, config: SearchConfig,
                  control: Optional[Control] = None) -> List[Dict[str, Any]]:
    """The seed, SpineNet-49, the top found networks and the control run's best: label, genome,
    spec, hash, costs of the proxy detector, the search's reward (None if it never trained it)
    and `model` (a built-in name, or None for found ones: their exported spec files stand for
    them)."""
    space = get_space(config.space)
    cost = proxy_cost_fn(space, config.proxy_config())
    searched = {t["spec_hash"]: t for t in ledger.trials([DONE]) if t["reward"] is not None}
    rows = []
    for label, name in (("ResNet-50 seed", SEED), ("SpineNet-49", TARGET)):
        genome = genome_of(name, space, name)
        spec = decode(genome, space)
        spec_hash = canonical_hash(spec)
        trial = searched.get(spec_hash)
        rows.append({"label": label, "model": name, "genome": genome, "spec": spec,
                     "spec_hash": spec_hash, **cost(genome), "trial_id": None,
                     "reward": trial["reward"] if trial else None})
    known = {row["spec_hash"]: row["label"] for row in rows}
    found = [(f"found #{rank}", trial) for rank, trial in enumerate(top_trials(ledger, TOP), 1)]
    if control is not None:
        found += [(f"{control[0]}'s best", trial) for trial in top_trials(control[1], 1)]
    for label, trial in found:
        same = known.setdefault(trial["spec_hash"], label)
        rows.append({"label": f"{label} ({trial['trial_id']}"
                              + (f" = {same})" if same != label else ")"), "model": None,
                     "genome": Genome.from_dict(trial["genome"]),
                     "spec": parse_spec_text(trial["spec"]), "spec_hash": trial["spec_hash"],
                     "params": trial["params"], "flops": trial["flops"],
                     "trial_id": trial["trial_id"], "reward": trial["reward"]})
    return rows


def reference_rewards(rows: List[Dict[str, Any]], config: SearchConfig,
                      retrained: Dict[str, Dict[str, Optional[float]]]) -> Dict[str, Reference]:
    """{label: (reward, spread)} of SpineNet-49 and the seed, measured as the search measures:
    the similarity itself, or the mean and standard deviation of the retrained proxy rewards
    where there are some, else the search's one reward."""
    seed, target = rows[0], rows[1]
    if config.objective.name == "similarity":
        space = get_space(config.space)
        return {"SpineNet-49": (1.0, 0.0),
                "ResNet-50 seed": (similarity(seed["genome"], target["genome"], space), 0.0)}
    lines = {}
    for row, label in ((target, "SpineNet-49"), (seed, "ResNet-50 seed")):
        mean, std, _ = _stats(retrained.get(row["spec_hash"], {}))
        if mean is not None:
            lines[label] = (mean, std)
        elif row["reward"] is not None:
            lines[label] = (row["reward"], 0.0)
    return lines


def retrained_references(ledger: Ledger) -> Dict[str, Reference]:
    """The seed's and SpineNet-49's references of a rediscovery run; {} for other runs."""
    record = ledger.meta(META_KEY)
    if record is None:
        return {}
    config = from_data(SearchConfig, ledger.meta("config"))
    return reference_rewards(architectures(ledger, config)[:2], config,
                             record.get(RETRAIN_KEY, {}))


def _stats(values: Dict[str, Optional[float]]):
    """(mean, standard deviation, "seed: value" list) of the successful values."""
    ok = [v for v in values.values() if v is not None]
    shown = ", ".join(f"{s}: {'failed' if v is None else f'{v:.4f}'}" for s, v in values.items())
    if not ok:
        return None, None, shown
    return float(np.mean(ok)), float(np.std(ok)), shown


def plot_diagrams(rows: List[Dict[str, Any]], path: Path) -> None:
    """The architectures' diagrams side by side, one panel each."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(4.2 * len(rows), 3.6), squeeze=False)
    legend = {}
    for ax, row in zip(axes[0], rows):
        draw_architecture(ax, row["spec"], row["label"])
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    axes[0][0].legend(legend.values(), legend.keys(), loc="upper left", fontsize=6)
    save(fig, path)


def distance_curve(trials: Sequence[Dict[str, Any]], target: Genome, space: SearchSpace,
                   population: int) -> List[Dict[str, Any]]:
    """Per finished trial (in result order): the decision distance to `target` of the best
    network so far (per group and in total), and the median total distance of the last
    `population` finished trials (evolution's population; a window as wide for others)."""
    totals = [distance(Genome.from_dict(t["genome"]), target, space)["total"] for t in trials]
    best, best_trial, out = None, None, []
    for n, (trial, running) in enumerate(zip(trials, best_so_far(trials)), start=1):
        if running is not None and running != best:
            best, best_trial = running, trial
        window = totals[max(0, n - population):n]
        out.append({"trial": n,
                    "best": None if best_trial is None else distance(
                        Genome.from_dict(best_trial["genome"]), target, space),
                    "median": float(np.median(window))})
    return out


def plot_distance(curve: List[Dict[str, Any]], seed_distance: int, path: Path) -> None:
    """The best-so-far's distance to SpineNet-49 (total and per group) and the population's
    median, against finished trials."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    xs = [p["trial"] for p in curve]
    for group, style in (("total", "-"), ("levels", ":"), ("parents", "--"), ("block_fns", "-.")):
        ax.step(xs, [p["best"][group] if p["best"] else None for p in curve], where="post",
                linestyle=style, color="C3" if group == "total" else None,
                label=f"best so far: {'types' if group == 'block_fns' else group}")
    ax.plot(xs, [p["median"] for p in curve], color="C0", label="population median: total")
    ax.axhline(seed_distance, color="grey", linestyle="--", lw=0.8, label="ResNet-50 seed")
    trial_axis(ax)
    ax.set_ylabel("decisions unlike SpineNet-49")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize=7)
    ax.grid(alpha=0.3)
    save(fig, path)


def write_rediscovery_report(folder: Path, ledger: Ledger,
                             control: Optional[Control] = None) -> Path:
    """Writes `rediscovery.md` and its plots into the run folder; returns the report's path.
    With a control run, its best network joins the tables."""
    config = from_data(SearchConfig, ledger.meta("config"))
    record = ledger.meta(META_KEY) or {}
    retrained = record.get(RETRAIN_KEY, {})
    rows = architectures(ledger, config, control)
    lines = reference_rewards(rows, config, retrained)
    trials = finished_in_order(ledger)
    plot_rewards(trials, folder / REWARD_PNG, lines)
    plot_diagrams(rows, folder / DIAGRAMS_PNG)
    space = get_space(config.space)
    curve = distance_curve(trials, rows[1]["genome"], space,
                           config.controller.evolution.population_size)
    plot_distance(curve, distance(rows[0]["genome"], rows[1]["genome"], space)["total"],
                  folder / DISTANCE_PNG)
    path = folder / REPORT_FILE
    text = _markdown(folder, ledger, config, record, rows, lines)
    text += _long_schedule(ledger.meta(LONG_KEY), rows) + _distance_section(curve)
    text += ["## Cost", "", *cost_lines(trials), ""]
    path.write_text("\n".join(text))
    return path


def _markdown(folder: Path, ledger: Ledger, config: SearchConfig, record: Dict[str, Any],
              rows: List[Dict[str, Any]], lines: Dict[str, Reference]) -> List[str]:
    space = get_space(config.space)
    target = rows[1]["genome"]
    similarity_run = config.objective.name == "similarity"
    counts = ledger.counts()
    text = [f"# Rediscovering SpineNet-49: {folder.name}", ""]
    if similarity_run:
        text += [f"**Objective `similarity`: {CONTROLLER_CHECK}.** Nothing was trained: each "
                 f"reward is the share of the {num_decisions(space)} decisions a network has in "
                 f"common with SpineNet-49.", ""]
    else:
        text += [f"Objective `{config.objective.name}` on the proxy preset "
                 f"`{config.proxy.preset}`" + (f" with {', '.join(config.proxy.set)}"
                                               if config.proxy.set else "")
                 + f", the search's seeds {list(config.proxy.seeds)}.", ""]
    text += [f"Space `{config.space}`, controller `{config.controller.name}` (seed "
             f"{config.controller.seed}), the ResNet-50 seed proposed first; {counts[DONE]} "
             f"trials done of a budget of {config.max_trials}. The search's own report: "
             f"[report.md](report.md).", "",
             "## Architectures", ""]
    seeds = record.get("retrain_seeds", 0)
    if similarity_run:
        text.append("No retraining: the similarity objective trains nothing.")
    elif seeds:
        text.append(f"Retrained with the search's proxy over seeds {list(range(seeds))}; a "
                    f"seed the search already trained a network with is the search's training.")
    else:
        text.append("TODO: not retrained (`--retrain-seeds 0`): the rewards are the search's.")
    text += ["", "| architecture | search reward | retrained: mean | spread (std) | every value "
             "| params | MFLOPs | distance to SpineNet-49: total (levels / parents / types) "
             "| specs |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    files = exported_files(folder)
    for row in rows:
        mean, std, shown = _stats(record.get(RETRAIN_KEY, {}).get(row["spec_hash"], {}))
        d = distance(row["genome"], target, space)
        parts = " / ".join(str(d[g]) for g in d if g != "total")
        links = " ".join(spec_link(name) for name in files.get(row["trial_id"], []))
        text.append(f"| {row['label']} | {reward_text(row['reward'])} | {reward_text(mean)} | "
                    f"{reward_text(std)} | "
                    f"{shown or '-'} | {row['params']:,} | {row['flops'] / 1e6:,.1f} | "
                    f"{d['total']} ({parts}) | {links or '-'} |")
    text += ["", "## Traits", "",
             "The counts in which SpineNet-49 differs from the seed: "
             + "; ".join(f"{k}: {v}" for k, v in TRAITS.items()) + ".", "",
             "| architecture | " + " | ".join(TRAITS) + " |",
             "| --- |" + " --- |" * len(TRAITS)]
    for row in rows:
        counts_of = traits(row["spec"])
        text.append(f"| {row['label']} | " + " | ".join(str(counts_of[k]) for k in TRAITS) + " |")
    text += ["", "## Level sequences", "",
             "The level of each searched block, in build order.", "",
             "| architecture | levels |", "| --- | --- |"]
    for row in rows:
        levels = decisions(row["genome"], space)["levels"]
        text.append(f"| {row['label']} | {' '.join(map(str, levels))} |")
    text += ["", "## Diagrams", "", f"![architectures side by side]({DIAGRAMS_PNG})", "",
             "## Reward per trial", "", f"![reward per trial with references]({REWARD_PNG})", ""]
    text += [f"Line {label}: {value:.4f}" + (f" (band: +-{spread:.4f}, the spread over seeds)."
                                              if spread else ".")
             for label, (value, spread) in lines.items()]
    if "SpineNet-49" not in lines:
        text.append("TODO: SpineNet-49's proxy reward was not measured in this run (retrain "
                    "with `--retrain-seeds N`), so the plot has no line for it.")
    return text + [""]


def _long_schedule(record: Optional[Dict[str, Any]], rows: List[Dict[str, Any]]) -> List[str]:
    """The table of a retraining on a longer schedule, where the ledger holds one."""
    if not record:
        return []
    text = ["## Longer schedule", "",
            f"Retrained with the search's proxy and {', '.join(record.get('overrides', []))}.", "",
            "| architecture | mean | spread (std) | every value |", "| --- | --- | --- | --- |"]
    for row in rows:
        values = record.get(RETRAIN_KEY, {}).get(row["spec_hash"])
        if values:
            mean, std, shown = _stats(values)
            text.append(f"| {row['label']} | {reward_text(mean)} | {reward_text(std)} | {shown} |")
    return text + [""]


def _distance_section(curve: List[Dict[str, Any]]) -> List[str]:
    """How far the search moved toward SpineNet-49, every `DISTANCE_EVERY` trials."""
    text = ["## Distance to SpineNet-49 per trial", "",
            f"![distance to SpineNet-49 per trial]({DISTANCE_PNG})", "",
            "Decisions unlike SpineNet-49's: of the best network so far (total, and levels / "
            "parents / types), and the median total over the population (the last finished "
            "trials, as many as evolution keeps).", "",
            "| finished trials | best so far: total (levels / parents / types) | population "
            "median |", "| --- | --- | --- |"]
    for point in curve:
        if point["trial"] % DISTANCE_EVERY and point is not curve[-1]:
            continue
        best = point["best"]
        shown = "-" if best is None else (f"{best['total']} ({best['levels']} / "
                                          f"{best['parents']} / {best['block_fns']})")
        text.append(f"| {point['trial']} | {shown} | {point['median']:g} |")
    return text + [""]


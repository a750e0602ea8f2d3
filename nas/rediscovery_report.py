"""The rediscovery report of a `nas rediscover` run: `rediscovery.md` with the ResNet-50 seed,
SpineNet-49 and the top 3 found architectures (costs, search and retrained rewards, decision
distance to SpineNet-49, level sequences, spec links), their diagrams side by side, and the
search's rewards with SpineNet-49's and the seed's as lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from nas.config import SearchConfig, from_data
from nas.export import top_trials
from nas.ledger import DONE, Ledger
from nas.report import (draw_architecture, exported_files, finished_in_order, plot_rewards, save,
                        spec_link)
from nas.retrain import RETRAIN_KEY
from nas.stack import genome_of, proxy_cost_fn
from search_space import (Genome, canonical_hash, decisions, decode, distance, get_space,
                          num_decisions, parse_spec_text, similarity)

META_KEY = "rediscovery"  # ledger meta of a rediscover run: {"retrain_seeds": N, "retrain": ...}
REPORT_FILE = "rediscovery.md"
DIAGRAMS_PNG = "rediscovery_architectures.png"
REWARD_PNG = "rediscovery_reward.png"
SEED, TARGET = "resnet50-seed", "spinenet-49"
TOP = 3
CONTROLLER_CHECK = "a controller check, not a training result"


def architectures(ledger: Ledger, config: SearchConfig) -> List[Dict[str, Any]]:
    """The seed, SpineNet-49 and the top found networks: label, genome, spec, hash, costs of
    the proxy detector, the search's reward (None if it never trained it) and `model` (a
    built-in name, or None for found ones: their exported spec files stand for them)."""
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
    for rank, trial in enumerate(top_trials(ledger, TOP), start=1):
        same = known.get(trial["spec_hash"])
        rows.append({"label": f"found #{rank} ({trial['trial_id']}"
                              + (f" = {same})" if same else ")"), "model": None,
                     "genome": Genome.from_dict(trial["genome"]),
                     "spec": parse_spec_text(trial["spec"]), "spec_hash": trial["spec_hash"],
                     "params": trial["params"], "flops": trial["flops"],
                     "trial_id": trial["trial_id"], "reward": trial["reward"]})
    return rows


def reference_rewards(rows: List[Dict[str, Any]], config: SearchConfig,
                      retrained: Dict[str, Dict[str, Optional[float]]]) -> Dict[str, float]:
    """{line label: reward} of SpineNet-49 and the seed, measured as the search measures: the
    similarity itself, or the mean retrained (else searched) proxy reward where there is one."""
    seed, target = rows[0], rows[1]
    if config.objective.name == "similarity":
        space = get_space(config.space)
        return {"SpineNet-49": 1.0,
                "ResNet-50 seed": similarity(seed["genome"], target["genome"], space)}
    lines = {}
    for row, label in ((target, "SpineNet-49"), (seed, "ResNet-50 seed")):
        mean = _stats(retrained.get(row["spec_hash"], {}))[0]
        value = mean if mean is not None else row["reward"]
        if value is not None:
            lines[label] = value
    return lines


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


def write_rediscovery_report(folder: Path, ledger: Ledger) -> Path:
    """Writes `rediscovery.md` and its plots into the run folder; returns the report's path."""
    config = from_data(SearchConfig, ledger.meta("config"))
    record = ledger.meta(META_KEY) or {}
    retrained = record.get(RETRAIN_KEY, {})
    rows = architectures(ledger, config)
    lines = reference_rewards(rows, config, retrained)
    plot_rewards(finished_in_order(ledger), folder / REWARD_PNG, lines)
    plot_diagrams(rows, folder / DIAGRAMS_PNG)
    path = folder / REPORT_FILE
    path.write_text(_markdown(folder, ledger, config, record, rows, lines))
    return path


def _markdown(folder: Path, ledger: Ledger, config: SearchConfig, record: Dict[str, Any],
              rows: List[Dict[str, Any]], lines: Dict[str, float]) -> str:
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
        text.append(f"| {row['label']} | {_num(row['reward'])} | {_num(mean)} | {_num(std)} | "
                    f"{shown or '-'} | {row['params']:,} | {row['flops'] / 1e6:,.1f} | "
                    f"{d['total']} ({parts}) | {links or '-'} |")
    text += ["", "## Level sequences", "",
             "The level of each searched block, in build order.", "",
             "| architecture | levels |", "| --- | --- |"]
    for row in rows:
        levels = decisions(row["genome"], space)["levels"]
        text.append(f"| {row['label']} | {' '.join(map(str, levels))} |")
    text += ["", "## Diagrams", "", f"![architectures side by side]({DIAGRAMS_PNG})", "",
             "## Reward per trial", "", f"![reward per trial with references]({REWARD_PNG})", ""]
    text += [f"Line {label}: {value:.4f}." for label, value in lines.items()]
    if "SpineNet-49" not in lines:
        text.append("TODO: SpineNet-49's proxy reward was not measured in this run (retrain "
                    "with `--retrain-seeds N`), so the plot has no line for it.")
    return "\n".join(text) + "\n"


def _num(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4f}"

"""A run's report: `report.md` with the top architectures, their metrics and spec links, and
three plots (reward per trial with the running best, FLOPs against reward with the Pareto
front, and a diagram of the best architecture)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nas import run_dir as layout  # noqa: E402
from nas.export import MANIFEST, top_trials  # noqa: E402
from nas.ledger import DONE, DUPLICATE, FAILED, INFEASIBLE, Ledger  # noqa: E402
from search_space import SpineNetSpec, parse_spec_text  # noqa: E402
from search_space.spec import STEM_LEVEL  # noqa: E402

REWARD_PNG = "reward.png"
PARETO_PNG = "flops_reward.png"
BEST_PNG = "best_architecture.png"


def finished_in_order(ledger: Ledger) -> List[Dict[str, Any]]:
    """Done and failed trials in the order their results arrived."""
    finished = ledger.trials([DONE, FAILED])
    return sorted(finished, key=lambda t: t["result_seq"])


def plot_rewards(trials: Sequence[Dict[str, Any]], path: Path,
                 lines: Optional[Dict[str, float]] = None) -> None:
    """Reward of each finished trial in result order, the running best, and optional
    horizontal reference lines (label -> reward)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = range(1, len(trials) + 1)
    rewards = [t["reward"] for t in trials]
    done = [(x, r) for x, r in zip(xs, rewards) if r is not None]
    if done:
        ax.scatter(*zip(*done), s=18, label="trial reward")
        best, running = None, []
        for x, r in done:
            best = r if best is None else max(best, r)
            running.append((x, best))
        ax.step(*zip(*running), where="post", color="C3", label="best so far")
    failed = [x for x, r in zip(xs, rewards) if r is None]
    if failed:
        ax.scatter(failed, [0.0] * len(failed), marker="x", color="grey", label="failed")
    for index, (label, value) in enumerate((lines or {}).items()):
        ax.axhline(value, linestyle="--", color=f"C{index + 4}", label=label)
    ax.set_xlabel("finished trial")
    ax.set_ylabel("reward")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    save(fig, path)


def pareto_front(points: Sequence[tuple]) -> List[tuple]:
    """The (flops, reward, ...) points no other point beats with fewer FLOPs and more reward."""
    front, best = [], None
    for point in sorted(points, key=lambda p: (p[0], -p[1])):
        if best is None or point[1] > best:
            front.append(point)
            best = point[1]
    return front


def plot_pareto(trials: Sequence[Dict[str, Any]], path: Path) -> None:
    points = [(t["flops"], t["reward"], t["trial_id"]) for t in trials
              if t["reward"] is not None and t["flops"] is not None]
    fig, ax = plt.subplots(figsize=(7, 4))
    if points:
        ax.scatter([p[0] / 1e6 for p in points], [p[1] for p in points], s=18, label="trials")
        front = pareto_front(points)
        ax.step([p[0] / 1e6 for p in front], [p[1] for p in front], where="post", color="C3",
                label="Pareto front")
        for flops, reward, trial_id in front:
            ax.annotate(trial_id, (flops / 1e6, reward), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.set_xlabel("proxy detector MFLOPs (multiply-adds)")
    ax.set_ylabel("reward")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    save(fig, path)


def draw_architecture(ax, spec: SpineNetSpec, title: str) -> None:
    """Blocks in build order (x) against level (y); an edge from each parent feature; output
    blocks filled and named by their level."""
    levels = [STEM_LEVEL] * spec.num_stem_blocks + [b.level for b in spec.blocks]
    for k, block in enumerate(spec.blocks):
        x = spec.feature_index(k)
        for parent in block.input_offsets:
            ax.plot([parent, x], [levels[parent], block.level], color="0.6", lw=0.8, zorder=1)
    ax.scatter(range(spec.num_stem_blocks), levels[:spec.num_stem_blocks], marker="s", s=40,
               color="0.4", zorder=2, label="stem")
    for fn, marker in (("bottleneck", "o"), ("residual", "D")):
        for is_output, face in ((False, "white"), (True, "C3")):
            picked = [(spec.feature_index(k), b.level) for k, b in enumerate(spec.blocks)
                      if b.block_fn == fn and b.is_output == is_output]
            if picked:
                ax.scatter(*zip(*picked), marker=marker, s=50, facecolor=face, edgecolor="k",
                           zorder=3, label=f"{fn}{' (output)' if is_output else ''}")
    for k, block in enumerate(spec.blocks):
        if block.is_output:
            ax.annotate(f"P{block.level}", (spec.feature_index(k), block.level), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("feature (build order)")
    ax.set_ylabel("level")
    ax.set_yticks(range(min(levels), max(levels) + 1))
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)


def plot_architecture(spec: SpineNetSpec, title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 3.5))
    draw_architecture(ax, spec, title)
    ax.legend(loc="upper left", fontsize=7, ncol=2)
    save(fig, path)


def save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(folder: Path, ledger: Ledger, top: int = 5) -> Path:
    """Writes the plots and `report.md` into the run folder; returns the report's path."""
    trials = finished_in_order(ledger)
    plot_rewards(trials, folder / REWARD_PNG)
    plot_pareto(trials, folder / PARETO_PNG)
    best = top_trials(ledger, top)
    if best:
        plot_architecture(parse_spec_text(best[0]["spec"]),
                          f"best: {best[0]['trial_id']} (reward {best[0]['reward']:.4f})",
                          folder / BEST_PNG)
    path = folder / layout.REPORT_FILE
    path.write_text(_markdown(folder, ledger, best))
    return path


def _markdown(folder: Path, ledger: Ledger, best: List[Dict[str, Any]]) -> str:
    config, counts = ledger.meta("config"), ledger.counts()
    files = exported_files(folder)
    lines = [f"# Search {folder.name}", "",
             f"Space `{config['space']}`, controller `{config['controller']['name']}` (seed "
             f"{config['controller']['seed']}), proxy preset `{config['proxy']['preset']}`"
             + (f" with {', '.join(config['proxy']['set'])}" if config['proxy']['set'] else "")
             + f", seeds {config['proxy']['seeds']}, objective `{config['objective']['name']}`.",
             f"Code version {ledger.meta('code_version')}.", "",
             f"Trials: {counts[DONE]} done and {counts[FAILED]} failed of {config['max_trials']}; "
             f"{counts[DUPLICATE]} duplicate and {counts[INFEASIBLE]} infeasible proposals "
             f"answered without training.", "",
             "## Top architectures", "",
             "| rank | trial | reward | AP50 | params | MFLOPs | spec hash | specs |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for rank, trial in enumerate(best, start=1):
        links = " ".join(spec_link(name) for name in files.get(trial["trial_id"], []))
        ap50 = trial["metrics"].get("ap50")
        lines.append(f"| {rank} | {trial['trial_id']} | {trial['reward']:.4f} | "
                     f"{'-' if ap50 is None else f'{ap50:.4f}'} | {trial['params']:,} | "
                     f"{trial['flops'] / 1e6:,.1f} | `{trial['spec_hash'][:12]}` | "
                     f"{links or '-'} |")
    lines += ["", "## Reward per trial", "", f"![reward per trial]({REWARD_PNG})", "",
              "## FLOPs and reward", "", f"![FLOPs against reward]({PARETO_PNG})", ""]
    if best:
        lines += ["## Best architecture", "", f"![best architecture]({BEST_PNG})", ""]
    return "\n".join(lines)


def spec_link(name: str) -> str:
    label = "Model Garden" if name.endswith(".model_garden.py") else "JSON"
    return f"[{label}]({layout.SPECS_DIR}/{name})"


def exported_files(folder: Path) -> Dict[str, List[str]]:
    manifest = folder / layout.SPECS_DIR / MANIFEST
    if not manifest.exists():
        return {}
    return {entry["trial_id"]: entry["files"] for entry in json.loads(manifest.read_text())}

"""A run's report: `report.md` with the top architectures, their metrics and spec links, and
three plots (reward per trial with the running best and the first initial genome's reward,
FLOPs against reward with the Pareto front, and a diagram of the best architecture)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from nas import run_dir as layout  # noqa: E402
from nas.export import MANIFEST, top_trials  # noqa: E402
from nas.ledger import DONE, DUPLICATE, FAILED, INFEASIBLE, Ledger  # noqa: E402
from search_space import SpineNetSpec, parse_spec_text  # noqa: E402
from search_space.spec import STEM_LEVEL  # noqa: E402

REWARD_PNG = "reward.png"
# A reference reward drawn across a plot: (value, spread); a band of +-spread where it is > 0.
Reference = Tuple[float, float]
PARETO_PNG = "flops_reward.png"
BEST_PNG = "best_architecture.png"


def finished_in_order(ledger: Ledger) -> List[Dict[str, Any]]:
    """Done and failed trials in the order their results arrived."""
    finished = ledger.trials([DONE, FAILED])
    return sorted(finished, key=lambda t: t["result_seq"])


def best_so_far(trials: Sequence[Dict[str, Any]]) -> List[Optional[float]]:
    """The best reward among the first n trials, for every n (None until one succeeded)."""
    best, out = None, []
    for trial in trials:
        if trial["reward"] is not None:
            best = trial["reward"] if best is None else max(best, trial["reward"])
        out.append(best)
    return out


def first_initial(ledger: Ledger) -> Dict[str, Reference]:
    """{label: (reward, 0)} of the first initial genome as the search trained it (the run's
    first proposal), or {} where the run had none or its training gave no reward."""
    name = (ledger.meta("config")["controller"]["initial"] or [None])[0]
    proposals = ledger.trials()
    if name is None or not proposals or proposals[0]["reward"] is None:
        return {}
    first = proposals[0]
    return {f"{name} ({first['trial_id']}, first initial genome)": (first["reward"], 0.0)}


def draw_references(ax, references: Dict[str, Reference], first_color: int = 4) -> None:
    """Each reference as a dashed line, with its spread as a band."""
    for index, (label, (value, spread)) in enumerate(references.items()):
        color = f"C{index + first_color}"
        ax.axhline(value, linestyle="--", color=color, label=label)
        if spread > 0:
            ax.axhspan(value - spread, value + spread, color=color, alpha=0.12)


def trial_axis(ax, label: str = "finished trial") -> None:
    """An x axis of trials, counted in whole numbers."""
    ax.set_xlabel(label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_rewards(trials: Sequence[Dict[str, Any]], path: Path,
                 references: Optional[Dict[str, Reference]] = None) -> None:
    """Reward of each finished trial in result order, the running best, and reference rewards
    across the plot."""
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = range(1, len(trials) + 1)
    rewards = [t["reward"] for t in trials]
    done = [(x, r) for x, r in zip(xs, rewards) if r is not None]
    if done:
        ax.scatter(*zip(*done), s=18, label="trial reward")
        running = [(x, b) for x, b in zip(xs, best_so_far(trials)) if b is not None]
        ax.step(*zip(*running), where="post", color="C3", label="best so far")
    failed = [x for x, r in zip(xs, rewards) if r is None]
    if failed:
        ax.scatter(failed, [0.0] * len(failed), marker="x", color="grey", label="failed")
    draw_references(ax, references or {})
    trial_axis(ax)
    ax.set_ylabel("reward")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    save(fig, path)


def chunks(trials: Sequence[Dict[str, Any]], gap_s: float = 600.0) -> List[Dict[str, Any]]:
    """The stretches a run ran in, told apart by pauses of over `gap_s` between one trial's end
    and the next one's start: start, end (epoch seconds) and trials finished in each."""
    timed = sorted((t for t in trials
                    if t["started_at"] is not None and t["finished_at"] is not None),
                   key=lambda t: t["started_at"])
    out: List[Dict[str, Any]] = []
    for trial in timed:
        if not out or trial["started_at"] - out[-1]["end"] > gap_s:
            out.append({"start": trial["started_at"], "end": trial["finished_at"], "trials": 0})
        out[-1]["end"] = max(out[-1]["end"], trial["finished_at"])
        out[-1]["trials"] += 1
    return out


def cost_lines(trials: Sequence[Dict[str, Any]]) -> List[str]:
    """Markdown of what a run's finished trials cost: its stretches, trials an hour of wall
    time, and the share of trial time spent compiling."""
    spans = chunks(trials)
    if not spans:
        return ["No finished trial has timings yet."]
    lines = ["| stretch | start (UTC) | end (UTC) | trials finished | wall hours |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {k} | {_utc(c['start'])} | {_utc(c['end'])} | {c['trials']} | "
              f"{(c['end'] - c['start']) / 3600:.2f} |" for k, c in enumerate(spans, start=1)]
    hours = sum(c["end"] - c["start"] for c in spans) / 3600
    parts = {key: sum(t[key] or 0.0 for t in trials) for key in ("compile_s", "train_s", "eval_s")}
    total, count = sum(parts.values()), sum(c["trials"] for c in spans)
    lines += ["", f"{count} trials in {hours:.2f} wall hours: {count / hours:.1f} "
              f"trials an hour. Trial time {total / 3600:.2f} hours: compile "
              f"{parts['compile_s'] / 3600:.2f} ({parts['compile_s'] / max(total, 1e-9):.1%}), "
              f"train {parts['train_s'] / 3600:.2f}, evaluation {parts['eval_s'] / 3600:.2f}; "
              f"the rest of the wall time is the driver's and the workers' start-up."]
    return lines


def reward_text(value: Optional[float]) -> str:
    """A reward in a report's table: four decimals, "-" where there is none."""
    return "-" if value is None else f"{value:.4f}"


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(seconds))


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
    baseline = first_initial(ledger)
    plot_rewards(trials, folder / REWARD_PNG, baseline)
    plot_pareto(trials, folder / PARETO_PNG)
    best = top_trials(ledger, top)
    if best:
        plot_architecture(parse_spec_text(best[0]["spec"]),
                          f"best: {best[0]['trial_id']} (reward {best[0]['reward']:.4f})",
                          folder / BEST_PNG)
    path = folder / layout.REPORT_FILE
    path.write_text(_markdown(folder, ledger, best, baseline))
    return path


def _markdown(folder: Path, ledger: Ledger, best: List[Dict[str, Any]],
              baseline: Dict[str, Reference]) -> str:
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
    lines += ["", "## Reward per trial", "", f"![reward per trial]({REWARD_PNG})", ""]
    lines += [f"Line: {label}, reward {value:.4f}." for label, (value, _) in baseline.items()]
    lines += ["", "## FLOPs and reward", "", f"![FLOPs against reward]({PARETO_PNG})", ""]
    if best:
        lines += ["## Best architecture", "", f"![best architecture]({BEST_PNG})", ""]
    lines += ["## Cost", "", *cost_lines(finished_in_order(ledger)), ""]
    return "\n".join(lines)


def spec_link(name: str) -> str:
    label = "Model Garden" if name.endswith(".model_garden.py") else "JSON"
    return f"[{label}]({layout.SPECS_DIR}/{name})"


def exported_files(folder: Path) -> Dict[str, List[str]]:
    manifest = folder / layout.SPECS_DIR / MANIFEST
    if not manifest.exists():
        return {}
    return {entry["trial_id"]: entry["files"] for entry in json.loads(manifest.read_text())}

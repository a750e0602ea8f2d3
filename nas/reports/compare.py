"""Two runs side by side (`nas report NAME --compare OTHER`): their best-so-far rewards on the
same axes, with the seed's and SpineNet-49's retrained rewards as bands where either run is a
rediscovery, and tables of both at every budget (the best so far, and the median trial so far:
where each run spends its budget); e.g. a search against its random control."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from nas.ledger import Ledger
from nas.reports.search import (Reference, best_so_far, draw_references, finished_in_order,
                                 reward_text, save, trial_axis)

EVERY = 10  # trials between the table's rows
FROM = 30  # the budget from which the summary asks whether one run stayed ahead


def comparison_files(other: str) -> Dict[str, str]:
    return {"md": f"compare_{other}.md", "png": f"compare_{other}.png"}


def check_comparable(name: str, config: Dict[str, Any], other: str,
                     other_config: Dict[str, Any]) -> None:
    """Refuses two runs whose rewards do not measure the same thing: another space, objective
    or proxy (preset, overrides and seeds)."""
    for key in ("space", "objective", "proxy"):
        mine, theirs = config[key], other_config[key]
        if key == "objective":
            mine, theirs = mine["name"], theirs["name"]
        if mine != theirs:
            raise ValueError(f"--compare: {name!r} searched {key} {mine!r} and {other!r} "
                             f"{key} {theirs!r}; their rewards are not comparable")


def write_comparison(folder: Path, ledger: Ledger, other: str, other_ledger: Ledger,
                     references: Dict[str, Reference]) -> Path:
    """Writes `compare_OTHER.md` and its plot into `folder`; returns the Markdown's path. The
    caller has checked the two runs with `check_comparable` before writing anything."""
    trials = {folder.name: finished_in_order(ledger), other: finished_in_order(other_ledger)}
    curves = {run: best_so_far(finished) for run, finished in trials.items()}
    medians = {run: median_so_far(finished) for run, finished in trials.items()}
    files = comparison_files(other)
    _plot(curves, references, folder / files["png"])
    path = folder / files["md"]
    path.write_text("\n".join(_markdown(folder.name, ledger, other, other_ledger, curves,
                                        medians, references, files["png"])) + "\n")
    return path


def _plot(curves: Dict[str, List[Optional[float]]], references: Dict[str, Reference],
          path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for index, (name, curve) in enumerate(curves.items()):
        points = [(n, b) for n, b in enumerate(curve, start=1) if b is not None]
        if points:
            ax.step(*zip(*points), where="post", color=f"C{index}", label=f"{name}: best so far")
    draw_references(ax, references, first_color=len(curves) + 2)
    trial_axis(ax)
    ax.set_ylabel("best reward so far")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    save(fig, path)


def _markdown(name: str, ledger: Ledger, other: str, other_ledger: Ledger,
              curves: Dict[str, List[Optional[float]]], medians: Dict[str, List[Optional[float]]],
              references: Dict[str, Reference], png: str) -> List[str]:
    configs = {name: ledger.meta("config"), other: other_ledger.meta("config")}
    text = [f"# {name} against {other}", "",
            f"Best reward so far against finished trials, on the same axes. Space "
            f"`{configs[name]['space']}`, objective `{configs[name]['objective']['name']}`.", "",
            "| run | controller | proxy | code version | finished trials |",
            "| --- | --- | --- | --- | --- |"]
    for run, config in configs.items():
        proxy = config["proxy"]["preset"] + "".join(f", {s}" for s in config["proxy"]["set"])
        version = (ledger if run == name else other_ledger).meta("code_version")
        text.append(f"| {run} | {config['controller']['name']} | {proxy} | {version} | "
                    f"{len(curves[run])} |")
    if configs[name]["proxy"] != configs[other]["proxy"]:
        text += ["", "The runs trained on different proxies: their rewards are measured "
                     "differently."]
    text += ["", f"![best so far of both runs]({png})", ""]
    text += [f"{label}: {value:.4f}" + (f" +- {spread:.4f} (the band: its spread over seeds)."
                                         if spread else ".")
             for label, (value, spread) in references.items()]
    text += ["", "## Best reward so far", "",
             f"| finished trials | {name} | {other} | difference |", "| --- | --- | --- | --- |"]
    for n, mine, theirs in budget_rows(curves[name], curves[other]):
        difference = "-" if mine is None or theirs is None else f"{mine - theirs:+.4f}"
        text.append(f"| {n} | {reward_text(mine)} | {reward_text(theirs)} | {difference} |")
    shared = min(len(curve) for curve in curves.values())
    if shared >= FROM:
        text += ["", f"{name} ahead of {other} at every budget from {FROM} to {shared} trials: "
                 + ahead_verdict(curves[name], curves[other], FROM)]
    text += ["", "## Median reward so far", "",
             "Of the trials finished so far, failed ones not counted: where each run spends its "
             "budget.", "", f"| finished trials | {name} | {other} |", "| --- | --- | --- |"]
    for n, mine, theirs in budget_rows(medians[name], medians[other]):
        text.append(f"| {n} | {reward_text(mine)} | {reward_text(theirs)} |")
    return text


def median_so_far(trials: Sequence[Dict[str, Any]]) -> List[Optional[float]]:
    """The median reward of the successful trials among the first n, for every n (None until
    one succeeded)."""
    rewards, out = [], []
    for trial in trials:
        if trial["reward"] is not None:
            rewards.append(trial["reward"])
        out.append(statistics.median(rewards) if rewards else None)
    return out


def budget_rows(mine: List[Optional[float]], theirs: List[Optional[float]],
                every: int = EVERY) -> List[Tuple[int, Optional[float], Optional[float]]]:
    """(trials, each run's curve after that many: its best or median so far) every `every`
    trials and at each run's last trial."""
    budgets = set(range(every, max(len(mine), len(theirs)) + 1, every))
    budgets |= {len(curve) for curve in (mine, theirs) if curve}
    return [(n, _at(mine, n), _at(theirs, n)) for n in sorted(budgets)]


def not_ahead(mine: List[Optional[float]], theirs: List[Optional[float]],
              start: int) -> List[int]:
    """The budgets from `start` on, while both runs last, at which `mine`'s best so far is not
    above `theirs`'."""
    return [n for n in range(start, min(len(mine), len(theirs)) + 1)
            if not (_at(mine, n) or 0.0) > (_at(theirs, n) or 0.0)]


def ahead_verdict(mine: List[Optional[float]], theirs: List[Optional[float]], start: int) -> str:
    """"yes." if `mine` is ahead at every budget from `start` while both last, else where and
    by how much it is not."""
    behind = not_ahead(mine, theirs, start)
    if not behind:
        return "yes."
    gap = max((_at(theirs, n) or 0.0) - (_at(mine, n) or 0.0) for n in behind)
    budgets = min(len(mine), len(theirs)) - start + 1
    return (f"no: level or behind at {len(behind)} of {budgets} budgets, first at {behind[0]}, "
            f"by up to {gap:.4f}.")


def _at(curve: List[Optional[float]], n: int) -> Optional[float]:
    """The curve's value after `n` trials; None past the run's end."""
    return curve[n - 1] if n <= len(curve) else None


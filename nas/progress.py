"""What a running search shows: a live panel (trials finished of the budget, running, failed,
best reward and its spec hash, elapsed, time left) over one line per finished trial; with
`quiet`, or when the output is not a terminal, the lines alone."""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

from rich.console import Console
from rich.live import Live
from rich.table import Table

from nas.ledger import DONE, DUPLICATE, FAILED, INFEASIBLE


def format_seconds(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class Progress:
    """Told of every trial event by the search (`handle`); renders them."""

    def __init__(self, name: str, max_trials: int, counts: Dict[str, int],
                 best: Optional[Dict[str, Any]] = None, quiet: bool = False,
                 console: Optional[Console] = None):
        self.name, self.max_trials = name, max_trials
        self.finished = counts.get(DONE, 0) + counts.get(FAILED, 0)
        self.failed = counts.get(FAILED, 0)
        self.skipped = {INFEASIBLE: counts.get(INFEASIBLE, 0), DUPLICATE: counts.get(DUPLICATE, 0)}
        self.best = best
        self.running: Dict[str, float] = {}
        self.started = time.monotonic()
        self.finished_here = 0
        self.console = console or Console(highlight=False)
        self.live = None if quiet or not self.console.is_terminal else Live(
            self, console=self.console, refresh_per_second=1, transient=True)

    def __enter__(self) -> "Progress":
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.stop()

    def time_left(self) -> Optional[float]:
        if not self.finished_here:
            return None
        rate = self.finished_here / (time.monotonic() - self.started)
        return max(0, self.max_trials - self.finished) / rate

    def handle(self, kind: str, trial_id: str, data: Dict[str, Any]) -> None:
        if kind == "started":
            self.running[trial_id] = time.monotonic()
        elif kind in (INFEASIBLE, DUPLICATE):
            self.skipped[kind] += 1
        elif kind in (DONE, FAILED):
            began = self.running.pop(trial_id, None)
            self.finished += 1
            self.finished_here += 1
            self.failed += kind == FAILED
            reward = data.get("reward")
            if reward is not None and (self.best is None or reward > self.best["reward"]):
                self.best = {"trial_id": trial_id, "reward": reward,
                             "spec_hash": data.get("spec_hash")}
            line = self.line(trial_id, kind, reward, data.get("error"), began)
            if self.live is not None:
                self.live.console.print(line, soft_wrap=True)
            else:
                print(line, flush=True)

    def line(self, trial_id: str, kind: str, reward, error, began) -> str:
        took = format_seconds(time.monotonic() - began) if began is not None else "-"
        outcome = f"reward {reward:.4f}" if kind == DONE else f"FAILED: {_first_line(error)}"
        best = f"best {self.best['reward']:.4f} ({self.best['trial_id']})" if self.best else ""
        return (f"[{self.finished}/{self.max_trials}] {trial_id} {outcome} in {took}; {best}; "
                f"elapsed {format_seconds(time.monotonic() - self.started)}, "
                f"left ~{format_seconds(self.time_left())}")

    def __rich__(self) -> Table:
        table = Table(title=f"search {self.name}", show_header=False, box=None)
        best = "-" if self.best is None else (f"{self.best['reward']:.4f}  {self.best['trial_id']}"
                                              f"  hash {str(self.best['spec_hash'])[:12]}")
        rows = [("finished", f"{self.finished} / {self.max_trials}"),
                ("running", ", ".join(sorted(self.running)) or "-"),
                ("failed", str(self.failed)),
                ("skipped", f"{self.skipped[DUPLICATE]} duplicate, "
                            f"{self.skipped[INFEASIBLE]} infeasible"),
                ("best reward", best),
                ("elapsed", format_seconds(time.monotonic() - self.started)),
                ("time left", format_seconds(self.time_left()))]
        for key, value in rows:
            table.add_row(key, value)
        return table


def _first_line(text: Optional[str]) -> str:
    return (text or "unknown error").strip().splitlines()[0][:200]

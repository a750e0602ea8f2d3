"""Ray Tune's side of a search: a Searcher that asks the controller stack for trials, and a
Callback that reports every trial event to the `SearchState` and keeps Tune's own memory flat."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ray.tune import Callback, Stopper
from ray.tune.experiment import Trial
from ray.tune.progress_reporter import TrialProgressCallback
from ray.tune.result import AUTO_RESULT_KEYS, DONE, TRIAL_ID
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search import Searcher

from nas.search_state import SearchState

METRIC = "reward"
# What Tune adds to every reported result (its config holds the whole spec): not kept per epoch.
TUNE_KEYS = frozenset((*AUTO_RESULT_KEYS, DONE, TRIAL_ID))


class _HoldsState:
    """Tune pickles its search algorithm and callbacks for its own resume, which this driver
    does not use (the ledger is the run's record); the live state stays out of the pickle."""

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "state"}

    def __setstate__(self, values):
        self.__dict__.update(values, state=None)


class ControllerSearcher(_HoldsState, Searcher):
    """Tune's search algorithm: each suggestion is the next trial of the `SearchState`, up to
    `limit` trials in this Tune experiment."""

    def __init__(self, state: SearchState, limit: int):
        super().__init__()
        self.state, self.limit, self.handed_out = state, limit, 0

    def suggest(self, trial_id: str):
        payload = None if self.handed_out >= self.limit else self.state.next_payload()
        if payload is None:
            return Searcher.FINISHED
        self.handed_out += 1
        return payload

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        """Results reach the state through `LedgerCallback`, which sees the error text."""

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the ledger holds the controller's state."""

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore: a resumed search rebuilds its controller from the ledger."""


class LedgerCallback(_HoldsState, Callback):
    """Trial starts, epochs, results and errors into the `SearchState`; finished trials are
    dropped from Tune's trial list."""

    def __init__(self, state: SearchState):
        self.state = state

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.state.started(trial.config["trial_id"])

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if not result.get("final"):
            self.state.epoch(trial.config["trial_id"],
                             {k: v for k, v in result.items() if k not in TUNE_KEYS})

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.state.completed(trial.config["trial_id"], trial.last_result or {})

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.state.errored(trial.config["trial_id"], _error_text(trial))

    def on_step_end(self, iteration, trials, **info) -> None:
        trials[:] = [t for t in trials if t.status not in (Trial.TERMINATED, Trial.ERROR)]


class EpochHalving(ASHAScheduler):
    """ASHA that decides only at epochs before a trial's last (`max_t`): plain ASHA stops a
    trial at `max_t`, which can come before the trial's final result reaches Tune, and the
    trial would be recorded with its last epoch's metrics as if stopped early."""

    def on_trial_result(self, tune_controller, trial, result) -> str:
        if result.get("final") or result.get(self._time_attr, 0) >= self._max_t:
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)


class NoTrialProgress(TrialProgressCallback):
    """Stands in for Tune's trial progress printer, which prints nothing at verbose 0 yet keeps
    every trial it saw; our own display is `nas.progress`."""

    def on_trial_result(self, *args, **kwargs) -> None:
        pass

    def on_trial_error(self, *args, **kwargs) -> None:
        pass

    def on_trial_complete(self, *args, **kwargs) -> None:
        pass


class StopWhen(Stopper):
    """Ends the Tune experiment, stopping its running trials, once `requested()` is true."""

    def __init__(self, requested):
        self.requested = requested

    def __call__(self, trial_id, result) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.requested()


def _error_text(trial) -> str:
    path: Optional[str] = trial.error_file
    if path and Path(path).exists():
        return Path(path).read_text()[-4000:]
    return "the trial's worker failed more often than the configured retries"

"""Running a search on Ray Tune: the run folder and its lock, Ray started locally (loopback only,
no dashboard, its logs in the run folder) or joined with `--address`, the Tuner, and the
export and report once the budget is spent."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import shutil
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Dict, List, Optional

import psutil

from nas import run_dir as layout
from nas.config import SearchConfig, dump_config
from nas.console import stdout_to
from nas.export import best_trial, export_top
from nas.ledger import DONE, LEDGER_FILE, Ledger
from nas.preload import release_free_memory
from nas.progress import Progress
from nas.run_dir import RunLock, code_version
from nas.search_state import SearchState
from nas.tensorboard import TensorBoardWriter

RAY_PROCESSES_FILE = "ray_processes.json"
INTERRUPTED = 130
# Tune's memory per experiment stays under about 4 MiB; a new experiment restarts the trial
# workers (seconds, against minutes of trials). bench/results/search.md, driver overhead.
TRIALS_PER_EXPERIMENT = 50


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How this driver runs the search (not part of the search's config)."""

    name: str
    results_dir: Path
    resume: bool = False
    address: Optional[str] = None
    quiet: bool = False
    allow_version_change: bool = False


def run_search(config: Optional[SearchConfig], options: RunOptions,
               overrides: Optional[Dict] = None) -> int:
    """Starts (`config`) or resumes (`options.resume`, with `overrides` of max_trials and
    concurrency) the run `results_dir/name`; returns the exit status. A new run that stops
    before its first trial leaves no folder behind."""
    folder = options.results_dir / options.name
    if options.resume and not (folder / LEDGER_FILE).exists():
        raise ValueError(f"--resume: no search {options.name!r} in {str(options.results_dir)!r}")
    if not options.resume:
        if folder.exists():
            raise ValueError(f"--name: {str(folder)!r} exists; resume it with --resume or "
                             f"choose another name")
        folder.mkdir(parents=True)
    lock, started = RunLock(folder), False
    # Opened before the lock file is written: a damaged ledger refuses, changing nothing.
    ledger = Ledger(folder / LEDGER_FILE) if options.resume else None
    try:
        lock.acquire()
        if options.resume:
            config = _resumed_config(ledger, overrides or {}, options.allow_version_change)
        else:
            ledger = _new_ledger(folder, config)
        status = _run(folder, config, ledger, options)
        started = True
        return status
    finally:
        started = started or (ledger is not None and ledger.meta("seq", 0) > 0)
        if ledger is not None:
            ledger.close()
        lock.release()
        if not options.resume and not started:
            shutil.rmtree(folder)


def _new_ledger(folder: Path, config: SearchConfig) -> Ledger:
    ledger = Ledger(folder / LEDGER_FILE, create=True)
    proxy = dataclasses.asdict(config.proxy_config())
    ledger.set_meta({"config": config.to_dict(), "code_version": code_version(proxy),
                     "created_at": time.time(), "name": folder.name})
    (folder / layout.CONFIG_FILE).write_text(dump_config(config))
    return ledger


def _resumed_config(ledger: Ledger, overrides: Dict, allow_version_change: bool) -> SearchConfig:
    from nas.config import from_data

    config = from_data(SearchConfig, ledger.meta("config"))
    config = dataclasses.replace(config, **overrides)
    recorded = ledger.meta("code_version")
    current = code_version(dataclasses.asdict(config.proxy_config()))
    if recorded != current:
        if not allow_version_change:
            raise ValueError(f"--resume: the run was written by code version {recorded} and "
                             f"this is {current}; rewards would not be comparable. Pass "
                             f"--allow-version-change to continue anyway")
        ledger.set_meta({"code_version": current,
                         "version_changes": [*ledger.meta("version_changes", []),
                                             {"from": recorded, "to": current, "at": time.time()}]})
    ledger.set_meta({"config": config.to_dict()})
    (ledger.path.parent / layout.CONFIG_FILE).write_text(dump_config(config))
    return config


def _run(folder: Path, config: SearchConfig, ledger: Ledger, options: RunOptions) -> int:
    import jax

    jax.config.update("jax_platforms", "cpu")  # the driver's PPO policy: never the trials' GPU
    from proxy_tasks.trial import prepare_data

    handler = log_handler(folder)
    route_logs(handler)
    if config.objective.name != "similarity":
        # Built once here, not by trials side by side; TFDS's messages go to the log.
        with open(handler.baseFilename, "a") as log, stdout_to(log):
            prepare_data(config.proxy_config())
    best = best_trial(ledger)
    progress = Progress(options.name, config.max_trials, ledger.counts(), best, options.quiet)
    board = TensorBoardWriter(folder / layout.TENSORBOARD_DIR)

    def events(kind, trial_id, data):
        progress.handle(kind, trial_id, data)
        board.handle(kind, trial_id, data)

    state = SearchState(config, ledger, events)
    interrupted = False
    if not state.complete:
        try:
            _start_ray(folder, options.address, config, handler)
            with progress:
                interrupted = not _tune(folder, config, state)
        finally:
            state.checkpoint()
            board.close()
            _stop_ray()
    if interrupted:
        print(f"search {options.name}: stopped with {state.finished} of {config.max_trials} "
              f"trials finished; continue with: nas search --name {options.name} --resume"
              + (f" --results-dir {options.results_dir}" if options.results_dir != Path("results")
                 else ""))
        return INTERRUPTED
    if state.stopped_reason is not None:
        print(f"search {options.name}: ended after {state.finished} of {config.max_trials} "
              f"trials: {state.stopped_reason}")
    from nas.reports.search import write_report

    counts = ledger.counts()
    exported = export_top(folder, ledger, top=3)
    report = write_report(folder, ledger)
    best = best_trial(ledger)
    print(f"search {options.name}: {counts[DONE]} trials done, {counts['failed']} failed, "
          f"{counts['duplicate']} duplicates and {counts['infeasible']} infeasible skipped")
    if best is not None:
        print(f"best reward {best['reward']:.4f} ({best['trial_id']}, spec hash "
              f"{best['spec_hash'][:12]}); specs in {exported}; report {report}")
    return 0


def _tune(folder: Path, config: SearchConfig, state: SearchState) -> bool:
    """Runs the trials through Tune experiments of at most `TRIALS_PER_EXPERIMENT` trials each
    until the budget is spent; returns False when Ctrl-C stopped it. Tune keeps every trial of
    an experiment in memory (about 80 kB each); a new experiment starts empty, and what the
    last one held goes back to the OS. Ray's `log_once` memo, which keeps a string for each
    part of a trial's state its JSON encoder falls back on, is emptied with it."""
    from ray.util.debug import reset_log_once

    from nas.tune_bridge import ControllerSearcher, StopWhen

    session = time.strftime("%Y%m%d-%H%M%S")
    with Interrupt() as interrupt:
        for part in itertools.count():
            if state.complete or interrupt.requested:
                break
            searcher = ControllerSearcher(state, TRIALS_PER_EXPERIMENT)
            _tuner(folder, config, state, searcher, f"session-{session}-{part}",
                   StopWhen(lambda: interrupt.requested)).fit()
            reset_log_once()
            release_free_memory()
            state.requeue_unfinished()
            if searcher.handed_out == 0:  # the controller has nothing more to propose
                break
    return not interrupt.requested


def _tuner(folder: Path, config: SearchConfig, state: SearchState, searcher, name: str, stopper):
    """One Tune experiment: our trainable with the config's resources, ASHA if asked for."""
    from ray import tune

    from nas.trainable import run_trial, trial_resources
    from nas.tune_bridge import METRIC, EpochHalving, LedgerCallback, NoTrialProgress

    scheduler = None
    if config.early_stopping.enabled:
        scheduler = EpochHalving(time_attr="training_iteration", metric=METRIC, mode="max",
                                 max_t=config.proxy_config().epochs,
                                 grace_period=config.early_stopping.grace_epochs,
                                 reduction_factor=config.early_stopping.reduction_factor)
    return tune.Tuner(
        tune.with_resources(run_trial, trial_resources(dataclasses.asdict(config.resources))),
        tune_config=tune.TuneConfig(
            search_alg=searcher, scheduler=scheduler, num_samples=-1,
            max_concurrent_trials=config.concurrency,
            # A trial over several hosts needs a fresh process to start jax.distributed in.
            reuse_actors=config.resources.hosts == 1,
            trial_name_creator=_trial_id, trial_dirname_creator=_trial_id),
        run_config=tune.RunConfig(
            name=name, storage_path=str((folder / layout.TUNE_DIR).absolute()), verbose=0,
            stop=stopper, failure_config=tune.FailureConfig(max_failures=config.retries),
            callbacks=[LedgerCallback(state), NoTrialProgress()], log_to_file=True))


class Interrupt:
    """Ctrl-C during a search: the first stops it (running trials run again on resume), a
    second aborts at once."""

    def __init__(self):
        self.requested = False

    def __enter__(self) -> "Interrupt":
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("stopping the search; running trials will run again when it is resumed "
              "(Ctrl-C again to abort at once)", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self.previous)


def _trial_id(trial) -> str:
    return trial.config["trial_id"]


# -- Ray ---------------------------------------------------------------------------------------

def log_handler(folder: Path) -> logging.Handler:
    """The run's log file, `logs/driver.log`."""
    logs = folder / layout.LOGS_DIR
    logs.mkdir(exist_ok=True)
    handler = logging.FileHandler(logs / "driver.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    return handler


def route_logs(handler: logging.Handler) -> None:
    """Ray's, Tune's, JAX's and TFDS's Python logs and warnings go to `handler`, not the
    console (again after ray.init, which clears the handlers of its logger)."""
    for name in ("ray", "py.warnings", "jax", "absl"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO)
    logging.captureWarnings(True)
    warnings.simplefilter("default")


def _start_ray(folder: Path, address: Optional[str], config: SearchConfig,
               handler: logging.Handler) -> None:
    """Joins `address`, or starts Ray on this machine listening on loopback only, after ending
    what a killed driver of this run left behind."""
    # Tune's console output: the old, quiet reporter; no per-trial result files.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(config.concurrency))
    # Epoch reports and failures carry no reward; the ledger, not Tune, judges results.
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    if not address:
        # Read when Ray is imported: with cluster mode off, Ray's node address is the loopback
        # one, and every Ray server binds that address only.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        os.environ.setdefault("RAY_AUTH_MODE", "token")  # token auth, without a console notice
        # Trials get the driver's preloaded allocator (nas.preload's tcmalloc), which the
        # raylet would otherwise strip from its workers.
        if "LD_PRELOAD" in os.environ:
            os.environ.setdefault("RAY_LD_PRELOAD_ON_WORKERS", "1")
    import ray

    common = dict(log_to_driver=False, configure_logging=False)
    if address:
        # `ray start --head` turns token authentication on where it finds a token
        # (`RAY_AUTH_TOKEN`, the file `RAY_AUTH_TOKEN_PATH` names, `~/.ray/auth_token`), but
        # ray.init asks for it with an address only when RAY_AUTH_MODE says so: ask as
        # ray.init does for a local cluster it finds (RAY_AUTH_MODE, set, still decides).
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available)

        route_logs(handler)  # its notice too (importing Ray gave Ray's logger the console)
        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
        ray.init(address=address, **common)
    else:
        _end_orphans(folder / RAY_PROCESSES_FILE)
        ray.init(include_dashboard=False, **common)
        _record_processes(folder / RAY_PROCESSES_FILE)
        _check_fits(config, ray.cluster_resources())
    route_logs(handler)


def _check_fits(config: SearchConfig, available: Dict[str, float]) -> None:
    """A trial asking for more than this machine has would wait forever: refuse it."""
    wanted = {"CPU": config.resources.cpus * config.resources.hosts,
              "GPU": config.resources.gpus * config.resources.hosts,
              "TPU": config.resources.tpus * config.resources.hosts}
    for name, amount in wanted.items():
        if amount > available.get(name, 0):
            raise ValueError(f"resources: a trial needs {amount:g} {name} but this machine has "
                             f"{available.get(name, 0):g}; lower resources or join a cluster "
                             f"with --address")


def _stop_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def _record_processes(path: Path) -> None:
    """Ray's processes started by this driver, so a resume after SIGKILL can end the ones
    that outlive it (Ray's agents ignore SIGTERM and survive their raylet)."""
    children = psutil.Process().children(recursive=True)
    path.write_text(json.dumps([{"pid": p.pid, "created": p.create_time()} for p in children]))


def _end_orphans(path: Path) -> None:
    if not path.exists():
        return
    ended: List[int] = []
    for entry in json.loads(path.read_text()):
        try:
            process = psutil.Process(entry["pid"])
            if process.create_time() == entry["created"]:
                process.send_signal(signal.SIGKILL)
                ended.append(entry["pid"])
        except psutil.Error:
            continue
    if ended:
        logging.getLogger("ray").info("ended %d processes left by a killed driver: %s",
                                      len(ended), ended)
    path.unlink()

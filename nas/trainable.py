"""What a Ray worker runs for one search trial: the proxy training of one architecture, once per
configured seed, reported to Tune epoch by epoch and then as one final result.

A trial that raises or diverges reports `status: failed` with its error text (it is not
retried: it would fail again); only a worker that dies makes Tune retry the trial. A trial
over several hosts runs one process per host, each with `jax.distributed` initialized across
them, on the bundles of the trial's placement group.
"""

from __future__ import annotations

import socket
import time
import traceback
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from nas import runtime
from nas.trial_messages import FAILED, FINAL, MEAN_KEYS, OK
from proxy_tasks.presets import ProxyConfig
from search_space import Genome, get_space, parse_spec_text, similarity


def check_similarity(payload: Mapping[str, Any]) -> Dict[str, Any]:
    """The share of decisions the payload's genome has in common with its target."""
    time.sleep(payload["delay_s"])
    value = similarity(Genome.from_dict(payload["genome"]), Genome.from_dict(payload["target"]),
                       get_space(payload["space"]))
    return {FINAL: True, "status": OK, "reward": value, "similarity": value}


def train_seeds(payload: Mapping[str, Any],
                report: Callable[[Dict[str, Any]], None] = lambda metrics: None) -> Dict[str, Any]:
    """Trains the payload's architecture once per seed in this process; returns the final
    result (`status`, `reward`, the metrics averaged over seeds, `per_seed`, or `error`)."""
    from proxy_tasks.trial import run_proxy_trial

    spec = parse_spec_text(payload["spec"])
    proxy = ProxyConfig(**payload["proxy"])
    runs: List[Dict[str, Any]] = []
    try:
        for seed in payload["seeds"]:
            runs.append(run_proxy_trial(spec, proxy, seed=seed,
                                        report=lambda m, s=seed: report({**m, "seed": s})))
    except Exception as err:  # the trial fails; the search goes on
        return {FINAL: True, "status": FAILED, "error": _error_text(err)}
    return summarize(runs)


def summarize(runs: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """One trial's result from its per-seed runs: means of the rewards and timings."""
    first = runs[0]
    result: Dict[str, Any] = {FINAL: True, "status": OK, "params": first["params"],
                              "flops": first["flops"], "spec_hash": first["spec_hash"]}
    for key in MEAN_KEYS:
        if key in first:
            result[key] = float(np.mean([run[key] for run in runs]))
    if len(runs) > 1:
        result["reward_std"] = float(np.std([run["reward"] for run in runs]))
    result["per_seed"] = [{k: v for k, v in run.items() if k not in ("params", "flops",
                                                                    "spec_hash")}
                          for run in runs]
    return result


def _error_text(err: BaseException) -> str:
    lines = traceback.format_exception(type(err), err, err.__traceback__)
    return f"{type(err).__name__}: {err}\n" + "".join(lines[-12:])


def run_trial(payload: Dict[str, Any]) -> None:
    """The Tune function trainable."""
    from ray import tune

    resources = payload["resources"]
    if payload["kind"] == "similarity":
        result = check_similarity(payload)
    elif resources.get("hosts", 1) > 1:
        result = _run_on_hosts(payload)
    else:
        runtime.enable_compile_cache()
        runtime.size_cpu_threads(resources.get("cpus", 1))
        result = train_seeds(payload, report=tune.report)
    tune.report(result)


# -- several hosts ---------------------------------------------------------------------------

def train_as_host(coordinator: str, num_processes: int, process_id: int,
                  payload: Mapping[str, Any],
                  report: Callable[[Dict[str, Any]], None] = lambda metrics: None):
    """One process of a multi-host trial: joins `jax.distributed` before anything else starts
    JAX in this process, sizes its CPU threads like a single-host trial's, then trains."""
    from proxy_tasks.mesh import initialize_distributed

    runtime.enable_compile_cache()
    try:
        initialize_distributed(coordinator, num_processes, process_id)
    except Exception as err:
        return {FINAL: True, "status": FAILED, "error": _error_text(err)}
    runtime.size_cpu_threads(payload["resources"]["cpus"])
    return train_seeds(payload, report)


def _coordinator_address() -> str:
    """host:port on this node for `jax.distributed`'s coordinator."""
    import ray

    with socket.socket() as s:
        s.bind(("", 0))
        port = s.getsockname()[1]
    return f"{ray.util.get_node_ip_address()}:{port}"


def _run_on_hosts(payload: Dict[str, Any]) -> Dict[str, Any]:
    """Process 0 is this (fresh) trial process, on the placement group's first bundle; one Ray
    actor per further bundle runs the other processes. Process 0's epochs and result are the
    trial's: every process computes the same ones."""
    import ray
    from ray import tune
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    resources = payload["resources"]
    group = ray.util.get_current_placement_group()
    coordinator = _coordinator_address()
    host = ray.remote(max_calls=1)(train_as_host)  # its worker exits after: JAX starts fresh
    others = []
    for index in range(1, resources["hosts"]):
        strategy = PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=index)
        others.append(host.options(
            scheduling_strategy=strategy, num_cpus=resources["cpus"],
            num_gpus=resources["gpus"], resources=_tpu(resources), max_retries=0,
        ).remote(coordinator, resources["hosts"], index, payload))
    try:
        result = train_as_host(coordinator, resources["hosts"], 0, payload, tune.report)
        ray.get(others)
    finally:
        for ref in others:
            ray.cancel(ref, force=True)
    return result


def _tpu(resources: Mapping[str, Any]) -> Optional[Dict[str, float]]:
    return {"TPU": resources["tpus"]} if resources.get("tpus") else None


def trial_resources(resources: Mapping[str, Any]):
    """Tune's resource request for one trial: one bundle per host, placed by `placement`."""
    from ray import tune

    bundle = {"CPU": resources["cpus"], "GPU": resources["gpus"], **(_tpu(resources) or {})}
    bundle = {k: v for k, v in bundle.items() if v}
    return tune.PlacementGroupFactory([bundle] * resources["hosts"],
                                      strategy=resources["placement"])

"""The messages between the driver and a trial's Ray worker: the payload the driver sends (plain
data), and the result keys the worker reports back, its `status` in the controllers' feedback
vocabulary."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Sequence

from controllers.interface import FAILED, OK
from proxy_tasks.presets import ProxyConfig
from search_space import Genome, SpineNetSpec, to_json

__all__ = ["FAILED", "FINAL", "MEAN_KEYS", "OK", "similarity_payload", "trial_payload"]

FINAL = "final"  # the key that marks a trial's last message (the others report an epoch)
# Per-seed metrics averaged into the trial's metrics.
MEAN_KEYS = ("reward", "ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "accuracy",
             "compile_s", "train_s", "eval_s", "train_images_per_s")


def trial_payload(trial_id: str, spec: SpineNetSpec, proxy: ProxyConfig, seeds: Sequence[int],
                  resources: Mapping[str, Any]) -> Dict[str, Any]:
    """The Tune config of one proxy training: plain data only."""
    return {"kind": "proxy", "trial_id": trial_id, "spec": to_json(spec),
            "proxy": dataclasses.asdict(proxy), "seeds": list(seeds),
            "resources": dict(resources)}


def similarity_payload(trial_id: str, genome: Genome, target: Genome, space: str,
                       delay_s: float, resources: Mapping[str, Any]) -> Dict[str, Any]:
    """The Tune config of one similarity check (no training)."""
    return {"kind": "similarity", "trial_id": trial_id, "genome": genome.to_dict(),
            "target": target.to_dict(), "space": space, "delay_s": delay_s,
            "resources": dict(resources)}

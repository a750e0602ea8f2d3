"""Dedup: a genome whose canonical spec was already evaluated gets the recorded result without
training, and one whose spec is being trained waits for that result instead of a second run."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional

from controllers.interface import FAILED, OK, check_feedback
from controllers.middleware import Middleware
from search_space.genome import Genome, decode
from search_space.hashing import canonical_hash

HashFn = Callable[[Genome], str]


class Dedup(Middleware):
    """propose() returns only genomes that need training. A proposal whose hash has a result is
    answered internally with it (counted in `cache_hits`); one whose hash is in training is
    parked and answered when that trial reports (counted in `parked`). Failures are cached too
    unless `retry_failed`. Each duplicate is passed to `on_duplicate` (its id, genome, hash and
    whether it was answered from the cache or parked). After `max_attempts` duplicates in a
    row, propose() raises: the inner controller has nothing new to offer."""

    kind = "dedup"

    def __init__(self, inner, hash_fn: Optional[HashFn] = None, retry_failed: bool = False,
                 max_attempts: int = 10000,
                 on_duplicate: Optional[Callable[[Dict[str, Any]], None]] = None):
        super().__init__(inner)
        if max_attempts < 1:
            raise ValueError(f"max_attempts: must be >= 1, got {max_attempts!r}")
        self.hash_fn = hash_fn or (lambda genome: canonical_hash(decode(genome, inner.space)))
        self.retry_failed = retry_failed
        self.max_attempts = max_attempts
        self.on_duplicate = on_duplicate
        self.results: Dict[str, Dict[str, Any]] = {}   # hash -> {reward, metrics, status}
        self.training: Dict[str, str] = {}             # outstanding proposal id -> hash
        self.parked: Dict[str, List[str]] = {}         # hash in training -> waiting ids
        self.cache_hits = 0
        self.num_parked = 0

    def propose(self):
        in_training = set(self.training.values())
        for _ in range(self.max_attempts):
            proposal = self.inner.propose()
            key = self.hash_fn(proposal.genome)
            if key not in self.results and key not in in_training:
                self.training[proposal.id] = key
                return proposal
            cached = key in self.results
            if self.on_duplicate is not None:
                self.on_duplicate({"id": proposal.id, "genome": proposal.genome, "hash": key,
                                   "cached": cached})
            if cached:
                self.cache_hits += 1
                result = self.results[key]
                self.inner.feedback(proposal.id, result["reward"], result["metrics"],
                                    result["status"])
            else:
                self.num_parked += 1
                self.parked.setdefault(key, []).append(proposal.id)
        raise RuntimeError(f"dedup: the inner controller proposed {self.max_attempts} already "
                           f"evaluated or running architectures in a row")

    def feedback(self, proposal_id: str, reward: Optional[float] = None,
                 metrics: Optional[Mapping[str, Any]] = None, status: str = OK) -> None:
        if proposal_id not in self.training:
            raise KeyError(f"feedback.proposal_id: {proposal_id!r} is not a proposal in training")
        check_feedback(reward, status)
        key = self.training.pop(proposal_id)
        result = {"reward": reward, "metrics": dict(metrics or {}), "status": status}
        if status != FAILED or not self.retry_failed:
            self.results[key] = result
        self.inner.feedback(proposal_id, reward, result["metrics"], status)
        for waiting in self.parked.pop(key, []):
            self.inner.feedback(waiting, reward, result["metrics"], status)

    def _state(self):
        return {"results": {k: dict(v) for k, v in self.results.items()},
                "training": dict(self.training),
                "parked": {k: list(v) for k, v in self.parked.items()},
                "cache_hits": self.cache_hits, "num_parked": self.num_parked}

    def _load_state(self, state) -> None:
        self.results = {k: dict(v) for k, v in state["results"].items()}
        self.training = dict(state["training"])
        self.parked = {k: list(v) for k, v in state["parked"].items()}
        self.cache_hits = int(state["cache_hits"])
        self.num_parked = int(state["num_parked"])

"""The driver's bookkeeping, free of Ray: the controller stack and the ledger kept in step.

Every proposal, start, epoch and result goes to the ledger in one transaction; the controller's
state is checkpointed into the same transactions every `checkpoint_every_s`. A new
`SearchState` on an existing ledger continues exactly: it loads the latest checkpoint, replays
the records after it, and hands out the trials that were in flight again (same trial ids)
before any new proposal.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Any, Callable, Dict, Mapping, Optional

from controllers.interface import FAILED as FEEDBACK_FAILED, OK
from nas import trial_messages
from nas.config import SearchConfig
from nas.ledger import DONE, DUPLICATE, FAILED, IN_FLIGHT, INFEASIBLE, Ledger
from nas.stack import build_stack, proxy_cost_fn, similarity_target
from search_space import Genome, canonical_hash, decode, get_space, parse_spec_text, to_json

# The final result's keys kept as a trial's metrics (Tune adds its own to every result).
RESULT_KEYS = (*trial_messages.MEAN_KEYS, "reward_std", "per_seed", "params", "flops", "spec_hash",
               "stopped_early", "epoch", "similarity")


class SearchState:
    """Proposals, results and resume for one run; `events(kind, trial_id, data)` is told of
    each change (for the progress display and TensorBoard)."""

    def __init__(self, config: SearchConfig, ledger: Ledger,
                 events: Callable[[str, str, Dict], None] = lambda kind, trial_id, data: None,
                 checkpoint_every_s: float = 10.0):
        self.config, self.ledger, self.events = config, ledger, events
        self.space = get_space(config.space)
        self.proxy = config.proxy_config()
        self.cost_fn = proxy_cost_fn(self.space, self.proxy)
        self.stack = build_stack(config, self.space, self.proxy, self._on_infeasible,
                                 self._on_duplicate)
        self.target = similarity_target(config, self.space)
        self.checkpoint_every_s = checkpoint_every_s
        self.attempts: Dict[str, int] = {}
        self.stopped_reason: Optional[str] = None
        self._restore()
        self.rerun = collections.deque(row["trial_id"] for row in ledger.trials(IN_FLIGHT))
        self.in_flight = set(self.rerun)
        counts = ledger.counts()
        self.finished = counts[DONE] + counts[FAILED]
        self._last_checkpoint = time.monotonic()

    # -- resume ------------------------------------------------------------------------------
    def _restore(self) -> None:
        """The controller as the ledger left it; raises naming the first record it does not
        reproduce (a ledger written by another controller version, say)."""
        events, self.events = self.events, lambda kind, trial_id, data: None
        try:
            checkpoint = self.ledger.latest_state()
            after = 0
            if checkpoint is not None:
                after, state = checkpoint
                self.stack.load_state_dict(state)
            self.stack.replay(self.ledger.history(after))
        finally:
            self.events = events

    # -- the middlewares' skipped proposals --------------------------------------------------
    def _skipped(self, proposal_id, genome, status, note, metrics=None) -> None:
        spec = decode(genome, self.space)
        self.ledger.add_skipped(proposal_id, genome, canonical_hash(spec), to_json(spec), status,
                                note, metrics)
        self.events(status, proposal_id, {"note": note})

    def _on_infeasible(self, record: Dict[str, Any]) -> None:
        self._skipped(record["id"], Genome.from_dict(record["genome"]), INFEASIBLE,
                      "; ".join(record["violations"]), record["cost"])

    def _on_duplicate(self, record: Dict[str, Any]) -> None:
        how = "answered from the result of" if record["cached"] else "waits for"
        self._skipped(record["id"], record["genome"], DUPLICATE,
                      f"same network as an earlier trial ({how} hash {record['hash']})")

    # -- proposals ---------------------------------------------------------------------------
    @property
    def budget_left(self) -> int:
        return self.config.max_trials - self.finished - len(self.in_flight)

    def next_payload(self) -> Optional[Dict[str, Any]]:
        """The Tune config of the next trial to run, or None when the budget is spent."""
        if self.rerun:
            row = self.ledger.trial(self.rerun.popleft())
            return self._payload(row["trial_id"], Genome.from_dict(row["genome"]),
                                 parse_spec_text(row["spec"]))
        if self.budget_left <= 0 or self.stopped_reason is not None:
            return None
        try:
            proposal = self.stack.propose()
        except RuntimeError as err:  # the controller has nothing new left to offer
            self.stopped_reason = str(err)
            self.ledger.set_meta({"stopped_reason": self.stopped_reason})
            return None
        spec = decode(proposal.genome, self.space)
        self.ledger.add_proposal(proposal, canonical_hash(spec), to_json(spec),
                                 self.cost_fn(proposal.genome))
        self._maybe_checkpoint()
        self.in_flight.add(proposal.id)
        self.events("proposed", proposal.id, {})
        return self._payload(proposal.id, proposal.genome, spec)

    def _payload(self, trial_id: str, genome: Genome, spec) -> Dict[str, Any]:
        resources = dataclasses.asdict(self.config.resources)
        if self.target is not None:
            return trial_messages.similarity_payload(trial_id, genome, self.target, self.space.name,
                                                self.config.objective.delay_s, resources)
        return trial_messages.trial_payload(trial_id, spec, self.proxy, self.config.proxy.seeds,
                                       resources)

    # -- trial events ------------------------------------------------------------------------
    def started(self, trial_id: str) -> None:
        self.attempts[trial_id] = self.ledger.mark_running(trial_id)
        self.events("started", trial_id, {"attempt": self.attempts[trial_id]})

    def epoch(self, trial_id: str, metrics: Mapping[str, Any]) -> None:
        attempt = self.attempts.get(trial_id, 1)
        self.ledger.add_epoch(trial_id, attempt, int(metrics.get("seed", 0)),
                              int(metrics.get("epoch", 0)), metrics)
        self.events("epoch", trial_id, dict(metrics))

    def completed(self, trial_id: str, result: Mapping[str, Any]) -> None:
        """A trial's last result: its final one, or the last epoch of an early-stopped trial."""
        if result.get(trial_messages.FINAL):
            if result["status"] == trial_messages.OK:
                self._finish(trial_id, DONE, result["reward"], result)
            else:
                self._finish(trial_id, FAILED, None, {}, result.get("error"))
        elif "reward" in result:
            self._finish(trial_id, DONE, result["reward"], dict(result, stopped_early=True))
        else:
            self._finish(trial_id, FAILED, None, {}, "stopped before its first evaluation")

    def errored(self, trial_id: str, error: str) -> None:
        """The trial's worker died more often than the retries allow."""
        self._finish(trial_id, FAILED, None, {}, error)

    def _finish(self, trial_id: str, status: str, reward, result: Mapping[str, Any],
                error: Optional[str] = None) -> None:
        metrics = {k: result[k] for k in RESULT_KEYS if k in result}
        feedback = OK if status == DONE else FEEDBACK_FAILED
        self.stack.feedback(trial_id, reward, metrics, feedback)
        state = self._take_checkpoint()
        self.ledger.finish(trial_id, status, reward, metrics, error, state=state)
        self.in_flight.discard(trial_id)
        self.finished += 1
        self.events(status, trial_id, {"reward": reward, "error": error, **metrics})

    def requeue_unfinished(self) -> None:
        """Hands out again the trials Tune ended without a result (an interrupted experiment)."""
        pending = set(self.rerun)
        self.rerun.extend(sorted(self.in_flight - pending, key=self._proposal_order))

    def _proposal_order(self, trial_id: str) -> int:
        return self.ledger.trial(trial_id)["seq"]

    # -- controller checkpoints --------------------------------------------------------------
    def _take_checkpoint(self) -> Optional[Dict[str, Any]]:
        if time.monotonic() - self._last_checkpoint < self.checkpoint_every_s:
            return None
        self._last_checkpoint = time.monotonic()
        return self.stack.state_dict()

    def _maybe_checkpoint(self) -> None:
        state = self._take_checkpoint()
        if state is not None:
            self.ledger.save_state(state)

    def checkpoint(self) -> None:
        self.ledger.save_state(self.stack.state_dict())
        self._last_checkpoint = time.monotonic()

    @property
    def complete(self) -> bool:
        return self.finished >= self.config.max_trials


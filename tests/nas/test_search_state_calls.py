"""The driver's calls into SearchState one by one: the events it tells, the notes of skipped
proposals, epochs, crashed trials, requeued and re-run trials, checkpoints and the end of
proposals; cheap runs of a few trials."""

import dataclasses
import json

import pytest

from controllers import Dedup
from controllers.interface import FAILED as FEEDBACK_FAILED
from nas.ledger import DONE, DUPLICATE, FAILED, INFEASIBLE, Ledger
from nas import search_state
from nas.search_state import SearchState
from tests.nas.test_search_state import FINAL, config, run

OK_RESULT = {FINAL: True, "status": "ok", "reward": 0.5, "ap": 0.5}


def state_of(tmp_path, cfg, events=None):
    ledger = Ledger(tmp_path / "l.sqlite", create=True)
    ledger.set_meta({"config": cfg.to_dict()})
    if events is None:
        return SearchState(cfg, ledger)
    return SearchState(cfg, ledger, lambda kind, trial_id, data: events.append((kind, trial_id,
                                                                                 data)))


def test_events_tell_each_change_and_epochs_are_recorded(tmp_path):
    """A proposal, its start, an epoch (seed and epoch read from it), its result; a second trial
    whose worker crashes twice; an epoch reported before any start is the first attempt's."""
    seen = []
    state = state_of(tmp_path, config("random", max_trials=3), seen)
    first = state.next_payload()["trial_id"]
    state.started(first)
    state.epoch(first, {"epoch": 2, "seed": 1, "train_loss": 0.75})
    state.completed(first, OK_RESULT)
    second = state.next_payload()["trial_id"]
    state.started(second)
    state.started(second)
    state.epoch(second, {"train_loss": 1.5})
    state.errored(second, "worker died")
    third = state.next_payload()["trial_id"]
    state.epoch(third, {"epoch": 1})
    assert seen == [("proposed", first, {}), ("started", first, {"attempt": 1}),
                    ("epoch", first, {"epoch": 2, "seed": 1, "train_loss": 0.75}),
                    (DONE, first, {"reward": 0.5, "error": None, "ap": 0.5}),
                    ("proposed", second, {}), ("started", second, {"attempt": 1}),
                    ("started", second, {"attempt": 2}), ("epoch", second, {"train_loss": 1.5}),
                    (FAILED, second, {"reward": None, "error": "worker died"}),
                    ("proposed", third, {}), ("epoch", third, {"epoch": 1})]
    epochs = [(e["trial_id"], e["attempt"], e["seed"], e["epoch"]) for e in state.ledger.epochs()]
    assert epochs == [(first, 1, 1, 2), (second, 2, 0, 0), (third, 1, 0, 1)]
    crashed = state.ledger.trial(second)
    assert (crashed["status"], crashed["error"], crashed["reward"]) == (FAILED, "worker died", None)
    assert state.finished == 2 and state.stack.inner.inner.num_results[FEEDBACK_FAILED] == 1


def test_skipped_proposals_are_told_and_noted(tmp_path):
    """SpineNet-49 three times among the initial genomes: the second waits for the first, the
    third (after the first's result) is answered from it; then a genome over both limits is
    noted with both, and as only one rejection is allowed the controller has nothing left."""
    seen = []
    cfg = config("random", **{"controller.initial": "[spinenet-49, spinenet-49, resnet50-seed, "
                                                    "spinenet-49]",
                              "controller.initial_mutants": 0})
    state = state_of(tmp_path, cfg, seen)
    first = state.next_payload()["trial_id"]
    assert state.next_payload()["trial_id"] == "random-2"  # random-1 waits for random-0
    state.completed(first, OK_RESULT)
    assert state.next_payload()["trial_id"] == "random-4"  # random-3 answered from random-0
    constraints = state.stack.inner
    constraints.limits.update(flops=1, params=1)
    constraints.max_attempts = 1
    assert state.next_payload() is None
    assert state.stopped_reason.startswith("constraints: 1 proposals in a row broke the limits")
    seed_hash = state.ledger.trial(first)["spec_hash"]
    duplicates = state.ledger.trials([DUPLICATE])
    assert [(d["trial_id"], d["note"]) for d in duplicates] == [
        ("random-1", f"same network as an earlier trial (waits for hash {seed_hash})"),
        ("random-3", f"same network as an earlier trial (answered from the result of hash "
                     f"{seed_hash})")]
    infeasible = state.ledger.trials([INFEASIBLE])
    assert [t["trial_id"] for t in infeasible] == ["random-5"]
    assert [v.split(" ")[0] for v in infeasible[0]["note"].split("; ")] == ["flops", "params"]
    assert [(kind, trial_id, data) for kind, trial_id, data in seen
            if kind in (DUPLICATE, INFEASIBLE)] == [(t["status"], t["trial_id"], {"note": t["note"]})
                                                    for t in duplicates + infeasible]


def test_resume_replays_only_what_follows_the_checkpoint(tmp_path, monkeypatch):
    """With a checkpoint at every result, a resumed search replays nothing; `checkpoint()`
    saves the controller's state as it is, and the next one is due only after the interval."""
    cfg = config("evolution", max_trials=4)
    ledger, state, _ = run(tmp_path / "l.sqlite", cfg, checkpoint_every_s=0.0)
    replayed = []
    original = Dedup.replay
    monkeypatch.setattr(Dedup, "replay", lambda self, records: (replayed.append(list(records)),
                                                                 original(self, records)))
    resumed = SearchState(config("evolution", max_trials=5), ledger, checkpoint_every_s=1e9)
    assert replayed == [[]]
    assert resumed.stack.state_dict() == state.stack.state_dict()
    resumed.stack.inner.inner.num_proposed += 1  # a change no record explains
    resumed.checkpoint()
    saved = json.loads(json.dumps(resumed.stack.state_dict()))
    assert resumed.next_payload() is not None
    assert ledger.latest_state()[1] == saved


def test_resume_counts_failed_trials_as_finished(tmp_path):
    cfg = config("evolution", max_trials=6)
    ledger, _, _ = run(tmp_path / "l.sqlite", cfg, stops=(12,), fail={"evolution-1"})
    counts = ledger.counts()
    assert (counts[DONE], counts[FAILED]) == (5, 1)


def test_requeued_trials_come_back_in_proposal_order_with_their_payload(tmp_path):
    """Trials Tune ended without a result (random-9 and random-10 of eleven) are handed out
    again, in proposal order, with the payload they had (the proxy's spec included), before any
    new proposal; requeueing twice adds none twice."""
    state = state_of(tmp_path, config("random", **{"objective.name": "ap", "max_trials": 12}))
    payloads = [state.next_payload() for _ in range(11)]
    for payload in payloads[:9]:
        state.completed(payload["trial_id"], OK_RESULT)
    state.requeue_unfinished()
    state.requeue_unfinished()
    assert [state.next_payload() for _ in range(2)] == payloads[9:]
    assert state.next_payload()["trial_id"] == "random-11"


def test_a_controller_with_nothing_left_ends_the_proposals(tmp_path, monkeypatch):
    state = state_of(tmp_path, config("random"))

    def exhausted():
        raise RuntimeError("nothing new")

    monkeypatch.setattr(state.stack, "propose", exhausted)
    assert state.next_payload() is None
    assert state.stopped_reason == "nothing new"
    assert state.ledger.meta("stopped_reason") == "nothing new"
    monkeypatch.setattr(state.stack, "propose", lambda: pytest.fail("asked again"))
    assert state.next_payload() is None
    assert not state.complete and state.budget_left == state.config.max_trials


def test_payloads_carry_what_each_trial_needs(tmp_path):
    """A proxy trial's Tune config: its id, its spec, the proxy, the seeds and the resources; a
    similarity check's: its id, its genome, the target, the space and the delay."""
    cfg = config("random", **{"objective.name": "ap", "proxy.seeds": "[3, 4]",
                              "early_stopping.enabled": "false"})
    (tmp_path / "proxy").mkdir()
    state = state_of(tmp_path / "proxy", cfg)
    payload = state.next_payload()
    row = state.ledger.trial(payload["trial_id"])
    assert payload == {"kind": "proxy", "trial_id": row["trial_id"], "spec": row["spec"],
                       "proxy": dataclasses.asdict(cfg.proxy_config()), "seeds": [3, 4],
                       "resources": dataclasses.asdict(cfg.resources)}
    cfg = config("random", **{"objective.delay_s": 0.25})
    (tmp_path / "similarity").mkdir()
    state = state_of(tmp_path / "similarity", cfg)
    payload = state.next_payload()
    row = state.ledger.trial(payload["trial_id"])
    assert payload == {"kind": "similarity", "trial_id": row["trial_id"], "genome": row["genome"],
                       "target": state.target.to_dict(), "space": cfg.space, "delay_s": 0.25,
                       "resources": dataclasses.asdict(cfg.resources)}


def test_checkpoints_come_every_ten_seconds_at_a_proposal_or_a_result(tmp_path, monkeypatch):
    """On a clock moved by hand: no checkpoint 9.5 s after the start, one at the proposal 10 s
    after it (sequence number 3: three proposals), none at a result 5 s later, one with the
    result 10 s later (sequence number 5)."""
    clock = [1000.0]
    monkeypatch.setattr(search_state.time, "monotonic", lambda: clock[0])
    state = state_of(tmp_path, config("random", max_trials=4))
    first = state.next_payload()["trial_id"]
    clock[0] += 9.5
    second = state.next_payload()["trial_id"]
    assert state.ledger.latest_state() is None
    clock[0] += 0.5
    state.next_payload()
    assert state.ledger.latest_state()[0] == 3
    clock[0] += 5
    state.completed(first, OK_RESULT)
    assert state.ledger.latest_state()[0] == 3
    clock[0] += 5
    state.completed(second, OK_RESULT)
    assert state.ledger.latest_state() == (5, json.loads(json.dumps(state.stack.state_dict())))

"""The driver's bookkeeping without Ray: a search stopped at any event (no clean shutdown) and
continued from its ledger ends exactly like one that never stopped."""

import collections

import pytest

from nas.config import load_config
from nas.ledger import DONE, DUPLICATE, FAILED, INFEASIBLE, Ledger
from nas.search_state import SearchState
from nas.stack import genome_of, proxy_cost_fn
from nas.trial_messages import FINAL
from proxy_tasks.presets import get_preset
from search_space import Genome, get_space, similarity


def reward_of(payload):
    """A deterministic stand-in for training: the similarity to the payload's target."""
    return similarity(Genome.from_dict(payload["genome"]), Genome.from_dict(payload["target"]),
                      get_space(payload["space"]))


def config(controller="evolution", **sets):
    base = {"objective.name": "similarity", "max_trials": 14, "concurrency": 3,
            "controller.name": controller, "controller.evolution.population_size": 4,
            "controller.evolution.tournament_size": 2, "controller.ppo.batch_size": 3,
            "controller.initial_mutants": 2, **sets}
    return load_config(assignments=[f"{k}={v}" for k, v in base.items()])


def drive(state, stop_after=None, fail=frozenset()):
    """Runs `state` like the Tune loop with `concurrency` slots, the oldest trial finishing
    first; stops (as if killed) after `stop_after` events and returns the ids of the trials
    that were running then."""
    running = collections.deque()
    events = 0

    def running_ids():
        return {p["trial_id"] for p in running}

    while True:
        while len(running) < state.config.concurrency:
            payload = state.next_payload()
            if payload is None:
                break
            events += 1
            if events == stop_after:
                return running_ids()
            state.started(payload["trial_id"])
            running.append(payload)
            events += 1
            if events == stop_after:
                return running_ids()
        if not running:
            return set()
        payload = running.popleft()
        if payload["trial_id"] in fail:
            state.completed(payload["trial_id"], {FINAL: True, "status": "failed", "error": "boom"})
        else:
            state.completed(payload["trial_id"], {FINAL: True, "status": "ok",
                                                  "reward": reward_of(payload)})
        events += 1
        if events == stop_after:
            return running_ids()


def snapshot(ledger):
    keep = ("trial_id", "genome", "spec_hash", "status", "reward", "metrics", "seq", "result_seq")
    return [{k: t[k] for k in keep} for t in ledger.trials()]


def run(path, cfg, stops=(), checkpoint_every_s=0.0, fail=frozenset()):
    """(ledger, final state, running trial ids at each stop)."""
    ledger = Ledger(path, create=True)
    ledger.set_meta({"config": cfg.to_dict()})
    interrupted = [drive(SearchState(cfg, ledger, checkpoint_every_s=checkpoint_every_s), stop,
                         fail) for stop in stops]
    state = SearchState(cfg, ledger, checkpoint_every_s=checkpoint_every_s)
    drive(state, fail=fail)
    return ledger, state, interrupted


@pytest.mark.parametrize("controller, sets", [
    ("evolution", {}), ("evolution", {"controller.evolution.average_offspring": "true"}),
    ("ppo", {}), ("ppo", {"controller.ppo.explore": 0, "controller.ppo.initial_bias": 0}),
    ("random", {})])
@pytest.mark.parametrize("checkpoint_every_s", [0.0, 1e9])  # every event / only replay
def test_stopped_anywhere_the_search_continues_exactly(tmp_path, controller, sets,
                                                       checkpoint_every_s):
    cfg = config(controller, **sets)
    straight, final, _ = run(tmp_path / "straight.sqlite", cfg)
    expected = snapshot(straight)
    # Stops after a proposal, after a start, after a result, some soon after the last.
    stopped, resumed, interrupted = run(tmp_path / "stopped.sqlite", cfg, stops=(5, 4, 3, 9),
                                        checkpoint_every_s=checkpoint_every_s)
    assert snapshot(stopped) == expected
    assert resumed.stack.state_dict() == final.stack.state_dict()
    counts = stopped.counts()
    assert counts[DONE] + counts[FAILED] == cfg.max_trials
    # Each trial that was running at a stop ran once more; no other trial ran twice.
    attempts = {t["trial_id"]: t["attempts"] for t in stopped.trials([DONE, FAILED])}
    expected_attempts = collections.Counter(attempts.keys())
    for ids in interrupted:
        expected_attempts.update(ids)
    assert any(interrupted) and attempts == dict(expected_attempts)


def test_duplicates_and_infeasible_proposals_are_recorded_not_trained(tmp_path):
    # The seed twice in a row (the second waits for the first). At the default proxy r0-sp53's
    # random genomes cost from about 0.3% less than the seed to 3% more: a limit 0.8% above
    # the seed leaves it feasible and about half the random genomes not.
    space = get_space("r0-sp53")
    seed_flops = proxy_cost_fn(space, get_preset("default"))(
        genome_of("resnet50-seed", space, "seed"))["flops"]
    limit = round(seed_flops * 1.008)
    cfg = config("random", **{"space": "r0-sp53", "max_trials": 30,
                              "objective.target": "resnet50-seed",
                              "controller.initial": "[resnet50-seed, resnet50-seed]",
                              "constraints.max_flops": limit, "controller.initial_mutants": 0})
    ledger, _, _ = run(tmp_path / "l.sqlite", cfg)
    counts = ledger.counts()
    assert counts[DONE] == 30 and counts[INFEASIBLE] > 0 and counts[DUPLICATE] >= 1
    trained = ledger.trials([DONE])
    assert len({t["spec_hash"] for t in trained}) == 30  # never the same network twice
    assert all(t["flops"] <= limit for t in trained)
    for skipped in ledger.trials([INFEASIBLE]):
        assert skipped["flops"] > limit and "flops" in skipped["note"]
        assert skipped["seq"] is None  # not part of the controller's history
    assert ledger.trials([DUPLICATE])[0]["trial_id"] == "random-1"
    for dup in ledger.trials([DUPLICATE]):
        assert dup["spec_hash"] in {t["spec_hash"] for t in trained} and dup["seq"] is None


def test_failed_trials_are_recorded_and_the_search_goes_on(tmp_path):
    cfg = config("evolution")
    ledger, state, _ = run(tmp_path / "l.sqlite", cfg, fail={"evolution-1", "evolution-4"})
    failed = ledger.trials([FAILED])
    assert [t["trial_id"] for t in failed] == ["evolution-1", "evolution-4"]
    assert all(t["error"] == "boom" and t["reward"] is None for t in failed)
    assert ledger.counts()[DONE] == cfg.max_trials - 2
    controller = state.stack.inner.inner  # Dedup(Constraints(evolution))
    assert controller.num_results == {"ok": cfg.max_trials - 2, "failed": 2, "infeasible": 0}


def test_budget_grows_on_resume(tmp_path):
    cfg = config("evolution", max_trials=5)
    ledger, state, _ = run(tmp_path / "l.sqlite", cfg)
    assert state.complete and state.next_payload() is None
    more = SearchState(config("evolution", max_trials=8), ledger)
    drive(more)
    counts = ledger.counts()
    assert counts[DONE] == 8 and all(t["attempts"] == 1 for t in ledger.trials([DONE]))


def test_an_early_stopped_trial_keeps_its_last_evaluated_reward(tmp_path):
    cfg = config("evolution", max_trials=3)
    ledger = Ledger(tmp_path / "l.sqlite", create=True)
    state = SearchState(cfg, ledger)
    first, second, third = (state.next_payload()["trial_id"] for _ in range(3))
    for trial_id in (first, second, third):
        state.started(trial_id)
    state.epoch(first, {"epoch": 1, "seed": 0, "train_loss": 2.5, "reward": 0.25})
    # ASHA stopped `first` after its first epoch: Tune hands over that epoch's result.
    state.completed(first, {"epoch": 1, "reward": 0.25, "ap": 0.25, "training_iteration": 1})
    state.completed(second, {"epoch": 1, "training_iteration": 1})  # stopped before evaluating
    state.completed(third, {FINAL: True, "status": "ok", "reward": 0.5, "ap": 0.5})
    rows = {t["trial_id"]: t for t in ledger.trials()}
    assert (rows[first]["status"], rows[first]["reward"]) == (DONE, 0.25)
    assert rows[first]["metrics"] == {"reward": 0.25, "ap": 0.25, "epoch": 1,
                                      "stopped_early": True}  # Tune's own keys dropped
    assert (rows[second]["status"], rows[second]["error"]) == (FAILED, "stopped before its "
                                                               "first evaluation")
    assert rows[third]["metrics"] == {"reward": 0.5, "ap": 0.5}
    assert [e["metrics"]["train_loss"] for e in ledger.epochs(first)] == [2.5]
    assert state.complete

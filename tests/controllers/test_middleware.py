"""Middlewares: objective, hard constraints and dedup around any controller."""

import numpy as np
import pytest

from controllers import (ALWAYS, FAILED, INFEASIBLE, Constraints, Dedup, Objective, RandomSearch,
                         RegularizedEvolution, detector_cost_fn, mnas_reward)
from controllers.evolution import EvolutionConfig
from controllers.interface import OK, Proposal
from controllers.middleware import Middleware
from search_space import SPACES, random_genome, seed_genome
from tests.controllers.helpers import SPACE, Scripted, drive, json_round_trip, reward_of

GENOMES = [seed_genome(SPACE)] + [random_genome(SPACE, np.random.default_rng(k)) for k in range(3)]


def fake_cost(genome):
    """A cheap stand-in for the cost model: FLOPs grow with the number of residual blocks."""
    residual = sum(fn == "residual" for fn in genome.block_fns)
    return {"params": 1000 + residual, "flops": 10 ** 9 * (1 + residual)}


class Recorder(Middleware):
    """Passes everything on, keeping each feedback call's arguments."""

    def __init__(self, inner):
        super().__init__(inner)
        self.calls = []

    def feedback(self, proposal_id, reward=None, metrics=None, status=OK):
        self.calls.append((proposal_id, reward, metrics, status))
        super().feedback(proposal_id, reward, metrics, status)


@pytest.mark.parametrize("build, message", [
    (lambda inner: Constraints(inner, max_flops=0), "max_flops: must be > 0, got 0"),
    (lambda inner: Constraints(inner, max_params=-1.5), "max_params: must be > 0, got -1.5"),
    (lambda inner: Constraints(inner, max_attempts=0), "max_attempts: must be >= 1, got 0"),
    (lambda inner: Objective(inner, target_flops=0), "target_flops: must be > 0, got 0"),
    (lambda inner: Objective(inner, weight=0.1),
     "weight: must be <= 0 (a penalty on FLOPs), got 0.1"),
    (lambda inner: Objective(inner, mode="never"),
     "mode: 'never' is not one of ('above', 'always')"),
    (lambda inner: detector_cost_fn(SPACE, input_size=0),
     "input_size: expected a positive integer, got 0"),
    (lambda inner: detector_cost_fn(SPACE, input_size=True),
     "input_size: expected a positive integer, got True"),
    (lambda inner: detector_cost_fn(SPACE, input_size=2.5),
     "input_size: expected a positive integer, got 2.5"),
    (lambda inner: Constraints(inner, max_flops=1).load_state_dict(Objective(inner).state_dict()),
     "state.kind: 'objective' cannot be loaded into a constraints middleware"),
])
def test_every_checked_field_is_named_with_its_value(build, message):
    with pytest.raises(ValueError) as error:
        build(Scripted(GENOMES))
    assert str(error.value) == message


def test_each_limit_itself_is_accepted():
    inner = Scripted(GENOMES)
    assert Constraints(inner, max_flops=0.5, max_params=0.5, max_attempts=1).max_attempts == 1
    assert Objective(inner, target_flops=0.5, weight=0.0).weight == 0.0
    assert callable(detector_cost_fn(SPACE, input_size=1))


def test_detector_cost_follows_the_input_and_the_head_outputs():
    """The proxy detector (512-pixel input, 3x3 output convs over 64 channels with bias): half
    the input side, a quarter of the FLOPs (every feature map halves its side: 512 and 256 both
    divide by the coarsest stride, 128) and the same params; one anchor more, num_classes + 4
    outputs of 9 * 64 + 1 params more; one class more, num_anchors such outputs."""
    genome = GENOMES[1]
    base = detector_cost_fn(SPACE)(genome)
    assert set(base) == {"params", "flops"}
    half = detector_cost_fn(SPACE, input_size=256)(genome)
    assert (half["params"], 4 * half["flops"]) == (base["params"], base["flops"])
    more_anchors = detector_cost_fn(SPACE, num_anchors=10)(genome)
    assert more_anchors["params"] - base["params"] == (91 + 4) * (9 * 64 + 1)
    more_classes = detector_cost_fn(SPACE, num_classes=92)(genome)
    assert more_classes["params"] - base["params"] == 9 * (9 * 64 + 1)


def test_middleware_passes_everything_on():
    recorder = Recorder(Scripted(GENOMES))
    stack = Middleware(recorder)
    proposal = stack.propose()
    stack.feedback(proposal.id, 0.5, {"ap": 0.5}, OK)
    assert (proposal.id, recorder.calls) == ("scripted-0", [("scripted-0", 0.5, {"ap": 0.5}, OK)])


def test_mnas_reward_forms():
    assert mnas_reward(0.4, 2e9, 1e9, -0.07, "above") == pytest.approx(0.4 * 2 ** -0.07)
    assert mnas_reward(0.4, 5e8, 1e9, -0.07, "above") == 0.4
    assert mnas_reward(0.4, 5e8, 1e9, -0.07, ALWAYS) == pytest.approx(0.4 * 0.5 ** -0.07)
    with pytest.raises(ValueError, match="mode"):
        mnas_reward(0.4, 5e8, 1e9, -0.07, "sometimes")


def test_objective_transforms_ok_results_and_passes_failures():
    """An ok result's AP becomes the objective, with the AP and FLOPs added to its metrics."""
    inner = Recorder(Scripted(GENOMES))
    objective = Objective(inner, target_flops=2e9, weight=-0.5, mode=ALWAYS, cost_fn=fake_cost)
    a, b = objective.propose(), objective.propose()
    objective.feedback(a.id, 0.3, {"note": 1})
    objective.feedback(b.id, None, {"error": "oom"}, FAILED)
    flops = fake_cost(a.genome)["flops"]
    assert inner.calls == [
        (a.id, pytest.approx(0.3 * (flops / 2e9) ** -0.5), {"note": 1, "ap": 0.3, "flops": flops},
         OK),
        (b.id, None, {"error": "oom"}, FAILED)]


def test_objective_without_a_target_passes_the_ap_on_and_costs_nothing():
    def no_cost(genome):
        raise AssertionError("no FLOPs are needed without a target")

    inner = Recorder(Scripted(GENOMES))
    objective = Objective(inner, cost_fn=no_cost)
    proposal = objective.propose()
    objective.feedback(proposal.id, 0.3, {"note": 1})
    assert inner.calls == [(proposal.id, 0.3, {"note": 1}, OK)]


def test_objective_defaults_to_the_proxy_detectors_flops():
    inner = Recorder(Scripted(GENOMES))
    objective = Objective(inner, target_flops=1e9)
    objective.feedback(objective.propose().id, 0.3)
    assert inner.calls[0][2] == {"ap": 0.3, "flops": detector_cost_fn(SPACE)(GENOMES[0])["flops"]}


def test_constraints_never_let_an_over_budget_genome_through():
    cost_fn = detector_cost_fn(SPACE)
    limit = float(np.median([cost_fn(random_genome(SPACE, np.random.default_rng(k)))["flops"]
                             for k in range(9)]))
    seen = []
    inner = RandomSearch(SPACE, seed=0)
    # By default the proxy detector's costs decide.
    constrained = Constraints(inner, max_flops=limit, on_infeasible=seen.append)
    for proposal in drive(constrained, 12):
        assert cost_fn(proposal.genome)["flops"] <= limit
    assert constrained.infeasible and seen == constrained.infeasible
    assert all(r["cost"]["flops"] > limit and r["violations"] for r in constrained.infeasible)
    assert inner.num_results[INFEASIBLE] == len(constrained.infeasible)


def test_constraints_record_and_feed_back_each_rejection():
    """Limits of 1.5 GFLOPs and 2000 params: each genome over one or both is recorded with its
    cost and every limit it breaks, and fed back as infeasible with them as its metrics."""
    costs = [(1000, 10 ** 9), (2500, 10 ** 9), (1000, 2_100_000_000), (3000, 3 * 10 ** 9)]
    seen = []
    inner = Recorder(Scripted(GENOMES[1:] + GENOMES[:1]))
    constrained = Constraints(
        inner, max_flops=1.5e9, max_params=2000, on_infeasible=seen.append,
        cost_fn=lambda genome: dict(zip(("params", "flops"), costs[GENOMES.index(genome)])))
    assert constrained.propose() == Proposal("scripted-3", GENOMES[0])
    rejected = [
        ("scripted-0", GENOMES[1], {"params": 2500, "flops": 10 ** 9}, ["params 2500 > 2000"]),
        ("scripted-1", GENOMES[2], {"params": 1000, "flops": 2_100_000_000},
         ["flops 2.1e+09 > 1.5e+09"]),
        ("scripted-2", GENOMES[3], {"params": 3000, "flops": 3 * 10 ** 9},
         ["flops 3e+09 > 1.5e+09", "params 3000 > 2000"])]
    assert constrained.infeasible == seen == [
        {"id": i, "genome": g.to_dict(), "cost": cost, "violations": broken}
        for i, g, cost, broken in rejected]
    assert inner.calls == [(i, None, {**cost, "violations": broken}, INFEASIBLE)
                           for i, g, cost, broken in rejected]


@pytest.mark.parametrize("max_attempts", [1, None])
def test_constraints_give_up_after_max_attempts_rejections_in_a_row(max_attempts):
    """One attempt is the least allowed; by default 1000 rejections in a row stop it."""
    kwargs = {} if max_attempts is None else {"max_attempts": max_attempts}
    constrained = Constraints(Scripted(GENOMES), max_params=1, cost_fn=fake_cost, **kwargs)
    with pytest.raises(RuntimeError) as error:
        constrained.propose()
    attempts = max_attempts or 1000
    assert str(error.value) == (f"constraints: {attempts} proposals in a row broke the limits "
                                "{'flops': None, 'params': 1}; loosen them or raise max_attempts")
    assert len(constrained.infeasible) == attempts


def test_dedup_answers_repeats_from_the_cache_and_parks_running_ones():
    g0, g1, g2, g3 = GENOMES
    inner = Scripted([g0, g1, g0, g1, g2, g3])
    dedup = Dedup(inner)
    first = [dedup.propose(), dedup.propose()]
    dedup.feedback(first[0].id, 0.5, {"ap": 0.5})
    third = dedup.propose()  # g0 answered from the cache, g1 parked behind its running twin
    assert third.genome == g2 and (dedup.cache_hits, dedup.num_parked) == (1, 1)
    dedup.feedback(first[1].id, 0.25)
    assert [(g, r) for g, r in inner.learned] == [(g0, 0.5), (g0, 0.5), (g1, 0.25), (g1, 0.25)]
    assert dedup.propose().genome == g3
    with pytest.raises(KeyError, match="proposal_id"):
        dedup.feedback(first[0].id, 0.5)


def test_dedup_never_trains_a_hash_twice():
    # The smaller space, where evolution's one-decision mutations repeat themselves soon.
    dedup = Dedup(RegularizedEvolution(SPACES["r0-sp53"], EvolutionConfig(2, 1), seed=0))
    trained = drive(dedup, 60)
    hashes = [dedup.hash_fn(p.genome) for p in trained]
    assert len(set(hashes)) == len(hashes)
    assert dedup.cache_hits > 0
    with pytest.raises(RuntimeError, match="already evaluated"):
        stuck = Dedup(Scripted(GENOMES[:1]), max_attempts=3)
        stuck.feedback(stuck.propose().id, 0.1)
        stuck.propose()


def test_dedup_retries_a_failed_architecture_when_asked():
    g0, g1 = GENOMES[:2]
    inner = Scripted([g0, g0, g1, g0])
    dedup = Dedup(inner, retry_failed=True, max_attempts=3)
    first = dedup.propose()
    assert dedup.propose().genome == g1  # the second g0 waits behind the first
    dedup.feedback(first.id, None, {"error": "nan"}, FAILED)
    assert [r for _, r in inner.learned] == [inner.failure_reward] * 2  # the waiting one too
    again = dedup.propose()  # the failure was not cached: g0 is trained again
    assert again.genome == g0 and (dedup.cache_hits, dedup.num_parked) == (0, 1)
    dedup.feedback(again.id, 0.5)
    assert inner.learned[-1] == (g0, 0.5)


def test_dedup_answers_a_failure_from_the_cache():
    inner = Scripted(GENOMES[:1] * 3)
    dedup = Dedup(inner, max_attempts=5)
    proposal = dedup.propose()
    dedup.feedback(proposal.id, None, {"error": "nan"}, FAILED)
    with pytest.raises(RuntimeError):
        dedup.propose()
    assert inner.num_results[FAILED] == 1 + dedup.cache_hits


def test_dedup_hands_every_twin_the_whole_result_and_reports_it():
    """A twin answered from the cache and two parked behind a running trial get its reward,
    metrics and status; `on_duplicate` hears of each with its id, genome, hash and whether it
    was answered from the cache."""
    g0, g1 = GENOMES[:2]
    seen = []
    inner = Recorder(Scripted([g0, g1, g1, g0, g1, GENOMES[2]]))
    dedup = Dedup(inner, on_duplicate=seen.append)
    first, second = dedup.propose(), dedup.propose()
    dedup.feedback(first.id, 0.5, {"ap": 0.5})
    assert dedup.propose().genome == GENOMES[2]
    assert dedup.num_parked == 2 and dedup.cache_hits == 1
    dedup.feedback(second.id, None, {"error": "nan"}, FAILED)
    assert inner.calls == [("scripted-0", 0.5, {"ap": 0.5}, OK),
                           ("scripted-3", 0.5, {"ap": 0.5}, OK),
                           ("scripted-1", None, {"error": "nan"}, FAILED),
                           ("scripted-2", None, {"error": "nan"}, FAILED),
                           ("scripted-4", None, {"error": "nan"}, FAILED)]
    h0, h1 = dedup.hash_fn(g0), dedup.hash_fn(g1)
    assert seen == [{"id": "scripted-2", "genome": g1, "hash": h1, "cached": False},
                    {"id": "scripted-3", "genome": g0, "hash": h0, "cached": True},
                    {"id": "scripted-4", "genome": g1, "hash": h1, "cached": False}]


def test_dedup_state_keeps_the_parked_twins():
    """Restored from a state taken while a twin waits, the running trial's result still
    answers the twin."""
    g0 = GENOMES[0]
    original = Dedup(Scripted([g0, g0, GENOMES[1]]))
    running = original.propose()
    assert original.propose().genome == GENOMES[1] and original.parked
    restored = Dedup(Scripted([g0, g0, GENOMES[1]]))
    restored.load_state_dict(json_round_trip(original.state_dict()))
    restored.feedback(running.id, 0.5)
    assert restored.inner.learned == [(g0, 0.5), (g0, 0.5)] and not restored.parked


def test_dedup_gives_up_after_max_attempts_duplicates_in_a_row():
    """One attempt is the least allowed; by default 10000 duplicates in a row stop it."""
    with pytest.raises(ValueError, match="max_attempts: must be >= 1, got 0"):
        Dedup(Scripted(GENOMES), max_attempts=0)
    once = Dedup(Scripted(GENOMES[:1]), max_attempts=1)
    once.propose()
    with pytest.raises(RuntimeError, match="proposed 1 already evaluated"):
        once.propose()
    assert once.num_parked == 1
    default = Dedup(Scripted(GENOMES[:1]), hash_fn=lambda genome: "one network")
    default.propose()
    with pytest.raises(RuntimeError, match="proposed 10000 already evaluated"):
        default.propose()


def test_stack_state_round_trip_and_replay():
    def build():
        # Random starts (mutants of the seed are mostly over the FLOPs limit and repeat late)
        # and plain rewards in tournaments: a run where every layer acts within 15 steps.
        inner = RegularizedEvolution(SPACE, EvolutionConfig(6, 3, average_offspring=False),
                                     seed=1, initial_genomes=())
        cost_fn = detector_cost_fn(SPACE)
        return Dedup(Constraints(Objective(inner, target_flops=5.8e9, cost_fn=cost_fn),
                                 max_flops=5.95e9, cost_fn=cost_fn))

    original, ledger, outstanding = build(), [], []
    drive(original, 15, ledger, outstanding)
    restored, replayed = build(), build()
    restored.load_state_dict(json_round_trip(original.state_dict()))
    replayed.replay(ledger)
    expected = drive(original, 10, outstanding=list(outstanding))
    assert drive(restored, 10, outstanding=list(outstanding)) == expected
    assert drive(replayed, 10, outstanding=list(outstanding)) == expected
    state = json_round_trip(original.state_dict())
    assert json_round_trip(restored.state_dict()) == state
    assert json_round_trip(replayed.state_dict()) == state
    # Every layer acted: repeats answered by Dedup, genomes rejected by Constraints, rewards
    # scaled by Objective (the population holds positive rewards below the trials' AP).
    assert original.cache_hits + original.num_parked > 0 and original.inner.infeasible
    population = original.inner.inner.inner.population
    assert any(0 < r < reward_of(g) for g, r, *_ in population)  # failures are 0

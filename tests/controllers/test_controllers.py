"""Controller interface: validity, seeding, async and failure feedback, resumable state."""

import dataclasses

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

from controllers import (FAILED, INFEASIBLE, EvolutionConfig, PPOConfig, PPOController, RandomSearch,
                         RegularizedEvolution)
from controllers.serialize import decode_tree, encode_tree
from search_space import SPACES, distance, seed_genome, validate_genome
from tests.controllers.helpers import SMALL_PPO, SPACE, Scripted, drive, json_round_trip, reward_of

FACTORIES = {
    "random": lambda space, seed: RandomSearch(space, seed=seed),
    "evolution": lambda space, seed: RegularizedEvolution(space, EvolutionConfig(8, 3, 0.5),
                                                          seed=seed),
    "evolution-averaged": lambda space, seed: RegularizedEvolution(
        space, EvolutionConfig(8, 3, average_offspring=True), seed=seed),
    # Without initial genomes evolution starts from P random ones (a branch of its own).
    "evolution-random-start": lambda space, seed: RegularizedEvolution(
        space, EvolutionConfig(8, 3), seed=seed, initial_genomes=()),
    "ppo": lambda space, seed: PPOController(space, SMALL_PPO, seed=seed),
    # Neither the seed's prior nor the exploration floor (the defaults have both).
    "ppo-plain": lambda space, seed: PPOController(
        space, dataclasses.replace(SMALL_PPO, initial_bias=0.0, explore=0.0), seed=seed),
}


@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from(sorted(FACTORIES)), space=st.sampled_from(sorted(SPACES)),
       seed=st.integers(0, 2 ** 31))
def test_every_proposal_is_valid(name, space, seed):
    """PPO runs 5 steps (fewer than a batch: no update to compile) in the second space."""
    space = SPACES[space]
    controller = FACTORIES[name](space, seed)
    steps = 30 if name != "ppo" or space == SPACE else 5
    for proposal in drive(controller, steps):
        validate_genome(proposal.genome, space)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_seed_genome_first_then_same_seed_same_sequence(name):
    runs = [drive(FACTORIES[name](SPACE, 5), 25) for _ in range(2)]
    assert (runs[0][0].genome == seed_genome(SPACE)) == (name != "evolution-random-start")
    assert runs[0] == runs[1]
    assert len({p.id for p in runs[0]}) == len(runs[0])
    other = drive(FACTORIES[name](SPACE, 6), 25)
    assert [p.genome for p in other] != [p.genome for p in runs[0]]


def test_initial_genomes_are_proposed_in_order():
    first = [seed_genome(SPACE), drive(RandomSearch(SPACE, seed=1), 1)[-1].genome]
    controller = RegularizedEvolution(SPACE, seed=0, initial_genomes=first)
    assert [controller.propose().genome for _ in range(2)] == first


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_async_feedback_in_any_order(name):
    controller = FACTORIES[name](SPACE, 0)
    proposals = [controller.propose() for _ in range(12)]
    for k in np.random.default_rng(0).permutation(12):
        controller.feedback(proposals[k].id, reward_of(proposals[k].genome))
    assert not controller.outstanding
    assert controller.num_results["ok"] == 12
    validate_genome(controller.propose().genome, SPACE)


def test_feedback_errors_name_the_field():
    controller = RandomSearch(SPACE)
    proposal = controller.propose()
    with pytest.raises(KeyError, match="proposal_id"):
        controller.feedback("random-99", 0.5)
    with pytest.raises(ValueError, match="reward"):
        controller.feedback(proposal.id, float("nan"))
    with pytest.raises(ValueError, match="status"):
        controller.feedback(proposal.id, 0.5, status="crashed")
    controller.feedback(proposal.id, 0.5)
    with pytest.raises(KeyError, match="proposal_id"):
        controller.feedback(proposal.id, 0.5)
    with pytest.raises(ValueError, match="seed"):
        RandomSearch(SPACE, seed=-1)
    with pytest.raises(ValueError, match="tournament_size"):
        EvolutionConfig(population_size=4, tournament_size=5)
    with pytest.raises(ValueError, match="learning_rate"):
        PPOConfig(learning_rate=0)


def test_failures_are_learned_with_the_failure_reward():
    genomes = [seed_genome(SPACE)]
    controller = Scripted(genomes, failure_reward=-1.0)
    a, b = controller.propose(), controller.propose()
    controller.feedback(a.id, None, {"error": "oom"}, FAILED)
    controller.feedback(b.id, status=INFEASIBLE)
    assert [r for _, r in controller.learned] == [-1.0, -1.0]
    assert controller.num_results == {"ok": 0, "failed": 1, "infeasible": 1}


def test_evolution_mutates_the_tournament_winner():
    """With the tournament as large as the population, every child is one mutation (at most 4
    decisions: a swap moves two levels and two types) from the best member, not another."""
    controller = RegularizedEvolution(SPACE, EvolutionConfig(4, 4), seed=0, initial_genomes=())
    members = [controller.propose().genome for _ in range(4)]
    for proposal_id, reward in zip(["evolution-0", "evolution-1", "evolution-2", "evolution-3"],
                                   [0.3, 0.9, 0.1, 0.5]):
        controller.feedback(proposal_id, reward)
    for _ in range(10):
        child = controller.propose().genome
        distances = [distance(child, member, SPACE)["total"] for member in members]
        assert distances[1] <= 4 < min(distances[:1] + distances[2:]), distances


def test_evolution_from_initial_genomes_evolves_at_once():
    """Given the seed, evolution spends no proposal on random genomes, however large P: each
    proposal after the seed is one mutation (at most 2 decisions) from the seed or an earlier
    one (or a repeat of one), proposals made before any result included."""
    controller = RegularizedEvolution(SPACE, EvolutionConfig(100, 25), seed=0)
    made = drive(controller, 60)
    assert made[0].genome == seed_genome(SPACE) and len(made) == 62
    for k, proposal in enumerate(made[1:], 1):
        assert min(distance(proposal.genome, earlier.genome, SPACE)["total"]
                   for earlier in made[:k]) <= 2, k


@pytest.mark.parametrize("average", [False, True])
def test_evolution_averages_a_member_with_its_children(average):
    """A scores 0.9 and B 0.8; A's child reports 0.5, so averaged A counts (0.9 + 0.5) / 2 =
    0.7 and the next tournament (the whole population) picks B; plain, A again."""
    a, b = seed_genome(SPACE), drive(RandomSearch(SPACE, seed=1), 1)[-1].genome
    controller = RegularizedEvolution(SPACE, EvolutionConfig(3, 3, average_offspring=average),
                                      seed=0, initial_genomes=(a, b))
    first, second = controller.propose(), controller.propose()
    controller.feedback(first.id, 0.9)
    controller.feedback(second.id, 0.8)
    child = controller.propose()
    assert distance(child.genome, a, SPACE)["total"] <= 2
    controller.feedback(child.id, 0.5)
    winner = b if average else a
    for _ in range(5):
        assert distance(controller.propose().genome, winner, SPACE)["total"] <= 2


def test_evolution_population_ages_out_oldest():
    controller = RegularizedEvolution(SPACE, EvolutionConfig(4, 2), seed=0, initial_genomes=())
    proposals = [controller.propose() for _ in range(6)]
    for p in proposals:
        controller.feedback(p.id, reward_of(p.genome))
    assert [m[0] for m in controller.population] == [p.genome for p in proposals[2:]]


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_state_round_trip_and_replay_continue_identically(name):
    original, ledger, outstanding = FACTORIES[name](SPACE, 3), [], []
    drive(original, 20, ledger, outstanding)
    state = json_round_trip(original.state_dict())
    restored = FACTORIES[name](SPACE, 3)
    restored.load_state_dict(state)
    replayed = FACTORIES[name](SPACE, 3)
    replayed.replay(ledger)
    expected = drive(original, 20, outstanding=list(outstanding))
    assert drive(restored, 20, outstanding=list(outstanding)) == expected
    assert drive(replayed, 20, outstanding=list(outstanding)) == expected


def test_load_and_replay_reject_mismatches():
    ledger = []
    drive(RandomSearch(SPACE, seed=1), 3, ledger)
    with pytest.raises(ValueError, match=r"history\[0\]"):
        RandomSearch(SPACE, seed=2, initial_genomes=()).replay(ledger)
    with pytest.raises(ValueError, match="state.kind"):
        RandomSearch(SPACE).load_state_dict(RegularizedEvolution(SPACE).state_dict())
    with pytest.raises(ValueError, match="state.seed"):
        RandomSearch(SPACE, seed=1).load_state_dict(RandomSearch(SPACE, seed=2).state_dict())


def test_replay_names_a_malformed_record():
    ledger = []
    drive(RandomSearch(SPACE, seed=1), 3, ledger)  # proposals 0-2, then the result of 0
    corrupt = dict(ledger[1], genome={k: v for k, v in ledger[1]["genome"].items()
                                      if k != "parents"})
    for index, record, error, message in [
        (1, corrupt, ValueError, r"history\[1\]: genome: malformed genome data \(KeyError"),
        (3, {"id": ledger[3]["id"]}, ValueError, r"history\[3\]: a record needs a 'genome'"),
        (3, dict(ledger[3], status="crashed"), ValueError, "feedback.status: 'crashed'"),
        (3, dict(ledger[3], id="random-9"), KeyError, "feedback.proposal_id: 'random-9'"),
    ]:
        history = ledger[:index] + [record] + ledger[index + 1:]
        with pytest.raises(error, match=message):
            RandomSearch(SPACE, seed=1).replay(history)


def test_decode_tree_rejects_arrays_that_do_not_fit():
    tree = {"a": np.arange(3, dtype=np.float32), "b": {"c": np.int32(7)}}
    leaves = encode_tree(tree)
    back = decode_tree(tree, json_round_trip(leaves))
    assert back["b"]["c"].dtype == np.int32 and back["b"]["c"].shape == ()
    np.testing.assert_array_equal(back["a"], tree["a"])
    for template in ({"a": np.zeros(4), "b": {"c": 0}}, {"a": np.zeros(3)},
                     {"a": np.zeros(3), "b": {"c": 0, "d": 0}}):
        with pytest.raises(ValueError, match="state: 2 encoded arrays do not fit a tree of"):
            decode_tree(template, leaves)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_state_is_plain_json_data(name):
    controller = FACTORIES[name](SPACE, 0)
    drive(controller, 10)
    state = controller.state_dict()
    assert json_round_trip(state) == state
    assert dataclasses.is_dataclass(controller.propose())


def test_replay_accepts_combined_sequential_records():
    original = RegularizedEvolution(SPACE, EvolutionConfig(4, 2), seed=2)
    ledger = []
    for _ in range(10):
        proposal = original.propose()
        record = {"id": proposal.id, "genome": proposal.genome.to_dict(),
                  "reward": reward_of(proposal.genome), "metrics": {}, "status": "ok"}
        original.feedback(proposal.id, record["reward"])
        ledger.append(record)
    replayed = RegularizedEvolution(SPACE, EvolutionConfig(4, 2), seed=2)
    replayed.replay(ledger)
    assert drive(replayed, 10) == drive(original, 10)

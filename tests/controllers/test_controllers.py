"""Controller interface: validity, seeding, async and failure feedback, resumable state."""

import dataclasses

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

from controllers import (FAILED, INFEASIBLE, EvolutionConfig, PPOConfig, PPOController,
                         RandomSearch, RegularizedEvolution, proposal_record, result_record)
from controllers.interface import check_feedback
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


@pytest.mark.parametrize("build, message", [
    (lambda: RandomSearch(SPACE, seed=-1), "seed: expected a non-negative integer, got -1"),
    (lambda: RandomSearch(SPACE, seed=True), "seed: expected a non-negative integer, got True"),
    (lambda: RandomSearch(SPACE, failure_reward=float("nan")),
     "failure_reward: expected a finite number, got nan"),
    (lambda: check_feedback(True, "ok"),
     "feedback.reward: a finite number is required for status 'ok', got True"),
    (lambda: check_feedback("0.5", "ok"),
     "feedback.reward: a finite number is required for status 'ok', got '0.5'"),
    (lambda: check_feedback(0.5, "crashed"),
     "feedback.status: 'crashed' is not one of ('ok', 'failed', 'infeasible')"),
    (lambda: RandomSearch(SPACE).load_state_dict(RegularizedEvolution(SPACE).state_dict()),
     "state.kind: 'evolution' cannot be loaded into a random controller"),
    (lambda: RandomSearch(SPACE, seed=1).load_state_dict(RandomSearch(SPACE, seed=2).state_dict()),
     "state.seed: 2 differs from this controller's seed 1"),
    (lambda: EvolutionConfig(population_size=0), "population_size: must be >= 1, got 0"),
    (lambda: EvolutionConfig(4, 5), "tournament_size: must be in 1..population_size (4), got 5"),
    (lambda: EvolutionConfig(4, 0), "tournament_size: must be in 1..population_size (4), got 0"),
    (lambda: EvolutionConfig(crossover_prob=1.5), "crossover_prob: must be in [0, 1], got 1.5"),
    (lambda: EvolutionConfig(crossover_prob=-0.1), "crossover_prob: must be in [0, 1], got -0.1"),
    (lambda: PPOConfig(hidden=0), "hidden: expected a positive integer, got 0"),
    (lambda: PPOConfig(embed=2.5), "embed: expected a positive integer, got 2.5"),
    (lambda: PPOConfig(batch_size=True), "batch_size: expected a positive integer, got True"),
    (lambda: PPOConfig(epochs=-1), "epochs: expected a positive integer, got -1"),
    (lambda: PPOConfig(learning_rate=0), "learning_rate: must be > 0, got 0"),
    (lambda: PPOConfig(clip_eps=-0.2), "clip_eps: must be > 0, got -0.2"),
    (lambda: PPOConfig(temperature=0.0), "temperature: must be > 0, got 0.0"),
    (lambda: PPOConfig(explore=1), "explore: must be in [0, 1), got 1"),
    (lambda: PPOConfig(explore=-0.1), "explore: must be in [0, 1), got -0.1"),
    (lambda: PPOConfig(initial_bias=-1.0), "initial_bias: must be >= 0, got -1.0"),
    (lambda: PPOConfig(entropy_coef=-0.1), "entropy_coef: must be >= 0, got -0.1"),
    (lambda: PPOConfig(baseline_decay=1), "baseline_decay: must be in [0, 1), got 1"),
    (lambda: PPOConfig(baseline_decay=-0.5), "baseline_decay: must be in [0, 1), got -0.5"),
])
def test_every_checked_field_is_named_with_its_value(build, message):
    with pytest.raises(ValueError) as error:
        build()
    assert str(error.value) == message


def test_each_limit_itself_is_accepted():
    assert RandomSearch(SPACE, seed=0).seed == 0
    assert EvolutionConfig(1, 1, crossover_prob=1.0).population_size == 1
    assert EvolutionConfig(crossover_prob=0.0).crossover_prob == 0.0
    config = PPOConfig(hidden=1, embed=1, batch_size=1, epochs=1, entropy_coef=0.0,
                       baseline_decay=0.0, initial_bias=0.0, explore=0.0)
    assert (config.hidden, config.entropy_coef, config.baseline_decay) == (1, 0.0, 0.0)


def test_every_controller_defaults_to_seed_0():
    assert RandomSearch(SPACE).seed == RegularizedEvolution(SPACE).seed == 0
    assert PPOController(SPACE, SMALL_PPO).seed == 0


@pytest.mark.parametrize("kwargs, learned", [({}, 0.0), ({"failure_reward": -1.0}, -1.0)])
def test_failures_are_learned_with_the_failure_reward(kwargs, learned):
    """Failed and infeasible trials count `failure_reward`, 0 unless given."""
    genomes = [seed_genome(SPACE)]
    controller = Scripted(genomes, **kwargs)
    a, b = controller.propose(), controller.propose()
    controller.feedback(a.id, None, {"error": "oom"}, FAILED)
    controller.feedback(b.id, status=INFEASIBLE)
    assert [r for _, r in controller.learned] == [learned, learned]
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


def _best_two(**config):
    """An evolution whose population is the seed A (0.9) and a random genome B (0.7)."""
    a, b = seed_genome(SPACE), drive(RandomSearch(SPACE, seed=1), 1)[-1].genome
    controller = RegularizedEvolution(SPACE, EvolutionConfig(**config), seed=0,
                                      initial_genomes=(a, b))
    for reward in (0.9, 0.7):
        controller.feedback(controller.propose().id, reward)
    return controller, a, b


def _is_child_of(genome, parent, other):
    """One mutation (at most 4 decisions) from `parent`, farther from `other`."""
    return distance(genome, parent, SPACE)["total"] <= 4 < distance(genome, other, SPACE)["total"]


@pytest.mark.parametrize("average, children, a_wins", [
    (True, (0.6, 0.65), True),    # (0.9 + 0.6 + 0.65) / 3 = 0.717 > 0.7
    (True, (0.3, 0.3), False),    # (0.9 + 0.3 + 0.3) / 3 = 0.5 < 0.7
    (False, (0.3, 0.3), True),    # 0.9 > 0.7
])
def test_evolution_averages_a_member_with_its_children(average, children, a_wins):
    """A scores 0.9 and B 0.7; A's two children report `children`, so averaged A counts the
    mean of the three, which decides the next tournament (the whole population); plain, A wins."""
    controller, a, b = _best_two(population_size=4, tournament_size=4,
                                 average_offspring=average)
    made = [controller.propose() for _ in children]
    assert all(_is_child_of(p.genome, a, b) for p in made)
    for proposal, reward in zip(made, children):
        controller.feedback(proposal.id, reward)
    winner, other = (a, b) if a_wins else (b, a)
    for _ in range(5):
        assert _is_child_of(controller.propose().genome, winner, other)


@pytest.mark.parametrize("crossover_prob", [0.0, 1.0])
def test_evolution_crosses_the_two_best_of_a_tournament_of_two(crossover_prob):
    """At crossover_prob 1 every child mixes the two members (far from both: the seed and a
    random genome differ in most decisions); at 0 it is one mutation from the better one."""
    controller, a, b = _best_two(population_size=2, tournament_size=2,
                                 crossover_prob=crossover_prob)
    for _ in range(5):
        child = controller.propose().genome
        if crossover_prob:
            assert min(distance(child, parent, SPACE)["total"] for parent in (a, b)) > 4
        else:
            assert _is_child_of(child, a, b)


@pytest.mark.parametrize("failure_reward, a_wins", [(0.0, True), (-1.0, False)])
def test_evolution_ranks_a_failure_at_the_failure_reward(failure_reward, a_wins):
    """A fails and B scores -0.5: A counts `failure_reward` in the tournament."""
    a, b = seed_genome(SPACE), drive(RandomSearch(SPACE, seed=1), 1)[-1].genome
    controller = RegularizedEvolution(SPACE, EvolutionConfig(2, 2), seed=0,
                                      initial_genomes=(a, b), failure_reward=failure_reward)
    first, second = controller.propose(), controller.propose()
    controller.feedback(first.id, status=FAILED)
    controller.feedback(second.id, -0.5)
    winner, other = (a, b) if a_wins else (b, a)
    for _ in range(5):
        assert _is_child_of(controller.propose().genome, winner, other)


def test_evolution_population_ages_out_oldest():
    """The last 4 results stay, each member with an id of its own (its children credit it
    alone)."""
    controller = RegularizedEvolution(SPACE, EvolutionConfig(4, 2), seed=0, initial_genomes=())
    proposals = [controller.propose() for _ in range(6)]
    for p in proposals:
        controller.feedback(p.id, reward_of(p.genome))
    assert [m[0] for m in controller.population] == [p.genome for p in proposals[2:]]
    assert len({member_id for *_, member_id in controller.population}) == 4


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
    # The learned state too (a PPO baseline, say, moves the samples only after a while).
    state = json_round_trip(original.state_dict())
    assert json_round_trip(restored.state_dict()) == state == json_round_trip(replayed.state_dict())


def test_replay_rejects_a_ledger_of_another_seed():
    ledger = []
    drive(RandomSearch(SPACE, seed=1), 3, ledger)
    with pytest.raises(ValueError, match=r"history\[0\]"):
        RandomSearch(SPACE, seed=2, initial_genomes=()).replay(ledger)


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
        (2, dict(ledger[2], id="random-7"), ValueError,
         r"history\[2\]: the controller proposes 'random-2' with another genome than the "
         r"ledger's 'random-7'; was the ledger written with another seed or configuration\?"),
    ]:
        history = ledger[:index] + [record] + ledger[index + 1:]
        with pytest.raises(error, match=message):
            RandomSearch(SPACE, seed=1).replay(history)


def test_decode_tree_rejects_arrays_that_do_not_fit():
    """Leaves come back exactly (a Fortran-ordered one too); a template they do not fit is
    named with its leaves' shapes."""
    tree = {"a": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
            "b": {"c": np.int32(7)}}
    leaves = encode_tree(tree)
    back = decode_tree(tree, json_round_trip(leaves))
    assert back["b"]["c"].dtype == np.int32 and back["b"]["c"].shape == ()
    assert back["a"].dtype == np.float32
    np.testing.assert_array_equal(back["a"], [[0, 1, 2], [3, 4, 5]])
    for template, fit in [({"a": np.zeros(4), "b": {"c": 0}}, "2 leaves with shapes [(4,), ()]"),
                          ({"a": np.zeros((2, 3))}, "1 leaves with shapes [(2, 3)]"),
                          ({"a": np.zeros((2, 3)), "b": {"c": 0, "d": 0}},
                           "3 leaves with shapes [(2, 3), (), ()]")]:
        with pytest.raises(ValueError) as error:
            decode_tree(template, leaves)
        assert str(error.value) == f"state: 2 encoded arrays do not fit a tree of {fit}"


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_state_is_plain_json_data(name):
    """Fresh and after some trials."""
    controller = FACTORIES[name](SPACE, 0)
    for steps in (0, 10):
        drive(controller, steps)
        state = controller.state_dict()
        assert json_round_trip(state) == state
    assert dataclasses.is_dataclass(controller.propose())


def test_records_hold_what_replay_reads():
    proposal = RandomSearch(SPACE).propose()
    assert proposal_record(proposal) == {"id": "random-0", "genome": seed_genome(SPACE).to_dict()}
    assert result_record("random-0", 0.5) == {"id": "random-0", "status": "ok", "reward": 0.5,
                                              "metrics": {}}


@pytest.mark.parametrize("full", [True, False])
def test_replay_accepts_combined_sequential_records(full):
    """A record with a genome and a result, in full or with only the genome and reward (the id
    is then the controller's own, the status ok)."""
    original = RegularizedEvolution(SPACE, EvolutionConfig(4, 2), seed=2)
    ledger = []
    for _ in range(10):
        proposal = original.propose()
        record = {"genome": proposal.genome.to_dict(), "reward": reward_of(proposal.genome)}
        if full:
            record.update(id=proposal.id, metrics={}, status="ok")
        original.feedback(proposal.id, record["reward"])
        ledger.append(record)
    replayed = RegularizedEvolution(SPACE, EvolutionConfig(4, 2), seed=2)
    replayed.replay(ledger)
    assert drive(replayed, 10) == drive(original, 10)

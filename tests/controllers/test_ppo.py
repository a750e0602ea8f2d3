"""The PPO controller: masked decisions, learning, and its jitted programs."""

import dataclasses

import jax
import numpy as np
import pytest

from controllers import PPOController
from controllers.decision_table import OUTPUT, PARENT2, decision_table
from controllers.ppo_policy import policy_program
from controllers.interface import FAILED, OK
from search_space import (ADJUSTMENTS, CONNECTIONS, ORDER, SPACES, decode, distance, random_genome,
                          seed_genome, validate_genome)
from tests.controllers.helpers import SMALL_PPO, SPACE, reward_of

TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"  # jax.monitoring: a function traced


def test_ppo_increases_the_expected_reward():
    """0.370 -> 0.579 over 40 updates; one clipped ratio for the whole sequence instead of one
    per decision reaches 0.529 (+0.158)."""
    controller = PPOController(SPACE, SMALL_PPO, seed=0, initial_genomes=())
    rewards = []
    for _ in range(320):
        proposal = controller.propose()
        rewards.append(reward_of(proposal.genome))
        controller.feedback(proposal.id, rewards[-1])
    assert controller.num_updates == 40
    first, last = np.mean(rewards[:40]), np.mean(rewards[-40:])
    assert last > first + 0.19, (first, last)


def test_ppo_samples_whole_batches_per_policy_call_without_retracing():
    """The policy's programs, built afresh (earlier tests may have traced the cached ones),
    are traced once each over three sampled batches and three updates, alone or after other
    tests."""
    policy_program.cache_clear()
    traced = []

    def on_event(event, duration, **kwargs):
        if event == TRACE_EVENT:
            traced.append(kwargs.get("fun_name"))

    jax.monitoring.register_event_duration_secs_listener(on_event)
    try:
        controller = PPOController(SPACE, SMALL_PPO, seed=1)
        assert controller.program is policy_program(SPACE, SMALL_PPO)
        for _ in range(3 * SMALL_PPO.batch_size + 1):
            proposal = controller.propose()
            controller.feedback(proposal.id, reward_of(proposal.genome))
    finally:
        jax.monitoring.unregister_event_duration_listener(on_event)
    assert (controller.num_batches, controller.num_updates) == (3, 3)  # after the seed genome
    # JAX's own helpers (e.g. the random bits' fold-in) are traced here too when no earlier test
    # traced them: each at most once, like the policy's three programs.
    assert sorted(set(traced) & {"init", "sample", "update"}) == ["init", "sample", "update"]
    assert len(traced) == len(set(traced)), traced


def test_decision_table_covers_only_searched_groups():
    # Level, type and two parents per intermediate block; label, type and parents per output.
    assert decision_table(SPACES["spinenet-49"]).num_steps == 10 * 4 + 5 * 4
    assert decision_table(SPACES["r0-sp53"]).num_steps == 15 * 3  # order and two parents
    with pytest.raises(ValueError, match="searched"):
        decision_table(dataclasses.replace(SPACE, name="empty", searched=frozenset()))


def test_sampled_actions_decode_to_valid_genomes():
    """Each decision's log-probability comes back on its own: 0 where one choice is left (the
    first block's second parent, step 3, and the last output label, step 56), at most 0
    elsewhere."""
    table = decision_table(SPACE)
    program = policy_program(SPACE, SMALL_PPO)
    params, _ = program.init(jax.random.PRNGKey(0), np.zeros((table.num_steps, table.vocab)))
    actions, logp = jax.device_get(program.sample(params, jax.random.PRNGKey(1)))
    for row in actions:
        validate_genome(table.decode(row.tolist()), SPACE)
    assert logp.shape == (SMALL_PPO.batch_size, table.num_steps)
    forced = [3, 56]
    assert [table.kinds[t] for t in forced] == [PARENT2, OUTPUT]
    assert np.all(logp[:, forced] > -1e-6) and np.all(logp <= 0)
    assert np.all(logp[:, :3] < 0) and np.all(np.isfinite(logp.sum(1)))


def test_the_untrained_policy_is_small_and_uniform():
    """Token embeddings for the vocabulary plus the start token, one step embedding and bias
    row per decision, an LSTM `hidden` wide; its small output layer leaves the first decision
    uniform over its allowed choices (without a prior)."""
    table = decision_table(SPACE)
    program = policy_program(SPACE, SMALL_PPO)
    params, _ = program.init(jax.random.PRNGKey(0), np.zeros((table.num_steps, table.vocab)))
    params = params["params"]
    assert params["token_embed"]["embedding"].shape == (table.vocab + 1, SMALL_PPO.embed)
    assert params["step_embed"]["embedding"].shape == (table.num_steps, SMALL_PPO.embed)
    assert params["step_bias"].shape == (table.num_steps, table.vocab)
    assert params["head"]["kernel"].shape == (SMALL_PPO.hidden, table.vocab)
    _, logp = jax.device_get(program.sample({"params": params}, jax.random.PRNGKey(1)))
    np.testing.assert_allclose(logp[:, 0], -np.log(table.static_mask[0].sum()), atol=0.01)


# The two spaces, and one where the order is fixed (each position's level from its own block).
TABLE_SPACES = [*(SPACES[name] for name in sorted(SPACES)), dataclasses.replace(
    SPACE, name="fixed-order", searched=frozenset({ADJUSTMENTS, CONNECTIONS}))]
# And one whose connections are fixed (each position keeps its own block's parents).
FIXED_CONNECTIONS = dataclasses.replace(SPACE, name="fixed-connections",
                                        searched=frozenset({ORDER, ADJUSTMENTS}))


@pytest.mark.parametrize("space", TABLE_SPACES + [FIXED_CONNECTIONS], ids=lambda space: space.name)
def test_decoding_a_genomes_actions_builds_its_spec(space):
    rng = np.random.default_rng(0)
    table = decision_table(space)
    for genome in [seed_genome(space)] + [random_genome(space, rng) for _ in range(20)]:
        assert decode(table.decode(table.encode(genome)), space) == decode(genome, space)


@pytest.mark.parametrize("space", TABLE_SPACES, ids=lambda space: space.name)
def test_every_sampled_level_sequence_is_matchable(space):
    """An untrained policy's 4 x 64 samples: the levels chosen position by position always fit
    distinct intermediate blocks (decoding raises otherwise), and they spread over every level
    a block can take."""
    table = decision_table(space)
    config = dataclasses.replace(SMALL_PPO, batch_size=64)
    program = policy_program(space, config)
    params, _ = program.init(jax.random.PRNGKey(0), np.zeros((table.num_steps, table.vocab)))
    seen = set()
    for k in range(4):
        for row in jax.device_get(program.sample(params, jax.random.PRNGKey(k)))[0]:
            genome = table.decode(row.tolist())
            validate_genome(genome, space)
            seen.update(b.level for b in decode(genome, space).blocks[:space.num_intermediate])
    assert seen == set(table.levels)


def _first_samples(config, initial_genomes, count=8):
    controller = PPOController(SPACE, config, seed=0, initial_genomes=initial_genomes)
    for genome in initial_genomes:
        assert controller.propose().genome == genome
    return controller, [controller.propose() for _ in range(count)]


def test_initial_bias_starts_the_policy_at_the_initial_genomes():
    """Bias 40 shared by the seed and a mutant that differs from it in one parent: every
    decision keeps the seed's choice (logit 40 or 20 against 0), except that parent, where
    either's (20 each) is drawn; without bias the first samples are uniform, far away."""
    seed = seed_genome(SPACE)
    mutant = dataclasses.replace(seed, parents=seed.parents[:7] + ((5, 8),) + seed.parents[8:])
    plain = dataclasses.replace(SMALL_PPO, explore=0.0)
    controller, samples = _first_samples(dataclasses.replace(plain, initial_bias=40.0),
                                         (seed, mutant), 16)
    specs = [decode(p.genome, SPACE) for p in samples]
    assert set(specs) == {decode(seed, SPACE), decode(mutant, SPACE)}
    bias = np.asarray(controller.params["params"]["step_bias"])  # 40 per decision in all
    assert (bias.max(), bias.sum()) == (40.0, 40.0 * controller.program.table.num_steps)
    _, samples = _first_samples(dataclasses.replace(plain, initial_bias=0.0), (seed,))
    assert min(distance(p.genome, seed, SPACE)["total"] for p in samples) > 20


def test_initial_bias_is_shared_correctly_rounded():
    """Bias 3 over five initial genomes, three of which share a parent the other two do not:
    each choice weighs 3 * k / 5 rounded once to float32 (1.8 for three, not the 1.8000001 of
    three float32 additions of 0.6)."""
    seed = seed_genome(SPACE)

    def moved(genome, block, parents):
        return dataclasses.replace(
            genome, parents=genome.parents[:block] + (parents,) + genome.parents[block + 1:])

    shared = moved(seed, 7, (5, 8))
    genomes = (seed, shared, moved(shared, 9, (7, 10)), moved(shared, 10, (8, 11)),
               moved(seed, 11, (9, 12)))
    assert len(set(genomes)) == 5 and all(validate_genome(g, SPACE) is None for g in genomes)
    config = dataclasses.replace(SMALL_PPO, initial_bias=3.0)
    controller = PPOController(SPACE, config, seed=0, initial_genomes=genomes)
    table = controller.program.table
    counts = np.zeros((table.num_steps, table.vocab))
    for genome in genomes:
        counts[np.arange(table.num_steps), table.encode(genome)] += 1
    bias = np.asarray(controller.params["params"]["step_bias"])
    np.testing.assert_array_equal(bias, (3.0 * counts / 5).astype(np.float32))
    assert np.float32(1.8) in bias


def test_explore_puts_a_floor_under_every_choice():
    """A policy held at the seed (bias 40): without exploration every sample is the seed and
    every other choice has log-probability about -40; at explore 0.3 no choice is below
    log(0.3 / 16) (16: the most choices a decision has) and samples leave the seed."""
    seed = seed_genome(SPACE)
    for explore in (0.0, 0.3):
        config = dataclasses.replace(SMALL_PPO, initial_bias=40.0, explore=explore)
        controller, samples = _first_samples(config, (seed,))
        far = [distance(p.genome, seed, SPACE)["total"] for p in samples]
        logps = [lp for p in samples for lp in controller.outstanding[p.id]["extra"]["logp"]]
        if explore:
            assert min(far) > 0 and min(logps) >= np.log(0.3 / 16) - 1e-5
        else:
            assert max(far) == 0 and min(logps) > -1e-6  # the seed's choices only


def test_temperature_divides_the_logits():
    """The policy held at the seed (bias 40, no exploration) at temperature 40: the seed's
    choices weigh 40 / 40 = 1 against 0, probability e / (e + n - 1) among n choices, so the
    samples leave the seed and no choice falls below log(1 / (e + 15)) (n is at most 16)."""
    seed = seed_genome(SPACE)
    config = dataclasses.replace(SMALL_PPO, initial_bias=40.0, explore=0.0, temperature=40.0)
    controller, samples = _first_samples(config, (seed,))
    assert min(distance(p.genome, seed, SPACE)["total"] for p in samples) > 0
    logps = [lp for p in samples for lp in controller.outstanding[p.id]["extra"]["logp"]]
    assert min(logps) >= -np.log(np.e + 15) - 0.01


@pytest.mark.parametrize("kwargs, rewards, advantages, baseline", [
    ({"initial_genomes": ()}, (0.5, 0.8, 0.2), [0.0, 0.3, -0.315], 0.95 * 0.515 + 0.05 * 0.2),
    # The seed's reward only moves the baseline: no sample of the policy to learn from.
    ({}, (0.5, 0.8, 0.2), [0.3, -0.315], 0.95 * 0.515 + 0.05 * 0.2),
    # A failure counts 0, or the given failure_reward: baselines 0.475 and 0.425.
    ({"initial_genomes": ()}, (0.5, None, 0.2), [0.0, -0.5, -0.275], 0.95 * 0.475 + 0.05 * 0.2),
    ({"initial_genomes": (), "failure_reward": -1.0}, (0.5, None, 0.2), [0.0, -1.5, -0.225],
     0.95 * 0.425 + 0.05 * 0.2),
])
def test_advantages_are_rewards_less_the_moving_baseline(kwargs, rewards, advantages, baseline):
    """At decay 0.95: the first reward has no baseline yet (advantage 0), the second is measured
    against the first, the third against 0.95 times the first plus 0.05 times the second."""
    controller = PPOController(SPACE, SMALL_PPO, seed=0, **kwargs)
    for reward in rewards:
        status = OK if reward is not None else FAILED
        controller.feedback(controller.propose().id, reward, status=status)
    assert [advantage for *_, advantage in controller.buffer] == pytest.approx(advantages)
    assert controller.baseline == pytest.approx(baseline)

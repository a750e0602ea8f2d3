"""The PPO controller: masked decisions, learning, and its jitted programs."""

import dataclasses

import jax
import numpy as np
import pytest

from controllers import PPOController
from controllers.decision_table import BLOCK_FN, LEVEL, OFFSET, OUTPUT, PARENT1, decision_table
from controllers.ppo_policy import policy_program
from search_space import SPACES, decode, random_genome, seed_genome, validate_genome
from tests.controllers_helpers import SMALL_PPO, SPACE, reward_of

TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"  # jax.monitoring: a function traced


def test_ppo_increases_the_expected_reward():
    controller = PPOController(SPACE, SMALL_PPO, seed=0, initial_genomes=())
    rewards = []
    for _ in range(320):
        proposal = controller.propose()
        rewards.append(reward_of(proposal.genome))
        controller.feedback(proposal.id, rewards[-1])
    assert controller.num_updates == 40
    first, last = np.mean(rewards[:40]), np.mean(rewards[-40:])
    assert last > first + 0.1, (first, last)


def test_ppo_samples_whole_batches_per_policy_call_without_retracing():
    """The policy's programs, built afresh (earlier tests may have traced the cached ones),
    are traced once each over three sampled batches and three updates."""
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
    assert sorted(traced) == ["init", "sample", "update"]


def test_decision_table_covers_only_searched_groups():
    assert decision_table(SPACES["spinenet-49"]).num_steps == 10 * 5 + 5 * 4
    assert decision_table(SPACES["r0-sp53"]).num_steps == 15 * 3  # order and two parents
    with pytest.raises(ValueError, match="searched"):
        decision_table(dataclasses.replace(SPACE, name="empty", searched=frozenset()))


def test_sampled_actions_decode_to_valid_genomes():
    table = decision_table(SPACE)
    program = policy_program(SPACE, SMALL_PPO)
    params, _ = program.init(jax.random.PRNGKey(0))
    actions, logp = program.sample(params, jax.random.PRNGKey(1))
    for row in np.asarray(actions):
        validate_genome(table.decode(row.tolist()), SPACE)
    assert np.all(np.isfinite(np.asarray(logp))) and np.all(np.asarray(logp) < 0)


def _actions(genome, space):
    """The policy's action ids for `genome`, step by step: the base-level index of each
    intermediate position, the output label, the offset's and the type's index, the parents."""
    table, n = decision_table(space), space.num_intermediate
    labels = genome.intermediate_order + tuple(n + o for o in genome.output_order)
    actions = []
    for kind, p in zip(table.kinds, table.positions):
        label = labels[p]
        if kind == LEVEL:
            local = table.levels.index(space.intermediate_base_levels[label])
        elif kind == OUTPUT:
            local = label - n
        elif kind == OFFSET:
            local = space.level_offsets.index(genome.level_offsets[label])
        elif kind == BLOCK_FN:
            local = space.block_fns.index(genome.block_fns[label])
        else:
            local = genome.parents[p][kind - PARENT1]
        actions.append(table.starts[kind] + local)
    return actions


@pytest.mark.parametrize("name", sorted(SPACES))
def test_decoding_a_genomes_actions_builds_its_spec(name):
    space = SPACES[name]
    rng = np.random.default_rng(0)
    for genome in [seed_genome(space)] + [random_genome(space, rng) for _ in range(20)]:
        assert decode(decision_table(space).decode(_actions(genome, space)), space) == \
            decode(genome, space)

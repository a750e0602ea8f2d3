"""The PPO controller: masked decisions, learning, and its jitted programs."""

import numpy as np
import pytest

from controllers import PPOController
from controllers.decision_table import decision_table
from controllers.ppo_policy import policy_program
from search_space import SPACES, validate_genome
from tests.controllers_helpers import SMALL_PPO, SPACE, reward_of


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
    controller = PPOController(SPACE, SMALL_PPO, seed=1)
    program = controller.program
    assert program is policy_program(SPACE, SMALL_PPO)
    for _ in range(3 * SMALL_PPO.batch_size + 1):
        proposal = controller.propose()
        controller.feedback(proposal.id, reward_of(proposal.genome))
    assert controller.num_batches == 3  # the ResNet-50 seed comes first, then 3 batches
    assert program.sample._cache_size() == 1 and program.update._cache_size() == 1


def test_decision_table_covers_only_searched_groups():
    assert decision_table(SPACES["spinenet-49"]).num_steps == 10 * 5 + 5 * 4
    assert decision_table(SPACES["r0-sp53"]).num_steps == 15 * 3  # order and two parents
    with pytest.raises(ValueError, match="searched"):
        import dataclasses
        decision_table(dataclasses.replace(SPACE, name="empty", searched=frozenset()))


def test_decoded_actions_are_valid_and_respect_masks():
    table = decision_table(SPACE)
    rng = np.random.default_rng(0)
    for _ in range(20):  # uniform choices among the static mask may break dynamic rules...
        actions = [int(rng.choice(np.flatnonzero(m))) for m in table.static_mask]
        try:
            validate_genome(table.decode(actions), SPACE)
        except (ValueError, IndexError):
            continue  # ...which is why the policy also masks dynamically; sampled ones never do
    program = policy_program(SPACE, SMALL_PPO)
    params, _ = program.init(__import__("jax").random.PRNGKey(0))
    actions, logp = program.sample(params, __import__("jax").random.PRNGKey(1))
    for row in np.asarray(actions):
        validate_genome(table.decode(row.tolist()), SPACE)
    assert np.all(np.isfinite(np.asarray(logp))) and np.all(np.asarray(logp) < 0)

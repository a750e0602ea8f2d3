"""bench/controllers.py: the reward noise is reproducible per seed and progress is judged by the
true reward."""

import importlib.util
from pathlib import Path

import pytest

from search_space import SPACES, builtin_spec, genome_from_spec

PATH = Path(__file__).resolve().parents[2] / "bench" / "controllers.py"
SPEC = importlib.util.spec_from_file_location("bench_controllers", PATH)
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)

SPACE = SPACES["spinenet-49"]
TARGET = genome_from_spec(builtin_spec("spinenet-49"), SPACE)


def test_noise_is_drawn_per_seed_in_order():
    draws = [[observe(0.5) for _ in range(5)]
             for observe in (bench.noisy_rewards(3, 0.02), bench.noisy_rewards(3, 0.02),
                             bench.noisy_rewards(4, 0.02))]
    assert draws[0] == draws[1] and draws[0] != draws[2]
    assert all(abs(d - 0.5) < 0.1 for d in draws[0]) and len(set(draws[0])) == 5
    assert [bench.noisy_rewards(3, 0.0)(r) for r in (0.25, 0.5)] == [0.25, 0.5]


@pytest.mark.parametrize("name", ["evolution", "random"])
def test_a_noisy_run_repeats_exactly_and_reports_true_rewards(name):
    config = bench.controller_configs(["evolution.population_size=20",
                                       "evolution.tournament_size=10"]).get(name)
    runs = [bench.run_one(name, SPACE, TARGET, 5, 120, True, noise, config, (100,))
            for noise in (0.05, 0.05, 0.0)]
    for run in runs:
        run.pop("ms_per_sample")
    assert runs[0] == runs[1]
    # The true reward is a share of the 60 decisions, whatever noise the controller saw.
    assert round(runs[0]["best_reward"] * 60, 9) == int(round(runs[0]["best_reward"] * 60))
    assert runs[0]["best_reward_at"]["100"] <= runs[0]["best_reward"]
    if name == "evolution":  # the noise steers what evolution proposes; random ignores it
        assert runs[0]["best_reward_at"] != runs[2]["best_reward_at"] or \
            runs[0]["best_at"] != runs[2]["best_at"]
    else:
        assert runs[0] == runs[2]


def test_settings_must_name_a_controller_field():
    assert bench.controller_configs(["ppo.batch_size=32"])["ppo"].batch_size == 32
    with pytest.raises(ValueError, match="expected NAME.FIELD=VALUE"):
        bench.controller_configs(["ppo.batchsize=32"])


@pytest.mark.parametrize("seed", [0, 3])
def test_initial_mutants_are_those_a_search_proposes(seed):
    from nas.config import load_config
    from nas.stack import initial_genomes

    config = load_config(assignments=[f"controller.seed={seed}", "controller.initial_mutants=9"])
    assert bench.initial_genomes(SPACE, seed, 9) == initial_genomes(config, SPACE)
    assert len(bench.initial_genomes(SPACE, seed, 0)) == 1

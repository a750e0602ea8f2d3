"""The search's stack built from its config: each controller starts from the configured initial
genomes and draws with the configured seed, and the costs it judges are those of the detector
the proxy trains."""

import pytest

from controllers import (Constraints, Dedup, Objective, PPOController, RandomSearch,
                         RegularizedEvolution)
from nas import stack as stack_module
from nas.config import load_config
from nas.stack import build_stack, initial_genomes, proxy_cost_fn, similarity_target
from proxy_tasks.models import count_variables
from proxy_tasks.presets import get_preset
from proxy_tasks.trial import build_proxy_model
from search_space import (builtin_spec, canonical_hash, decode, genome_from_spec, get_space,
                          seed_genome, write_spec)

SPACE = get_space("spinenet-49")


def _proposals(count, *sets):
    config = load_config(assignments=sets)
    stack = build_stack(config, SPACE, config.proxy_config())
    return [stack.propose().genome for _ in range(count)]


@pytest.mark.parametrize("controller", ["evolution", "random"])
def test_every_controller_proposes_the_initial_genomes_first(controller):
    first = _proposals(2, f"controller.name={controller}", "controller.initial_mutants=0",
                       "controller.initial=[resnet50-seed, spinenet-49]")
    assert first == [seed_genome(SPACE), genome_from_spec(builtin_spec("spinenet-49"), SPACE)]


@pytest.mark.parametrize("controller", ["evolution", "random"])
def test_the_configured_seed_decides_what_is_drawn(controller):
    sets = (f"controller.name={controller}", "controller.initial=[]", "controller.initial_mutants=0")
    one = _proposals(3, *sets, "controller.seed=1")
    assert one == _proposals(3, *sets, "controller.seed=1")
    assert one != _proposals(3, *sets, "controller.seed=2")


@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_costs_are_the_trained_detectors(preset):
    """Counted on the Flax model the proxy builds (its 10 classes, its head and width)."""
    proxy = get_preset(preset)
    spec = decode(seed_genome(SPACE), SPACE)
    params, _ = count_variables(build_proxy_model(spec, proxy), proxy.image_size, proxy.image_size)
    assert proxy_cost_fn(SPACE, proxy)(seed_genome(SPACE))["params"] == params


def test_mutants_of_no_initial_genome_are_refused():
    config = load_config(assignments=["controller.initial=[]", "controller.initial_mutants=2"])
    with pytest.raises(ValueError) as error:
        build_stack(config, SPACE, config.proxy_config())
    assert str(error.value) == "controller.initial_mutants: mutants need an initial genome"


def _layers(stack):
    """The stack from the outside in: each middleware's `inner`, down to the controller."""
    layers = [stack]
    while hasattr(layers[-1], "inner"):
        layers.append(layers[-1].inner)
    return layers


@pytest.mark.parametrize("name, controller_type, section", [
    ("evolution", RegularizedEvolution, "evolution"), ("ppo", PPOController, "ppo"),
    ("random", RandomSearch, None)])
def test_every_setting_reaches_its_layer(name, controller_type, section):
    """Each section's values, none of them a default, land in the layer that uses them."""
    config = load_config(assignments=[
        f"controller.name={name}", "controller.seed=5", "controller.failure_reward=-1.5",
        "controller.initial_mutants=0", "controller.evolution.population_size=150",
        "controller.ppo.batch_size=3", "constraints.max_flops=9e9", "constraints.max_params=8e7",
        "objective.name=mnas", "objective.target_flops=2e9", "objective.weight=-0.1",
        "objective.mode=always"])
    proxy = config.proxy_config()
    infeasible_hook, duplicate_hook = [].append, [].append
    stack = build_stack(config, SPACE, proxy, on_infeasible=infeasible_hook,
                        on_duplicate=duplicate_hook)
    dedup, objective, constraints, controller = _layers(stack)
    assert [type(layer) for layer in _layers(stack)] == [Dedup, Objective, Constraints,
                                                         controller_type]
    assert dedup.on_duplicate is duplicate_hook
    assert (objective.target_flops, objective.weight, objective.mode) == (2e9, -0.1, "always")
    assert constraints.limits == {"flops": 9e9, "params": 8e7}
    assert constraints.on_infeasible is infeasible_hook
    assert (controller.seed, controller.failure_reward) == (5, -1.5)
    if section is not None:
        assert controller.config == getattr(config.controller, section)
    seed, trained = seed_genome(SPACE), proxy_cost_fn(SPACE, proxy)(seed_genome(SPACE))
    assert objective.cost_fn(seed) == constraints.cost_fn(seed) == trained


def test_the_ap_objective_adds_no_layer():
    config = load_config(assignments=["objective.name=ap"])
    assert [type(layer) for layer in _layers(build_stack(config, SPACE, config.proxy_config()))] \
        == [Dedup, Constraints, RegularizedEvolution]


def test_an_initial_model_may_be_a_spec_file(tmp_path):
    path = tmp_path / "net.json"
    write_spec(builtin_spec("spinenet-49"), path)
    first = _proposals(1, f"controller.initial=[{path}]", "controller.initial_mutants=0")
    assert first == [genome_from_spec(builtin_spec("spinenet-49"), SPACE)]


UNKNOWN = ("'nope' is neither a built-in model (spinenet-49s, spinenet-49, spinenet-96, "
           "spinenet-143, spinenet-190, resnet50-seed) nor a spec file")


def test_an_unknown_initial_model_is_named_with_its_key():
    config = load_config(assignments=["controller.initial=[resnet50-seed, nope]"])
    with pytest.raises(ValueError) as error:
        build_stack(config, SPACE, config.proxy_config())
    assert str(error.value) == "controller.initial[1]: " + UNKNOWN


def test_an_unknown_similarity_target_is_named_with_its_key():
    config = load_config(assignments=["objective.name=similarity", "objective.target=nope"])
    with pytest.raises(ValueError) as error:
        similarity_target(config, SPACE)
    assert str(error.value) == "objective.target: " + UNKNOWN


def test_initial_mutants_differ_from_every_initial_genome(tmp_path):
    """The first mutant drawn for the seed alone, given as a second initial model, is not
    drawn again: the mutants exclude all initial genomes."""
    alone = initial_genomes(
        load_config(assignments=["controller.initial_mutants=1"]), SPACE)
    path = tmp_path / "mutant.json"
    write_spec(decode(alone[1], SPACE), path)
    genomes = initial_genomes(load_config(assignments=[
        f"controller.initial=[resnet50-seed, {path}]", "controller.initial_mutants=3"]), SPACE)
    hashes = {canonical_hash(decode(g, SPACE)) for g in genomes}
    assert len(genomes) == len(hashes) == 5


def test_too_few_distinct_mutants_are_refused(monkeypatch):
    """A space whose seed has fewer distinct single mutants than asked for (here: none)."""
    monkeypatch.setattr(stack_module, "distinct_mutants", lambda *args, **kwargs: [])
    config = load_config(assignments=["controller.initial_mutants=2"])
    with pytest.raises(ValueError) as error:
        build_stack(config, SPACE, config.proxy_config())
    assert str(error.value) == ("controller.initial_mutants: found only 0 distinct mutants of "
                                "'resnet50-seed', not 2")

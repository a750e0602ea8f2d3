"""The search's stack built from its config: each controller starts from the configured initial
genomes and draws with the configured seed, and the costs it judges are those of the detector
the proxy trains."""

import pytest

from nas.config import load_config
from nas.stack import build_stack, proxy_cost_fn
from proxy_tasks.models import count_variables
from proxy_tasks.presets import get_preset
from proxy_tasks.trial import build_proxy_model
from search_space import builtin_spec, decode, genome_from_spec, get_space, seed_genome

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

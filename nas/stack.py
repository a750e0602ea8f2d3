"""The controller stack a search runs: the configured controller inside Constraints, the
objective and Dedup, with costs of the proxy detector as trained."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from controllers import (Constraints, Dedup, Objective, PPOController, RandomSearch,
                         RegularizedEvolution, detector_cost_fn)
from controllers.costs import CostFn
from nas.config import SearchConfig
from proxy_tasks.presets import ProxyConfig
from proxy_tasks.trial import num_classes
from search_space import (BUILTIN_MODELS, Genome, ModelSize, SearchSpace, SpecError, builtin_spec,
                          distinct_mutants, genome_from_spec, read_spec)

SkipHook = Callable[[Dict], None]


def proxy_cost_fn(space: SearchSpace, proxy: ProxyConfig) -> CostFn:
    """Params and FLOPs of a genome's detector exactly as the proxy trains it."""
    size = ModelSize(proxy.scaling, proxy.head_convs, proxy.head_filters, proxy.image_size,
                     proxy.anchor_size)
    return detector_cost_fn(space, size, num_classes=num_classes(proxy))


def genome_of(name: str, space: SearchSpace, key: str) -> Genome:
    """The genome of a built-in model or spec file in `space`; errors name the config `key`."""
    if name in BUILTIN_MODELS:
        spec = builtin_spec(name)
    elif Path(name).is_file():
        spec = read_spec(name)
    else:
        raise ValueError(f"{key}: {name!r} is neither a built-in model "
                         f"({', '.join(BUILTIN_MODELS)}) nor a spec file")
    try:
        return genome_from_spec(spec, space)
    except SpecError as err:
        raise ValueError(f"{key}: {name!r} is not in the search space {space.name!r}: "
                         f"{err}") from None


def similarity_target(config: SearchConfig, space: SearchSpace) -> Optional[Genome]:
    """The genome the `similarity` objective compares with (None for other objectives)."""
    if config.objective.name != "similarity":
        return None
    return genome_of(config.objective.target, space, "objective.target")


def initial_genomes(config: SearchConfig, space: SearchSpace) -> Tuple[Genome, ...]:
    """The configured initial models as genomes of `space`, then distinct single mutants of
    the first (drawn with the controller's seed)."""
    genomes = [genome_of(name, space, f"controller.initial[{index}]")
               for index, name in enumerate(config.controller.initial)]
    wanted = config.controller.initial_mutants
    if not wanted:
        return tuple(genomes)
    if not genomes:
        raise ValueError("controller.initial_mutants: mutants need an initial genome")
    rng = np.random.default_rng([config.controller.seed, 1])
    mutants = distinct_mutants(genomes[0], space, wanted, rng, exclude=genomes)
    if len(mutants) < wanted:
        raise ValueError(f"controller.initial_mutants: found only {len(mutants)} distinct "
                         f"mutants of {config.controller.initial[0]!r}, not {wanted}")
    return tuple(genomes + mutants)


def build_stack(config: SearchConfig, space: SearchSpace, proxy: ProxyConfig,
                on_infeasible: Optional[SkipHook] = None,
                on_duplicate: Optional[SkipHook] = None) -> Dedup:
    """Dedup(Objective(Constraints(controller))): duplicates are never trained twice, the
    objective sees AP and FLOPs, over-budget genomes are rejected before training."""
    section = config.controller
    common = dict(seed=section.seed, initial_genomes=initial_genomes(config, space),
                  failure_reward=section.failure_reward)
    if section.name == "evolution":
        controller = RegularizedEvolution(space, section.evolution, **common)
    elif section.name == "ppo":
        controller = PPOController(space, section.ppo, **common)
    else:
        controller = RandomSearch(space, **common)
    cost_fn = proxy_cost_fn(space, proxy)
    stack = Constraints(controller, config.constraints.max_flops, config.constraints.max_params,
                        cost_fn=cost_fn, on_infeasible=on_infeasible)
    objective = config.objective
    if objective.name == "mnas":
        stack = Objective(stack, objective.target_flops, objective.weight, objective.mode, cost_fn)
    return Dedup(stack, on_duplicate=on_duplicate)

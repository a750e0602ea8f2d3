"""Search configs: nested sections read from YAML (safe loader) or set with dotted `--set
key=value`, checked against the dataclasses below before anything runs."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

import yaml

from controllers import EvolutionConfig, PPOConfig
from controllers.objective import ABOVE, ALWAYS
from proxy_tasks.presets import PRESETS, ProxyConfig, as_assignment, get_preset, with_overrides
from search_space import SPACES

CONTROLLERS = ("random", "evolution", "ppo")
OBJECTIVES = ("ap", "mnas", "similarity")
PLACEMENTS = ("STRICT_SPREAD", "SPREAD", "PACK", "STRICT_PACK")


def _choice(field: str, value, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{field}: {value!r} is not one of {', '.join(map(str, allowed))}")


def _at_least(field: str, value, low) -> None:
    if not value >= low:
        raise ValueError(f"{field}: must be >= {low}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class ControllerSection:
    """The controller, its seed, the genomes it proposes first, and each kind's settings.

    initial: built-in model names or spec files, proposed first in this order;
    initial_mutants: single-mutation neighbours of the first initial genome proposed next, so a
    small budget starts around the seed instead of at random."""

    name: str = "evolution"
    seed: int = 0
    initial: Tuple[str, ...] = ("resnet50-seed",)
    initial_mutants: int = 2
    failure_reward: float = 0.0
    # The default search's small budget: the first population is the seed and its mutants.
    evolution: EvolutionConfig = EvolutionConfig(population_size=3, tournament_size=2)
    ppo: PPOConfig = PPOConfig()

    def __post_init__(self):
        _choice("name", self.name, CONTROLLERS)
        _at_least("seed", self.seed, 0)
        _at_least("initial_mutants", self.initial_mutants, 0)


@dataclasses.dataclass(frozen=True)
class ObjectiveSection:
    """`ap`: the reward is the proxy AP; `mnas`: AP * (FLOPs / target_flops) ** weight, FLOPs
    of the proxy detector as trained; `similarity`: no training, the reward is the share of
    decisions a genome has in common with `target` (a check that the controller can find a
    known architecture; each check takes `delay_s`, a stand-in for training time)."""

    name: str = "ap"
    target_flops: Optional[float] = None
    weight: float = -0.07
    mode: str = ABOVE
    target: str = "spinenet-49"
    delay_s: float = 0.0

    def __post_init__(self):
        _choice("name", self.name, OBJECTIVES)
        _choice("mode", self.mode, (ABOVE, ALWAYS))
        _at_least("delay_s", self.delay_s, 0)
        if self.name == "mnas" and self.target_flops is None:
            raise ValueError("target_flops: the mnas objective needs a FLOPs target")
        if self.target_flops is not None and not self.target_flops > 0:
            raise ValueError(f"target_flops: must be > 0, got {self.target_flops!r}")
        if not self.weight <= 0:
            raise ValueError(f"weight: must be <= 0, got {self.weight!r}")


@dataclasses.dataclass(frozen=True)
class ConstraintsSection:
    """Hard limits on the proxy detector's FLOPs and parameters, checked before training."""

    max_flops: Optional[float] = None
    max_params: Optional[float] = None

    def __post_init__(self):
        for field in ("max_flops", "max_params"):
            value = getattr(self, field)
            if value is not None and not value > 0:
                raise ValueError(f"{field}: must be > 0, got {value!r}")


@dataclasses.dataclass(frozen=True)
class ProxySection:
    """The proxy preset, changes to its fields, and the seeds each architecture trains with (the
    reward is the mean over them).

    The section takes ProxyConfig's fields directly (`epochs: 12`, `--set proxy.epochs=12`) and
    records them in `set` as `nas proxy --set` takes them (`epochs=12`), after any `set` it had:
    the form every run folder holds and the reports read."""

    preset: str = "default"
    set: Tuple[str, ...] = ()
    seeds: Tuple[int, ...] = (0,)

    def __post_init__(self):
        _choice("preset", self.preset, tuple(PRESETS))
        if not self.seeds:
            raise ValueError("seeds: at least one seed is needed")
        for seed in self.seeds:
            _at_least("seeds", seed, 0)
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: repeated seeds in {list(self.seeds)}")
        try:
            self.config()
        except ValueError as err:
            raise ValueError(f"set: {err}") from None

    def config(self) -> ProxyConfig:
        return with_overrides(get_preset(self.preset), self.set)


@dataclasses.dataclass(frozen=True)
class ResourcesSection:
    """What one trial gets: per host CPUs, GPUs and TPU chips, and its number of hosts (one
    process each, placed by `placement`)."""

    cpus: float = 1.0
    gpus: float = 0.0
    tpus: int = 0
    hosts: int = 1
    placement: str = "STRICT_SPREAD"

    def __post_init__(self):
        if not self.cpus > 0:
            raise ValueError(f"cpus: must be > 0, got {self.cpus!r}")
        _at_least("gpus", self.gpus, 0)
        _at_least("tpus", self.tpus, 0)
        _at_least("hosts", self.hosts, 1)
        _choice("placement", self.placement, PLACEMENTS)


@dataclasses.dataclass(frozen=True)
class EarlyStoppingSection:
    """ASHA on the per-epoch AP (each epoch is then evaluated); off by default."""

    enabled: bool = False
    grace_epochs: int = 1
    reduction_factor: int = 3

    def __post_init__(self):
        _at_least("grace_epochs", self.grace_epochs, 1)
        _at_least("reduction_factor", self.reduction_factor, 2)


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """A whole search: what is searched, how, on what proxy, with which resources and budget.

    The defaults are `make search`: 5 trials of the `default` proxy, two at a time with a core
    each (one core trains a trial almost as fast as two; bench/results/search.md)."""

    space: str = "spinenet-49"
    controller: ControllerSection = ControllerSection()
    objective: ObjectiveSection = ObjectiveSection()
    constraints: ConstraintsSection = ConstraintsSection()
    proxy: ProxySection = ProxySection()
    resources: ResourcesSection = ResourcesSection()
    early_stopping: EarlyStoppingSection = EarlyStoppingSection()
    retries: int = 2
    max_trials: int = 5
    concurrency: int = 2

    def __post_init__(self):
        _choice("space", self.space, tuple(SPACES))
        _at_least("retries", self.retries, 0)
        _at_least("max_trials", self.max_trials, 1)
        _at_least("concurrency", self.concurrency, 1)
        if self.early_stopping.enabled and len(self.proxy.seeds) > 1:
            raise ValueError("early_stopping.enabled: ASHA needs one seed per trial, got "
                             f"proxy.seeds {list(self.proxy.seeds)}")

    def proxy_config(self) -> ProxyConfig:
        """The proxy every trial trains with (each epoch evaluated when ASHA needs it)."""
        config = self.proxy.config()
        if self.early_stopping.enabled:
            config = dataclasses.replace(config, eval_every_epoch=True)
        return config

    def to_dict(self) -> Dict[str, Any]:
        return _plain(dataclasses.asdict(self))


def _plain(value):
    """Tuples as lists, for YAML and JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# -- reading ---------------------------------------------------------------------------------

def _convert(value, hint, key: str):
    """`value` as the annotated type `hint`; raises naming `key` and the value."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(value, inner, key)
    if hint is ProxySection:
        return _proxy_section(value, key)
    if dataclasses.is_dataclass(hint):
        return from_data(hint, value, key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key}: expected a list, got {value!r}")
        return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads 3e9 as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{key}: unsupported config type {hint!r}")


def from_data(cls, data, prefix: str = ""):
    """An instance of the dataclass `cls` from plain data, every key and value checked; errors
    name the dotted key (`controller.evolution.population_size: ...`)."""
    label = prefix or "config"
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{label}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    dotted = (prefix + ".") if prefix else ""
    for key in data:
        if key not in fields:
            raise ValueError(f"{dotted}{key}: unknown key; keys here: {', '.join(fields)}")
    values = {k: _convert(v, hints[k], dotted + k) for k, v in data.items()}
    try:
        return cls(**values)
    except ValueError as err:
        raise ValueError(f"{dotted}{err}") from None


def _proxy_section(data, prefix: str) -> ProxySection:
    """The proxy section from plain data whose keys are its own or ProxyConfig's fields."""
    if not isinstance(data, Mapping):
        return from_data(ProxySection, data, prefix)
    own = [f.name for f in dataclasses.fields(ProxySection)]
    hints = typing.get_type_hints(ProxyConfig)
    for key in data:
        if key not in own and key not in hints:
            raise ValueError(f"{prefix}.{key}: unknown key; keys here: {', '.join(own)} and "
                             f"ProxyConfig's: {', '.join(hints)}")
    section = from_data(ProxySection, {k: v for k, v in data.items() if k in own}, prefix)
    changes = {k: _convert(v, hints[k], f"{prefix}.{k}") for k, v in data.items() if k in hints}
    try:
        wanted = dataclasses.replace(section.config(), **changes)
    except ValueError as err:
        raise ValueError(f"{prefix}.{err}") from None
    section = dataclasses.replace(
        section, set=section.set + tuple(as_assignment(k, v) for k, v in changes.items()))
    recorded = section.config()
    for key, value in changes.items():
        if getattr(recorded, key) != getattr(wanted, key):
            raise ValueError(f"{prefix}.{key}: {value!r} cannot be recorded as key=value")
    return section


def _set_dotted(data: dict, key: str, value) -> None:
    *path, last = key.split(".")
    node = data
    for i, part in enumerate(path):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"--set {key}: {'.'.join(path[:i + 1])} is not a section")
        node = child
    node[last] = value


def apply_sets(data: dict, assignments: Iterable[str]) -> dict:
    """`data` with each dotted `key=value` applied; values are YAML scalars or flow lists."""
    data = _copy(data)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set {assignment!r}: expected key=value")
        try:
            value = yaml.safe_load(text)  # an empty value is None
        except yaml.YAMLError:
            raise ValueError(f"--set {key}: cannot read the value {text!r}") from None
        _set_dotted(data, key, value)
    return data


def _copy(data):
    if isinstance(data, dict):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data


def read_config_file(path) -> dict:
    """A YAML config file as plain data (safe loader: no tags, nothing executed)."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ValueError(f"--config: cannot read {str(path)!r}: {err.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"--config: {str(path)!r} is not valid YAML: {err}") from None
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"--config: {str(path)!r} must hold a mapping of keys, got {data!r}")
    return data or {}


def load_config(path: Optional[str] = None, assignments: Iterable[str] = ()) -> SearchConfig:
    """The search config from the YAML file, then the `--set` assignments."""
    return from_data(SearchConfig, apply_sets(read_config_file(path) if path else {}, assignments))


def dump_config(config: SearchConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)

"""What several commands share: the results folder option, a model given by name or spec file,
and the check and summary line before a search starts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from search_space import BUILTIN_MODELS, MODEL_SIZES, SpecError, builtin_spec, model_size, read_spec

DEFAULT_RESULTS = "results"


def add_results_dir(parser) -> None:
    parser.add_argument("--results-dir", default=DEFAULT_RESULTS, type=Path,
                        help=f"where runs live, one folder each (default ./{DEFAULT_RESULTS})")


def resolve_model(name_or_path: str):
    """(spec, model size) of a built-in name or a spec file; a file's head follows its scaling."""
    if name_or_path in BUILTIN_MODELS:
        return builtin_spec(name_or_path), model_size(name_or_path)
    if not Path(name_or_path).exists():
        raise SpecError(f"model: {name_or_path!r} is neither a built-in model "
                        f"({', '.join(BUILTIN_MODELS)}) nor an existing spec file")
    spec = read_spec(name_or_path)
    size = next((s for s in MODEL_SIZES.values() if s.scaling == spec.scaling), None)
    if size is None:
        size = dataclasses.replace(MODEL_SIZES["spinenet-49"], scaling=spec.scaling,
                                   head_filters=spec.scaling.endpoints_num_filters)
    return spec, size


def preflight(config) -> None:
    """Builds the controller stack once, so every setting is checked before anything runs."""
    from nas.stack import build_stack, similarity_target
    from search_space import get_space

    space = get_space(config.space)
    build_stack(config, space, config.proxy_config())
    similarity_target(config, space)


def summary(name: str, results_dir: Path, config) -> str:
    return (f"search {name}: space {config.space}, controller {config.controller.name} (seed "
            f"{config.controller.seed}), proxy {config.proxy.preset}"
            + (f" [{', '.join(config.proxy.set)}]" if config.proxy.set else "")
            + f", {config.max_trials} trials x {len(config.proxy.seeds)} seed(s), "
            f"{config.concurrency} at once; run folder {results_dir / name}")

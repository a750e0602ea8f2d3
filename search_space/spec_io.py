"""Spec files: the versioned JSON format and the Model Garden `block_specs` list.

Both are parsed as data only (`json`, `ast.literal_eval`); nothing a user hands us is executed.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path
from typing import Optional, Union

from search_space.spec import BlockSpec, Scaling, SpecError, SpineNetSpec

FORMAT_NAME = "spinenet-spec"
FORMAT_VERSION = 1
_JSON_KEYS = {"format", "version", "name", "num_stem_blocks", "min_level", "max_level", "scaling",
              "blocks"}
_BLOCK_KEYS = {"level", "block_fn", "input_offsets", "is_output"}


def to_json(spec: SpineNetSpec, name: Optional[str] = None) -> str:
    data = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "name": name,
        "num_stem_blocks": spec.num_stem_blocks,
        "min_level": spec.min_level,
        "max_level": spec.max_level,
        "scaling": dataclasses.asdict(spec.scaling),
        "blocks": [{"level": b.level, "block_fn": b.block_fn, "input_offsets": list(b.input_offsets),
                    "is_output": b.is_output} for b in spec.blocks],
    }
    return json.dumps(data, indent=2) + "\n"


def to_model_garden(spec: SpineNetSpec) -> str:
    """The `block_specs` list that Model Garden's SpineNet builder accepts."""
    rows = "".join(f"    ({b.level}, {b.block_fn!r}, {tuple(b.input_offsets)!r}, {b.is_output}),\n"
                   for b in spec.blocks)
    return f"[\n{rows}]\n"


def _block_from_tuple(k: int, row) -> BlockSpec:
    if not isinstance(row, (tuple, list)) or len(row) != 4:
        raise SpecError(f"block {k}: expected a (level, block_fn, (i, j), is_output) tuple, got {row!r}")
    level, block_fn, offsets, is_output = row
    if not isinstance(offsets, (tuple, list)):
        raise SpecError(f"block {k}: input_offsets must be a pair of feature indices, got {offsets!r}")
    return BlockSpec(level, block_fn, tuple(offsets), is_output)


def _block_from_dict(k: int, data) -> BlockSpec:
    if not isinstance(data, dict) or set(data) != _BLOCK_KEYS:
        raise SpecError(f"block {k}: expected an object with keys {sorted(_BLOCK_KEYS)}, got {data!r}")
    return _block_from_tuple(k, [data[key] for key in ("level", "block_fn", "input_offsets",
                                                       "is_output")])


def from_json_data(data: dict) -> SpineNetSpec:
    if data.get("format") != FORMAT_NAME:
        raise SpecError(f"format: expected {FORMAT_NAME!r}, got {data.get('format')!r}")
    if data.get("version") != FORMAT_VERSION:
        raise SpecError(f"version: this reader knows version {FORMAT_VERSION}, got "
                        f"{data.get('version')!r}")
    unknown = set(data) - _JSON_KEYS
    if unknown:
        raise SpecError(f"{sorted(unknown)[0]}: unknown field")
    scaling = data.get("scaling", {})
    if not isinstance(scaling, dict):
        raise SpecError(f"scaling: expected an object, got {scaling!r}")
    known = {f.name for f in dataclasses.fields(Scaling)}
    if set(scaling) - known:
        raise SpecError(f"scaling.{sorted(set(scaling) - known)[0]}: unknown field")
    blocks = data.get("blocks")
    if not isinstance(blocks, list):
        raise SpecError(f"blocks: expected a list, got {blocks!r}")
    # A field left out takes SpineNetSpec's default.
    layout = {key: data[key] for key in ("num_stem_blocks", "min_level", "max_level") if key in data}
    return SpineNetSpec(blocks=tuple(_block_from_dict(k, b) for k, b in enumerate(blocks)),
                        scaling=Scaling(**scaling), **layout)


def from_model_garden(rows, scaling: Scaling) -> SpineNetSpec:
    """Model Garden's list: SpineNetSpec's stem and levels, the given scaling."""
    if not isinstance(rows, (list, tuple)):
        raise SpecError(f"block_specs: expected a list of tuples, got {type(rows).__name__}")
    return SpineNetSpec(blocks=tuple(_block_from_tuple(k, r) for k, r in enumerate(rows)),
                        scaling=scaling)


def _literal(text: str):
    """A Python literal, optionally assigned to one name (`SPECS = [...]`), parsed safely."""
    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        raise SpecError(f"spec file: neither JSON nor a Python literal ({err.msg}, line {err.lineno})")
    if len(tree.body) != 1 or not isinstance(tree.body[0], (ast.Expr, ast.Assign)):
        raise SpecError("spec file: expected one list of block tuples (optionally `NAME = [...]`)")
    try:
        return ast.literal_eval(tree.body[0].value)
    except ValueError as err:
        raise SpecError(f"spec file: only literals are allowed ({err})") from None


def parse_spec_text(text: str, scaling: Scaling = Scaling()) -> SpineNetSpec:
    """A spec in either format, the format detected from the content.

    A bare Model Garden list means 2 stem blocks, levels 3..7 and `scaling`.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = _literal(text)
    if isinstance(data, dict):
        return from_json_data(data)
    return from_model_garden(data, scaling)


def read_spec(path: Union[str, Path], scaling: Scaling = Scaling()) -> SpineNetSpec:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise SpecError(f"spec file {str(path)!r}: {err.strerror}") from None
    try:
        return parse_spec_text(text, scaling)
    except SpecError as err:
        raise SpecError(f"{path}: {err}") from None


def write_spec(spec: SpineNetSpec, path: Union[str, Path], fmt: str = "json",
               name: Optional[str] = None) -> None:
    """Writes `spec` atomically in `fmt` ('json' or 'model_garden')."""
    writers = {"json": lambda: to_json(spec, name), "model_garden": lambda: to_model_garden(spec)}
    if fmt not in writers:
        raise SpecError(f"format: unknown spec format {fmt!r}; expected one of {sorted(writers)}")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(writers[fmt]())
    tmp.replace(path)

"""Spec files: JSON and Model Garden round trips, format detection, safe parsing."""

import json

import numpy as np
import pytest

from search_space import (SpecError, builtin_spec, decode, get_space, parse_spec_text,
                          random_genome, read_spec, to_json, to_model_garden, write_spec)
from search_space.builtins import MODEL_SIZES


@pytest.mark.parametrize("name", sorted(MODEL_SIZES))
def test_builtin_specs_round_trip_through_json(name):
    spec = builtin_spec(name)
    assert parse_spec_text(to_json(spec, name=name)) == spec


@pytest.mark.parametrize("seed", range(10))
def test_random_specs_round_trip_through_both_formats(tmp_path, seed):
    spec = decode(random_genome(get_space("spinenet-49"), np.random.default_rng(seed)),
                  get_space("spinenet-49"))
    for fmt in ("json", "model_garden"):
        path = tmp_path / f"spec.{fmt}"
        write_spec(spec, path, fmt=fmt)
        assert read_spec(path) == spec
    assert not list(tmp_path.glob("*.tmp"))


def test_model_garden_text_is_the_builder_list():
    text = to_model_garden(builtin_spec("spinenet-49"))
    assert text.splitlines()[1] == "    (2, 'bottleneck', (0, 1), False),"
    assert text.splitlines()[13] == "    (5, 'bottleneck', (7, 12), True),"
    # The bare list takes the given scaling (SpineNet-49's by default).
    scaling = builtin_spec("spinenet-96").scaling
    assert parse_spec_text(text, scaling) == builtin_spec("spinenet-96")
    assert parse_spec_text("SPECS = " + text) == builtin_spec("spinenet-49")
    rows = [[b.level, b.block_fn, list(b.input_offsets), b.is_output]
            for b in builtin_spec("spinenet-49").blocks]
    assert parse_spec_text(json.dumps(rows)) == builtin_spec("spinenet-49")


def test_json_has_version_and_scaling():
    data = json.loads(to_json(builtin_spec("spinenet-96"), name="spinenet-96"))
    assert data["format"] == "spinenet-spec" and data["version"] == 1
    assert data["scaling"] == {"endpoints_num_filters": 256, "filter_size_scale": 1.0,
                               "resample_alpha": 0.5, "block_repeats": 2}
    assert data["blocks"][4] == {"level": 6, "block_fn": "residual", "input_offsets": [3, 5],
                                 "is_output": False}


@pytest.mark.parametrize("text, message", [
    ("__import__('os').system('true')", "only literals are allowed"),
    ("[(2, 'bottleneck', (0, 1), False)]; import os", "expected one list of block tuples"),
    ("[(2, 'bottleneck', (0, 1))]", r"block 0: expected a \(level, block_fn, \(i, j\), is_output\) tuple"),
    ("[(2, 'bottleneck', 0, False)]", "block 0: input_offsets must be a pair"),
    ("[(2, 'dense', (0, 1), False)]", "block 0: unknown block type 'dense'"),
    ("{'a': 1", "neither JSON nor a Python literal"),
    ('{"format": "spinenet-spec", "version": 2, "blocks": []}', "version: this reader knows version 1"),
    ('{"format": "yaml", "version": 1, "blocks": []}', "format: expected 'spinenet-spec'"),
    ('{"format": "spinenet-spec", "version": 1, "blocks": [], "extra": 1}', "extra: unknown field"),
    ('{"format": "spinenet-spec", "version": 1, "blocks": [{"level": 2}]}', "block 0: expected an object"),
    ('{"format": "spinenet-spec", "version": 1, "scaling": {"alpha": 1}, "blocks": []}',
     "scaling.alpha: unknown field"),
    ('{"format": "spinenet-spec", "version": 1, "scaling": {"block_repeats": 0}, "blocks": []}',
     "block_repeats: must be >= 1"),
    ('"just a string"', "block_specs: expected a list of tuples"),
])
def test_bad_spec_files_are_rejected_with_the_field(text, message):
    with pytest.raises(SpecError, match=message):
        parse_spec_text(text)


def test_read_spec_names_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("[(2, 'bottleneck', (0, 5), False)]")
    with pytest.raises(SpecError, match=r"bad.json: block 0: parent 5 is not lower"):
        read_spec(path)
    with pytest.raises(SpecError, match="missing.json"):
        read_spec(tmp_path / "missing.json")
    with pytest.raises(SpecError, match="format: unknown spec format 'yaml'"):
        write_spec(builtin_spec("spinenet-49"), tmp_path / "x", fmt="yaml")

"""Spec files: JSON and Model Garden round trips, format detection, safe parsing."""

import json

import numpy as np
import pytest

from search_space import (BlockSpec, SpecError, SpineNetSpec, builtin_spec, decode, get_space,
                          parse_spec_text, random_genome, read_spec, to_json, to_model_garden,
                          write_spec)
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
    ('"just a string"', "block_specs: expected a list of tuples, got str"),
    ('{"format": "yaml"}', "format: expected 'spinenet-spec', got 'yaml'"),
    ('{"format": "spinenet-spec", "version": "1"}', "version: this reader knows version 1, got '1'"),
    ('{"format": "spinenet-spec", "version": 1, "scaling": [1], "blocks": []}',
     r"scaling: expected an object, got \[1\]"),
    ('{"format": "spinenet-spec", "version": 1, "blocks": "none"}', "blocks: expected a list, got 'none'"),
    ('{"format": "spinenet-spec", "version": 1, "blocks": [{"level": 3, "block_fn": "bottleneck", '
     '"input_offsets": 1, "is_output": true}]}', "block 0: input_offsets must be a pair"),
    ("a = [(2, 'bottleneck', (0, 1), False)]\nb = 1",
     r"^spec file: expected one list of block tuples \(optionally `NAME = \[...\]`\)$"),
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


def test_json_text_is_indented_by_two_and_ends_with_a_newline():
    """The file people read and diff: two-space indents, a final newline."""
    spec = SpineNetSpec(blocks=[BlockSpec(3, "bottleneck", (0, 1), True)], min_level=3, max_level=3)
    assert to_json(spec, name="tiny") == """{
  "format": "spinenet-spec",
  "version": 1,
  "name": "tiny",
  "num_stem_blocks": 2,
  "min_level": 3,
  "max_level": 3,
  "scaling": {
    "endpoints_num_filters": 256,
    "filter_size_scale": 1.0,
    "resample_alpha": 0.5,
    "block_repeats": 1
  },
  "blocks": [
    {
      "level": 3,
      "block_fn": "bottleneck",
      "input_offsets": [
        0,
        1
      ],
      "is_output": true
    }
  ]
}
"""


def test_json_layout_fields_are_read_and_default_to_the_spec_defaults():
    """Three stems and one level-2 output are read back; a file without them gets 2 stems and
    levels 3..7, as SpineNetSpec does."""
    odd = SpineNetSpec(blocks=[BlockSpec(2, "bottleneck", (0, 1), True)], num_stem_blocks=3,
                       min_level=2, max_level=2)
    assert parse_spec_text(to_json(odd)) == odd
    data = json.loads(to_json(builtin_spec("spinenet-49")))
    for key in ("num_stem_blocks", "min_level", "max_level", "scaling", "name"):
        del data[key]
    assert parse_spec_text(json.dumps(data)) == SpineNetSpec(blocks=builtin_spec("spinenet-49").blocks)


def test_files_are_written_as_json_by_default_and_read_with_the_given_scaling(tmp_path):
    spec = builtin_spec("spinenet-96")
    write_spec(spec, tmp_path / "a.json", name="ninety-six")
    assert json.loads((tmp_path / "a.json").read_text())["name"] == "ninety-six"
    assert read_spec(tmp_path / "a.json") == spec
    write_spec(spec, tmp_path / "a.py", fmt="model_garden")
    assert read_spec(tmp_path / "a.py", spec.scaling) == spec
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.py"]

"""The proxy presets, field by field, against a table written out by hand: a rewrite of
presets.py must leave every reward's config (and so every run's code version) as it was."""

import dataclasses

import pytest

from proxy_tasks.presets import PRESETS, ProxyConfig, as_assignment, get_preset, with_overrides

# field: (tiny, default, paper), as the presets were when runs started recording them.
TABLE = {
    "task": ("detection", "detection", "detection"),
    "dataset": ("embedded", "embedded", "coco"),
    "data_dir": ("", "", ""),
    "scenes": ("digits", "shapes", "digits"),
    "train_images": (16, 1024, 1024),
    "holdout_images": (8, 256, 256),
    "data_seed": (0, 0, 0),
    "image_size": (64, 96, 512),
    "epochs": (1, 6, 5),
    "batch_size": (8, 8, 64),
    "eval_batch_size": (8, 32, 64),
    "learning_rate": (0.08, 0.01, 0.08),
    "warmup_steps": (1, 50, 500),
    "schedule": ("cosine", "cosine", "step"),
    "optimizer": ("sgd", "adam", "sgd"),
    "momentum": (0.9, 0.9, 0.9),
    "weight_decay": (4e-5, 4e-5, 4e-5),
    "clip_norm": (10.0, 10.0, 10.0),
    "filter_size_scale": (0.125, 0.25, 0.25),
    "resample_alpha": (0.25, 0.25, 0.25),
    "endpoints_num_filters": (16, 64, 64),
    "block_repeats": (1, 1, 1),
    "head_convs": (1, 1, 4),
    "head_filters": (16, 32, 64),
    "anchor_size": (1.0, 2.0, 3.0),
    "activation": ("relu", "relu", "relu"),
    "norm": ("batch", "batch", "batch"),
    "bn_momentum": (0.9, 0.9, 0.99),
    "zero_init_residual": (False, True, False),
    "dtype": ("float32", "float32", "float32"),
    "score_threshold": (0.05, 0.05, 0.05),
    "eval_every_epoch": (False, False, False),
    "checkpoint_dir": (None, None, None),
}
NAMES = ("tiny", "default", "paper")


@pytest.mark.parametrize("column, name", list(enumerate(NAMES)))
def test_each_preset_is_the_table_field_for_field(column, name):
    expected = {field: values[column] for field, values in TABLE.items()}
    actual = dataclasses.asdict(get_preset(name))
    assert actual == expected
    # Types too: the code version hashes repr(value), and repr(3) != repr(3.0).
    assert {k: type(v) for k, v in actual.items()} == {k: type(v) for k, v in expected.items()}


def test_the_presets_are_these_three_in_this_order():
    assert tuple(PRESETS) == NAMES


def test_the_class_defaults_are_the_default_preset():
    assert ProxyConfig() == get_preset("default")


def test_the_table_has_every_field_in_the_class_order():
    assert list(TABLE) == [f.name for f in dataclasses.fields(ProxyConfig)]


@pytest.mark.parametrize("source, base", [("tiny", "paper"), ("paper", "default")])
def test_every_field_as_an_assignment_reads_back_as_its_value(source, base):
    fields = dataclasses.asdict(get_preset(source))
    assignments = [as_assignment(k, v) for k, v in fields.items()]
    assert "zero_init_residual=false" in assignments and "checkpoint_dir=none" in assignments
    assert with_overrides(get_preset(base), assignments) == get_preset(source)

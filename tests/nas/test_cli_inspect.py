"""`nas inspect`: the table, the JSON object, spec files of both formats, bad input."""

import json

import pytest

from nas.cli import main
from search_space import builtin_spec, write_spec
from tests.search_space.test_cost import HEAD_FLOPS_640, HEAD_PARAMS


def _json(capsys, *argv):
    assert main(["inspect", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_for_spinenet49(capsys):
    out = _json(capsys, "spinenet-49")
    assert out["backbone_params"] == 21_831_488
    assert out["total_params"] == 28_543_383
    assert out["head_params"] == HEAD_PARAMS
    assert (out["backbone_flops"], out["head_flops"], out["total_flops"]) == \
        (28_261_990_400, HEAD_FLOPS_640, 85_281_555_200)
    assert out["levels"] == {"3": [80, 80, 256], "4": [40, 40, 256], "5": [20, 20, 256],
                             "6": [10, 10, 256], "7": [5, 5, 256]}
    assert out["bn_statistics"] > 0


def test_defaults_follow_the_scaling_table(capsys):
    out = _json(capsys, "spinenet-190")
    assert out["input"] == [1280, 1280] and out["head_convs"] == 7 and out["head_filters"] == 512
    assert out["levels"]["3"] == [160, 160, 512]


def test_flags_override(capsys):
    out = _json(capsys, "spinenet-49", "--height", "96", "--width", "160", "--filter-size-scale",
                "0.25", "--resample-alpha", "0.25", "--endpoints-num-filters", "64",
                "--head-filters", "64", "--num-classes", "10", "--num-anchors", "9")
    assert out["levels"]["3"] == [12, 20, 64]
    assert out["backbone_params"] == 1_169_696
    cls = _json(capsys, "spinenet-49", "--head", "classification", "--num-classes", "1000",
                "--input-size", "224")
    assert cls["total_params"] == 21_831_488 + 257_000
    none = _json(capsys, "spinenet-49", "--head", "none")
    assert none["head_params"] == 0 and none["total_params"] == 21_831_488


def test_spec_files_in_both_formats(tmp_path, capsys):
    spec = builtin_spec("spinenet-49")
    write_spec(spec, tmp_path / "s.json")
    write_spec(spec, tmp_path / "s.py", fmt="model_garden")
    a = _json(capsys, str(tmp_path / "s.json"))
    b = _json(capsys, str(tmp_path / "s.py"))
    assert a["total_params"] == b["total_params"] == 28_543_383


def test_table_output(capsys):
    assert main(["inspect", "spinenet-49"]) == 0
    text = capsys.readouterr().out
    assert "block 12 (out)" in text and "endpoint P7" in text
    assert "total: 28,543,383 trainable params" in text
    # Each column stands apart: level, type and parents of SpineNet-49's first blocks.
    rows = {line[:18].strip(): line[18:].split() for line in text.splitlines()}
    assert rows["block 0"][:3] == ["2", "bottleneck", "0,1"]
    assert rows["block 1"][:3] == ["4", "residual", "0,1"]
    assert rows["block 13 (out)"][:3] == ["7", "bottleneck", "5,14"]


@pytest.mark.parametrize("argv, message", [
    (["inspect", "spinenet-50"], "neither a built-in model"),
    (["inspect", "spinenet-49", "--input-size", "0"], "--input-size: must be positive, got 0"),
    (["inspect", "spinenet-49", "--block-repeats", "-1"], "--block-repeats: must be positive"),
    (["inspect", "spinenet-49", "--resample-alpha", "0.001"], "resample_alpha: 0.001 leaves"),
])
def test_bad_input_exits_non_zero_with_a_message(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_spec_file(tmp_path, capsys):
    path = tmp_path / "bad.py"
    path.write_text("[(2, 'bottleneck', (0, 2), False)]")
    assert main(["inspect", str(path)]) == 2
    assert "block 0: parent 2 is not lower than the block's own feature index 2" in capsys.readouterr().err

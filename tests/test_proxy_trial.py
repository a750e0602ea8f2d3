"""run_proxy_trial and `nas proxy` on the tiny preset: metrics, determinism, NaN, resume."""

import dataclasses
import json

import jax
import pytest

from nas.cli import main
from proxy_tasks.presets import get_preset, with_overrides
from proxy_tasks.trial import TrialFailed, run_proxy_trial
from search_space import backbone_cost, retinanet_head_cost, write_spec
from tests.tiny_models import TINY_SPEC

# Trial mechanics do not depend on the architecture: the smallest spec keeps compiles short.
SPEC = TINY_SPEC


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="session")
def tiny(data_dir):
    return dataclasses.replace(get_preset("tiny"), data_dir=data_dir)


@pytest.fixture(scope="session")
def one_device():
    from proxy_tasks.mesh import make_mesh
    return make_mesh(jax.devices()[:1])


@pytest.fixture(scope="session")
def result(tiny, one_device):
    reports = []
    out = run_proxy_trial(SPEC, tiny, seed=0, report=reports.append, mesh=one_device)
    return out, reports


def test_metrics_and_costs(result, tiny):
    out, reports = result
    for key in ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "reward"):
        assert 0.0 <= out[key] <= 1.0
    assert out["reward"] == out["ap"]
    spec = SPEC.with_scaling(tiny.scaling)
    backbone = backbone_cost(spec, 64, 64)
    cost = backbone.total + retinanet_head_cost(backbone.levels, 1, 16, 10, 9)
    assert (out["params"], out["flops"]) == (cost.params, cost.flops)
    assert out["steps"] == 2 and out["compile_s"] > 0 and out["train_images_per_s"] > 0
    assert [r["epoch"] for r in reports] == [1] and reports[0]["ap"] == out["ap"]


def test_same_seed_same_metrics(result, tiny, one_device):
    again = run_proxy_trial(SPEC, tiny, seed=0, mesh=one_device)
    keys = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "params", "flops")
    assert {k: again[k] for k in keys} == {k: result[0][k] for k in keys}


def test_nan_loss_stops_the_trial(tiny, one_device):
    exploding = dataclasses.replace(tiny, learning_rate=1e30, clip_norm=0.0, epochs=2)
    with pytest.raises(TrialFailed, match=r"loss became nan at step \d"):
        run_proxy_trial(SPEC, exploding, seed=0, mesh=one_device)


def test_interrupted_trial_resumes_from_its_checkpoint(tiny, one_device, tmp_path):
    config = dataclasses.replace(tiny, epochs=2, checkpoint_dir=str(tmp_path / "ckpt"))
    straight = run_proxy_trial(SPEC, dataclasses.replace(config, checkpoint_dir=None), seed=1,
                               mesh=one_device)

    def stop_after_first_epoch(metrics):
        if metrics["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_proxy_trial(SPEC, config, seed=1, report=stop_after_first_epoch, mesh=one_device)
    epochs = []
    resumed = run_proxy_trial(SPEC, config, seed=1, report=lambda m: epochs.append(m["epoch"]),
                              mesh=one_device)
    assert epochs == [2]  # only the second epoch was trained again
    assert resumed["steps"] == straight["steps"] == 4
    assert resumed["ap"] == straight["ap"] and resumed["ap50"] == straight["ap50"]


def test_overrides_parse_types_and_name_bad_keys():
    config = with_overrides(get_preset("default"), ["epochs=5", "learning_rate=1", "dtype=bfloat16",
                                                    "eval_every_epoch=true"])
    assert (config.epochs, config.learning_rate, config.dtype, config.eval_every_epoch) == \
        (5, 1.0, "bfloat16", True)
    with pytest.raises(ValueError, match="--set epoch: unknown key"):
        with_overrides(config, ["epoch=3"])
    with pytest.raises(ValueError, match="--set epochs: expected a int, got 'three'"):
        with_overrides(config, ["epochs=three"])
    with pytest.raises(ValueError, match="epochs: must be positive, got 0"):
        with_overrides(config, ["epochs=0"])
    with pytest.raises(ValueError, match="dtype: 'float16' is not one of"):
        with_overrides(config, ["dtype=float16"])


def test_cli_proxy_json(data_dir, capsys, tmp_path):
    write_spec(SPEC, tmp_path / "tiny.json")
    argv = ["proxy", str(tmp_path / "tiny.json"), "--preset", "tiny", "--set", f"data_dir={data_dir}",
            "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "params", "flops",
                "compile_s", "train_s", "eval_s", "train_images_per_s"):
        assert key in out
    assert main(["proxy", "spinenet-49", "--preset", "huge"]) == 2
    assert "preset: unknown preset 'huge'" in capsys.readouterr().err

"""run_proxy_trial and `nas proxy` on the tiny preset: metrics, determinism, NaN, resume,
classification.

The detection trials keep every detection (score threshold 0), so their AP is non-zero and
depends on the trained parameters; each trial is compared by its per-epoch training losses and
the parameters it saved, not by its AP alone."""

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from nas.cli import main
from proxy_tasks.data import EmbeddedConfig, InputConfig, classification_batches
from proxy_tasks.data.embedded import embedded_classification_sources
from proxy_tasks.presets import get_preset, with_overrides
from proxy_tasks.trial import build_proxy_model, load_records, prepare_data, run_proxy_trial
from search_space import backbone_cost, retinanet_head_cost, write_spec
from tests.proxy_tasks.tiny_models import TINY_SPEC

# Trial mechanics do not depend on the architecture: the smallest spec keeps compiles short.
SPEC = TINY_SPEC
# Two epochs of two steps; every detection kept. `nas proxy --set` gives the same config.
TINY_SETTINGS = ("epochs=2", "score_threshold=0.0")
REWARD_KEYS = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "reward")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="session")
def tiny(data_dir):
    return with_overrides(get_preset("tiny"), (f"data_dir={data_dir}",) + TINY_SETTINGS)


@pytest.fixture(scope="session")
def one_device():
    from proxy_tasks.mesh import make_mesh
    return make_mesh(jax.devices()[:1])


def train(config, directory, one_device, report=None):
    """(metrics, per-epoch reports) of a seed-0 trial that checkpoints under `directory`."""
    reports = []

    def record(metrics):
        reports.append(metrics)
        if report is not None:
            report(metrics)

    config = dataclasses.replace(config, checkpoint_dir=str(directory))
    return run_proxy_trial(SPEC, config, seed=0, report=record, mesh=one_device), reports


def saved_state(directory):
    """The train state last saved under `directory`, as nested dicts of arrays."""
    with ocp.CheckpointManager(Path(directory).absolute()) as manager:
        return manager.restore(manager.latest_step(), args=ocp.args.StandardRestore())


def losses(report):
    return {k: v for k, v in report.items() if k.startswith("train_")}


def assert_same_arrays(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="session")
def result(tiny, one_device, tmp_path_factory):
    directory = tmp_path_factory.mktemp("trained")
    out, reports = train(tiny, directory, one_device)
    return out, reports, directory


def test_metrics_and_costs(result, tiny):
    out, reports, _ = result
    for key in REWARD_KEYS:
        assert 0.0 <= out[key] <= 1.0
    assert out["reward"] == out["ap"] > 0  # every detection kept: the AP depends on the params
    spec = SPEC.with_scaling(tiny.scaling)
    backbone = backbone_cost(spec, 64, 64)
    cost = backbone.total + retinanet_head_cost(backbone.levels, 1, 16, 10, 9)
    assert (out["params"], out["flops"]) == (cost.params, cost.flops)
    assert out["steps"] == 4 and out["compile_s"] > 0 and out["train_images_per_s"] > 0
    assert [r["epoch"] for r in reports] == [1, 2] and "ap" not in reports[0]
    assert reports[1]["ap"] == out["ap"] and np.isfinite(reports[1]["train_loss"])


def test_same_seed_trains_the_same_and_resumes_from_its_checkpoint(result, tiny, one_device,
                                                                   tmp_path):
    out, reports, directory = result
    first = []

    def stop_after_first_epoch(metrics):
        first.append(metrics)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny, tmp_path, one_device, report=stop_after_first_epoch)
    assert losses(first[0]) == losses(reports[0])
    resumed, resumed_reports = train(tiny, tmp_path, one_device)
    assert [r["epoch"] for r in resumed_reports] == [2]  # only the second epoch trained again
    assert losses(resumed_reports[0]) == losses(reports[1])
    assert_same_arrays(saved_state(tmp_path), saved_state(directory))
    assert resumed["steps"] == 4 and {k: resumed[k] for k in REWARD_KEYS} == \
        {k: out[k] for k in REWARD_KEYS}


def test_classification_trial(tiny, one_device, tmp_path):
    """28 holdout images in batches of 8: the last batch is padded with 4 invalid rows."""
    config = dataclasses.replace(tiny, task="classification", epochs=1, holdout_images=28)
    out, reports = train(config, tmp_path, one_device)
    spec = SPEC.with_scaling(config.scaling)
    backbone = backbone_cost(spec, 64, 64).total
    # The head: 16 endpoint channels pooled, then a 16 x 10 linear layer with biases.
    assert (out["params"], out["flops"]) == (backbone.params + 16 * 10 + 10,
                                             backbone.flops + 16 * 10)
    assert out["steps"] == 2 and [r["epoch"] for r in reports] == [1]
    assert {"train_loss", "train_accuracy", "accuracy"} <= set(reports[0])
    # The reward is the holdout accuracy of the saved parameters, recomputed here.
    state = saved_state(tmp_path)
    model = build_proxy_model(spec, config)
    holdout = embedded_classification_sources(config.data_root, EmbeddedConfig(
        image_size=64, train_images=config.train_images, holdout_images=config.holdout_images,
        validation_images=config.holdout_images, seed=config.data_seed))["holdout"]
    (batch,) = classification_batches(holdout, InputConfig(64, config.holdout_images, train=False))
    logits = jax.jit(lambda v, x: model.apply(v, x)["logits"])(
        {"params": state["params"], "batch_stats": state["batch_stats"]}, batch["images"])
    accuracy = float(np.mean(np.asarray(logits).argmax(-1) == batch["labels"]))
    assert out["accuracy"] == out["reward"] == reports[0]["accuracy"] == accuracy


def test_records_are_decoded_once_and_read_only(tiny):
    """A process keeps the embedded records it decoded: the same records as the dataset's
    sources, the same objects on the next call, and arrays no transform can change in place."""
    kept = load_records(tiny)
    assert load_records(dataclasses.replace(tiny, epochs=5)) is kept
    sizes = (tiny.train_images, tiny.holdout_images)
    for records, source, size in zip(kept, prepare_data(tiny), sizes):
        assert len(records) == len(source) == size
        for record, fresh in zip(records, source):
            for field in dataclasses.fields(record):
                np.testing.assert_array_equal(getattr(record, field.name),
                                              getattr(fresh, field.name))
    record = kept[0][0]
    for name in ("image", "boxes", "labels", "areas", "is_crowd"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(record, name).flat[0] = 0


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


@pytest.fixture
def cli_on_one_device(data_dir, one_device, monkeypatch, tmp_path):
    """`nas proxy` on the tiny spec file with `settings`, on the trials' one-device mesh (so the
    programs compiled for them are reused): (exit status, stdout, stderr)."""
    monkeypatch.setattr("proxy_tasks.trial.make_mesh", lambda: one_device)
    write_spec(SPEC, tmp_path / "tiny.json")

    def run(capsys, *settings):
        argv = ["proxy", str(tmp_path / "tiny.json"), "--preset", "tiny", "--json",
                "--set", f"data_dir={data_dir}"]
        for setting in TINY_SETTINGS + settings:
            argv += ["--set", setting]
        status = main(argv)
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def test_cli_proxy_json_of_a_trial_resumed_after_its_last_epoch(result, cli_on_one_device,
                                                                 capsys):
    """A finished trial's checkpoint: nothing is trained, what was saved is evaluated."""
    status, stdout, _ = cli_on_one_device(capsys, f"checkpoint_dir={result[2]}")
    assert status == 0
    out = json.loads(stdout)
    for key in REWARD_KEYS + ("params", "flops", "steps", "seed", "spec_hash"):
        assert out[key] == result[0][key], key
    assert out["train_s"] == out["train_images_per_s"] == 0.0 and out["eval_s"] > 0
    assert main(["proxy", "spinenet-49", "--preset", "huge"]) == 2
    assert "preset: unknown preset 'huge'" in capsys.readouterr().err


def test_cli_proxy_exits_3_when_the_loss_becomes_nan(cli_on_one_device, capsys):
    status, _, stderr = cli_on_one_device(capsys, "learning_rate=1e30", "clip_norm=0")
    assert status == 3
    assert stderr.startswith("nas proxy: trial failed: loss became nan at step ")


def test_cli_proxy_json_is_one_document_while_the_dataset_is_built(tmp_path, monkeypatch, capsys):
    """TFDS prints while it builds a fresh dataset; `--json` keeps stdout to the JSON."""
    from proxy_tasks import trial

    def build_then_report(spec, config, seed, report):
        trial.prepare_data(config)
        return {"ap": 0.5, "reward": 0.5, "seed": seed}

    monkeypatch.setattr(trial, "run_proxy_trial", build_then_report)
    assert main(["proxy", "resnet50-seed", "--preset", "tiny", "--json",
                 "--set", f"data_dir={tmp_path}"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"ap": 0.5, "reward": 0.5, "seed": 0}
    assert "Downloading and preparing dataset" in captured.err

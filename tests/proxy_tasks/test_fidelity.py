"""Rank fidelity: the statistics against hand-computed values, the default panel, the figures
and resume of an interrupted panel (trials faked), and `nas fidelity` on the tiny preset."""

import dataclasses
import json
import math

import jax
import numpy as np
import pytest

from nas.cli import main
from proxy_tasks import fidelity
from proxy_tasks.fidelity import (default_panel, kendall_tau, long_schedule, measure_fidelity,
                                  reliability, single_mutants)
from proxy_tasks.presets import get_preset
from search_space import (BlockSpec, builtin_spec, canonical_hash, distance, genome_from_spec,
                          get_space, validate_genome, write_spec)
from tests.proxy_tasks.tiny_models import TINY_SPEC

SPACE = get_space("spinenet-49")


def test_kendall_tau_without_ties():
    # Six pairs, one discordant (the 2nd and 3rd): (5 - 1) / 6.
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(2 / 3)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_kendall_tau_b_with_ties():
    # 4 concordant pairs, 0 discordant, one tie on each side: 4 / sqrt((6 - 1) * (6 - 1)).
    assert kendall_tau([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(0.8)
    assert kendall_tau([0.1, 0.1, 0.2], [0.3, 0.3, 0.3]) is None  # one side all tied
    assert kendall_tau([0.1], [0.2]) is None
    with pytest.raises(ValueError, match="kendall_tau: 2 values against 3"):
        kendall_tau([1, 2], [1, 2, 3])


def test_reliability_ratio():
    # Means 0.1, 0.2, 0.3 have a sample std of 0.1; seed stds average 0.03.
    assert reliability([0.01, 0.02, 0.06], [0.1, 0.2, 0.3]) == pytest.approx(0.3)
    assert reliability([0.01, 0.02], [0.2, 0.2]) is None
    assert reliability([0.01], [0.2]) is None


def test_long_schedule_multiplies_steps_and_warmup_only():
    config = get_preset("default")
    long = long_schedule(config, 4)
    assert (long.epochs, long.warmup_steps) == (4 * config.epochs, 4 * config.warmup_steps)
    assert dataclasses.replace(long, epochs=config.epochs,
                               warmup_steps=config.warmup_steps) == config
    with pytest.raises(ValueError, match="factor: must be a positive integer, got 0"):
        long_schedule(config, 0)


def test_default_panel_composition():
    panel = default_panel()
    assert list(panel) == ["resnet50-seed", "resnet50-seed-mutant-0", "resnet50-seed-mutant-1",
                           "spinenet-49", "spinenet-49-mutant-0", "spinenet-49-mutant-1",
                           "random-0", "random-1", "random-2", "random-3"]
    for name in ("resnet50-seed", "spinenet-49"):
        assert canonical_hash(panel[name]) == canonical_hash(
            builtin_spec(name).with_scaling(panel[name].scaling))
        parent = genome_from_spec(panel[name], SPACE)
        for k in range(2):
            child = genome_from_spec(panel[f"{name}-mutant-{k}"], SPACE)
            validate_genome(child, SPACE)
            assert distance(parent, child, SPACE)["total"] == 1
    for spec in panel.values():
        validate_genome(genome_from_spec(spec, SPACE), SPACE)
    assert len({canonical_hash(spec) for spec in panel.values()}) == 10
    again = default_panel()
    assert {n: canonical_hash(s) for n, s in again.items()} == {
        n: canonical_hash(s) for n, s in panel.items()}


def test_single_mutants_are_one_decision_away_for_every_seed():
    """`mutate` moves two levels about one time in six: those children are drawn again."""
    parent = genome_from_spec(builtin_spec("spinenet-49"), SPACE)
    for seed in range(20):
        mutants = single_mutants(parent, 3, np.random.default_rng(seed))
        assert [distance(parent, m, SPACE)["total"] for m in mutants] == [1, 1, 1]
        assert len(set(mutants)) == 3 and parent not in mutants
        assert mutants == single_mutants(parent, 3, np.random.default_rng(seed))


# Faked trials: (base rewards over seeds 0 and 1, long-schedule reward) by architecture.
FAKE = {"resnet50-seed": ([0.09, 0.11], 0.5), "spinenet-49": ([0.18, 0.22], 0.4),
        "random-0": ([0.27, 0.33], 0.6)}


@pytest.fixture
def fake_trials(monkeypatch):
    """Panel of three with faked trials; returns (panel, config, calls): each call's
    (name, config, seed)."""
    panel = {name: spec for name, spec in default_panel().items() if name in FAKE}
    config = get_preset("tiny")
    names = {canonical_hash(s.with_scaling(config.scaling)): n for n, s in panel.items()}
    calls = []

    def fake(spec, run_config, seed=0):
        name = names[canonical_hash(spec.with_scaling(run_config.scaling))]
        calls.append((name, run_config, seed))
        base, long = FAKE[name]
        reward = base[seed] if run_config.epochs == config.epochs else long
        return {"reward": reward, "ap": reward, "params": 7, "flops": 11, "compile_s": 1.0,
                "train_s": 2.0, "eval_s": 0.5}

    monkeypatch.setattr(fidelity, "run_proxy_trial", fake)
    return panel, config, calls


def test_figures_from_the_panel(fake_trials, tmp_path):
    panel, config, calls = fake_trials
    gates = {"signal": (">=", 0.25), "reliability": ("<=", 1 / 3), "fidelity": (">=", 0.6),
             "direction": (">", 0.0)}
    result = measure_fidelity(config, panel, seeds=2, factor=3, log=str(tmp_path / "t.jsonl"),
                              gates=gates)
    assert [(n, c.epochs, c.warmup_steps, s) for n, c, s in calls] == [
        (n, e, w, s) for n in FAKE for e, w, s in ((1, 1, 0), (1, 1, 1), (3, 3, 0))]
    rows = {r["name"]: r for r in result["architectures"]}
    for name, (base, long) in FAKE.items():
        assert rows[name]["rewards"] == base and rows[name]["long"] == long
        assert rows[name]["mean"] == pytest.approx(np.mean(base))
        assert rows[name]["std"] == pytest.approx(abs(base[0] - base[1]) / math.sqrt(2))
        assert (rows[name]["params"], rows[name]["flops"], rows[name]["errors"]) == (7, 11, [])
    figures = result["figures"]
    # Seed stds 0.02, 0.04, 0.06 over sqrt(2), means 0.1, 0.2, 0.3 (std 0.1).
    assert figures["reliability"]["value"] == pytest.approx(0.4 / math.sqrt(2))
    assert figures["reliability"]["met"] is True
    # Means rank seed < SpineNet-49 < random, the long schedule SpineNet-49 < seed < random.
    assert figures["fidelity"] == {"value": pytest.approx(1 / 3), "gate": ">= 0.6", "met": False}
    assert figures["signal"] == {"value": pytest.approx(0.2), "gate": ">= 0.25", "met": False}
    assert figures["direction"]["value"] == pytest.approx(-0.1)
    assert figures["direction"]["met"] is False
    sn49_first = rows["spinenet-49"]["seconds"][0]
    assert (sn49_first["schedule"], sn49_first["seed"], sn49_first["compile_s"]) == ("base", 0, 1.0)
    assert figures["cost_s"] == {"value": sn49_first["wall_s"]}  # no gate, no verdict
    assert result["long_schedule"] == {"epochs": 3, "warmup_steps": 3}


def test_an_interrupted_panel_resumes_without_rerunning_finished_trials(fake_trials, tmp_path,
                                                                        monkeypatch):
    panel, config, calls = fake_trials
    log = tmp_path / "trials.jsonl"
    fake = fidelity.run_proxy_trial

    def interrupted(spec, run_config, seed=0):
        if len(calls) == 4:
            raise KeyboardInterrupt
        return fake(spec, run_config, seed)

    monkeypatch.setattr(fidelity, "run_proxy_trial", interrupted)
    with pytest.raises(KeyboardInterrupt):
        measure_fidelity(config, panel, seeds=2, factor=2, log=str(log))
    assert len(log.read_text().splitlines()) == 4
    with open(log, "a") as f:  # a write cut short by a kill
        f.write('{"key": "0123')
    monkeypatch.setattr(fidelity, "run_proxy_trial", fake)
    del calls[:]
    resumed = measure_fidelity(config, panel, seeds=2, factor=2, log=str(log))
    assert [(n, c.epochs, s) for n, c, s in calls] == [
        ("spinenet-49", 1, 1), ("spinenet-49", 2, 0), ("random-0", 1, 0), ("random-0", 1, 1),
        ("random-0", 2, 0)]
    assert len(log.read_text().splitlines()) == 9
    del calls[:]
    whole = measure_fidelity(config, panel, seeds=2, factor=2, log=str(tmp_path / "whole.jsonl"))
    assert len(calls) == 9

    def without_wall_time(result):
        rows = [dict(r, seconds=None) for r in result["architectures"]]
        return rows, {k: v for k, v in result["figures"].items() if k != "cost_s"}

    assert without_wall_time(resumed) == without_wall_time(whole)
    # Another config is another set of trials.
    del calls[:]
    measure_fidelity(dataclasses.replace(config, learning_rate=0.01), panel, seeds=2, factor=2,
                     log=str(log))
    assert len(calls) == 9


def test_cli_refuses_bad_input(capsys):
    for argv, message in (
            (["--seeds", "0"], "nas fidelity: error: --seeds: must be a positive integer, got 0"),
            (["--factor", "-1"], "nas fidelity: error: --factor: must be a positive integer"),
            (["--archs", "nowhere.json"], "nas fidelity: error: --archs: 'nowhere.json': "),
            (["--archs", "random-0", "random-0"], "--archs: 'random-0' is given twice"),
            (["--set", "epochs=0"], "nas fidelity: error: epochs: must be positive, got 0"),
            (["--set", "checkpoint_dir=x"], "checkpoint_dir: 'x'; the panel's trials would"),
            (["--gate", "signal=0.2"], "--gate: 'signal=0.2' is not NAME>=VALUE (or <=, >, <)"),
            (["--gate", "speed>=1"], "--gate: 'speed>=1' is not NAME>=VALUE"),
            (["--gate", "signal>=high"], "--gate: 'signal>=high': 'high' is not a number"),
            (["--out", "trials.jsonl"], "--out: 'trials.jsonl' must end in .json")):
        assert main(["fidelity", "--preset", "tiny", *argv]) == 2
        assert message in capsys.readouterr().err


@pytest.mark.slow  # eight real trials: two minutes
def test_cli_fidelity_on_tiny_end_to_end(tmp_path, monkeypatch, capsys):
    """Two tiny networks, 2 seeds, factor 2 on one device: one JSON document; run again, every
    trial is read back from `--out` and the same figures come out. The base config and mesh
    are test_proxy_trial's (epochs=2, every detection kept): TINY_SPEC's programs compile once
    for both."""
    from proxy_tasks.mesh import make_mesh

    monkeypatch.setattr("proxy_tasks.trial.make_mesh", lambda: make_mesh(jax.devices()[:1]))
    other = dataclasses.replace(TINY_SPEC, blocks=TINY_SPEC.blocks[:-1] + (
        BlockSpec(7, "bottleneck", (4, 5), True),))
    write_spec(TINY_SPEC, tmp_path / "tiny.json")
    write_spec(other, tmp_path / "other.json")
    argv = ["fidelity", "--archs", str(tmp_path / "tiny.json"), str(tmp_path / "other.json"),
            "--preset", "tiny", "--set", f"data_dir={tmp_path / 'data'}",
            "--set", "epochs=2", "--set", "score_threshold=0.0", "--seeds", "2", "--factor", "2",
            "--out", str(tmp_path / "panel.json"), "--gate", "reliability<=0.5", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in out["architectures"]] == [str(tmp_path / "tiny.json"),
                                                         str(tmp_path / "other.json")]
    for row in out["architectures"]:
        assert len(row["rewards"]) == 2 and row["long"] is not None and row["errors"] == []
    assert set(out["figures"]) == {"signal", "reliability", "fidelity", "direction", "cost_s"}
    for name in ("signal", "direction", "cost_s"):  # neither network is SpineNet-49
        assert out["figures"][name] == {"value": None}
    assert out["figures"]["reliability"]["gate"] == "<= 0.5"
    assert json.loads((tmp_path / "panel.json").read_text()) == out
    assert len((tmp_path / "panel.jsonl").read_text().splitlines()) == 6

    def no_training(*args, **kwargs):
        raise AssertionError("a finished trial ran again")

    monkeypatch.setattr(fidelity, "run_proxy_trial", no_training)
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == out
    assert main(argv[:-1]) == 0
    table, err = capsys.readouterr()
    assert "reliability:" in table and str(tmp_path / "other.json") in table
    assert "gate <= 0.5: " in table and "gate" not in table.split("fidelity:")[1].splitlines()[0]
    assert "absl" not in err and (tmp_path / "panel.log").exists()

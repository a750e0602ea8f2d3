"""Rank fidelity: the statistics against hand-computed values, the default panel, the figures
and resume of an interrupted panel (trials faked), and `nas fidelity` on the tiny preset."""

import dataclasses
import itertools
import json
import math
import re
import types

import jax
import numpy as np
import pytest

from nas.cli import main
from proxy_tasks import fidelity
from proxy_tasks.fidelity import (TrialLog, default_panel, kendall_tau, long_schedule,
                                  measure_fidelity, parse_gate, reliability, single_mutants,
                                  trial_key)
from proxy_tasks.presets import get_preset
from proxy_tasks.trial import TrialFailed
from search_space import (BlockSpec, builtin_spec, canonical_hash, decode, distance,
                          genome_from_spec, get_space, random_genome, validate_genome, write_spec)
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


@pytest.mark.parametrize("x, y, tau", [
    ([1, 2], [2, 1], -1.0),  # two items are enough
    ([1, 1, 2], [1, 2, 3], 2 / math.sqrt(6)),  # 2 concordant, one tie in x: 2 / sqrt(2 * 3)
    ([1, 2, 3], [1, 1, 2], 2 / math.sqrt(6)),  # the same, the tie in y
    ([1, 1, 1], [1, 2, 3], None)])  # x all tied
def test_kendall_tau_at_the_edges(x, y, tau):
    assert kendall_tau(x, y) == (None if tau is None else pytest.approx(tau))


def test_reliability_ratio():
    # Means 0.1, 0.2, 0.3 have a sample std of 0.1; seed stds average 0.03.
    assert reliability([0.01, 0.02, 0.06], [0.1, 0.2, 0.3]) == pytest.approx(0.3)
    assert reliability([0.01, 0.02], [0.2, 0.2]) is None
    assert reliability([0.01], [0.2]) is None
    # Two means 0.1, 0.3: sample std 0.2 / sqrt(2).
    assert reliability([0.01], [0.1, 0.3]) == pytest.approx(0.01 * math.sqrt(2) / 0.2)
    assert reliability([], [0.1, 0.2]) is None  # one seed each: no seed std


def test_long_schedule_multiplies_steps_and_warmup_only():
    config = get_preset("default")
    long = long_schedule(config, 4)
    assert (long.epochs, long.warmup_steps) == (4 * config.epochs, 4 * config.warmup_steps)
    assert dataclasses.replace(long, epochs=config.epochs,
                               warmup_steps=config.warmup_steps) == config
    with pytest.raises(ValueError, match="factor: must be a positive integer, got 0"):
        long_schedule(config, 0)
    assert long_schedule(config, 1) == config


@pytest.mark.parametrize("text, gate", [
    ("signal>=0.25", ("signal", (">=", 0.25))), (" cost_s < 60 ", ("cost_s", ("<", 60.0))),
    ("fidelity>0.5", ("fidelity", (">", 0.5))),
    ("reliability<=1e-1", ("reliability", ("<=", 0.1)))])
def test_parse_gate(text, gate):
    assert parse_gate(text) == gate


def test_parse_gate_names_every_figure():
    with pytest.raises(ValueError, match="one of signal, reliability, fidelity, direction, cost_s"):
        parse_gate("speed>=1")


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
    for k in range(4):  # the documented streams: random-k from [PANEL_SEED, 100 + k]
        genome = random_genome(SPACE, np.random.default_rng([fidelity.PANEL_SEED, 100 + k]))
        assert canonical_hash(panel[f"random-{k}"]) == canonical_hash(decode(genome, SPACE))
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


def test_single_mutants_gives_up_when_children_repeat(monkeypatch):
    parent = genome_from_spec(builtin_spec("spinenet-49"), SPACE)
    child = single_mutants(parent, 1, np.random.default_rng(0))[0]
    draws = []

    def same_child(genome, space, rng):
        draws.append(genome)
        return child

    monkeypatch.setattr(fidelity, "mutate", same_child)
    with pytest.raises(ValueError, match="found only 1 single-decision mutants, not 3"):
        single_mutants(parent, 3, np.random.default_rng(0))
    assert len(draws) == 300  # 100 draws a mutant


# Faked trials: (base rewards over seeds 0 and 1, long-schedule reward) by architecture.
FAKE = {"resnet50-seed": ([0.09, 0.11], 0.5), "spinenet-49": ([0.18, 0.22], 0.4),
        "random-0": ([0.27, 0.33], 0.6)}


@pytest.fixture
def failing():
    """(name, schedule, seed) of the faked trials that fail with TrialFailed("boom")."""
    return set()


@pytest.fixture
def fake_trials(monkeypatch, failing):
    """Panel of three with faked trials of 1.5 wall seconds each; returns (panel, config,
    calls): each call's (name, config, seed)."""
    panel = {name: spec for name, spec in default_panel().items() if name in FAKE}
    config = get_preset("tiny")
    names = {canonical_hash(s.with_scaling(config.scaling)): n for n, s in panel.items()}
    calls = []

    def fake(spec, run_config, seed=0):
        name = names[canonical_hash(spec.with_scaling(run_config.scaling))]
        calls.append((name, run_config, seed))
        if (name, "base" if run_config.epochs == config.epochs else "long", seed) in failing:
            raise TrialFailed("boom")
        base, long = FAKE[name]
        reward = base[seed] if run_config.epochs == config.epochs else long
        return {"reward": reward, "ap": reward, "params": 7, "flops": 11, "compile_s": 1.0,
                "train_s": 2.0, "eval_s": 0.5}

    monkeypatch.setattr(fidelity, "run_proxy_trial", fake)
    clock = itertools.count(100.0, 1.5)
    monkeypatch.setattr(fidelity, "time", types.SimpleNamespace(perf_counter=clock.__next__))
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
    assert (result["config"], result["seeds"], result["factor"]) == (
        dataclasses.asdict(config), 2, 3)


def test_each_new_trial_is_reported(fake_trials):
    """One seed, no log: every trial goes to `on_trial` as a full record; no seed std."""
    panel, config, _ = fake_trials
    seen = []
    result = measure_fidelity(config, panel, seeds=1, factor=2, on_trial=seen.append)
    assert [(r["arch"], r["schedule"], r["seed"], r["epochs"], r["reward"], r["wall_s"])
            for r in seen] == [(n, schedule, 0, epochs, reward, 1.5) for n, (base, long) in
                               FAKE.items() for schedule, epochs, reward in
                               (("base", 1, base[0]), ("long", 2, long))]
    assert [r["std"] for r in result["architectures"]] == [None, None, None]
    assert result["figures"]["reliability"] == {"value": None}
    assert result["figures"]["cost_s"] == {"value": 1.5}


@pytest.mark.parametrize("seeds, names, message", [
    (0, FAKE, "seeds: must be a positive integer, got 0"),
    (2.0, FAKE, "seeds: must be a positive integer, got 2.0"),
    (2, (), "archs: the panel is empty")])
def test_measure_fidelity_refuses(fake_trials, seeds, names, message):
    panel, config, calls = fake_trials
    with pytest.raises(ValueError, match=f"^{message}$"):
        measure_fidelity(config, {n: panel[n] for n in names}, seeds=seeds, factor=2)
    assert calls == []


ALL_OF_RANDOM = {("random-0", "base", 0), ("random-0", "base", 1), ("random-0", "long", 0)}


@pytest.mark.parametrize("names, fail, errors, figures", [
    # random-0 is left out: seed (0.1, long 0.5) against SpineNet-49 (0.2, 0.4); seed stds
    # 0.02 and 0.04 over sqrt(2), means' std 0.1 / sqrt(2).
    (FAKE, {("random-0", "base", 1)}, {"random-0": ["base seed 1: boom"]},
     {"fidelity": -1.0, "reliability": 0.3, "direction": -0.1}),
    (FAKE, ALL_OF_RANDOM, {"random-0": ["base seed 0: boom", "base seed 1: boom",
                                        "long seed 0: boom"]},
     {"fidelity": -1.0, "reliability": 0.3, "direction": -0.1}),
    # SpineNet-49 is left out: seed (0.1, 0.5), random (0.3, 0.6); stds 0.02, 0.06 over
    # sqrt(2), means' std 0.2 / sqrt(2); no long reward to set against the seed's.
    (FAKE, {("spinenet-49", "long", 0)}, {"spinenet-49": ["long seed 0: boom"]},
     {"fidelity": 1.0, "reliability": 0.2, "direction": None}),
    # No seed model: SpineNet-49 (0.2, 0.4), random (0.3, 0.6); stds 0.04, 0.06 over sqrt(2).
    (("spinenet-49", "random-0"), set(), {},
     {"fidelity": 1.0, "reliability": 0.5, "direction": None})])
def test_failed_trials_are_listed_and_left_out(fake_trials, failing, names, fail, errors,
                                               figures):
    panel, config, _ = fake_trials
    failing.update(fail)
    result = measure_fidelity(config, {n: panel[n] for n in names}, seeds=2, factor=2,
                              gates={"direction": (">", 0.0)})
    for row in result["architectures"]:
        name = row["name"]
        base, long = FAKE[name]
        assert row["rewards"] == [None if (name, "base", s) in fail else base[s] for s in (0, 1)]
        assert row["long"] == (None if (name, "long", 0) in fail else long)
        assert row["errors"] == errors.get(name, [])
        assert (row["params"], row["flops"]) == ((None, None) if fail == ALL_OF_RANDOM and
                                                 name == "random-0" else (7, 11))
    values = {k: v["value"] for k, v in result["figures"].items()}
    assert values == dict({k: None if v is None else pytest.approx(v)
                           for k, v in figures.items()}, signal=pytest.approx(0.2), cost_s=1.5)
    direction = figures["direction"]
    assert result["figures"]["direction"]["met"] == (None if direction is None else direction > 0)


RECORDS = [json.dumps({"key": k, "reward": r}) + "\n" for k, r in (("a", 0.1), ("b", 0.2))]
CUT = '{"key": "c'


@pytest.mark.parametrize("text, keys, kept", [
    ("", [], ""), (RECORDS[0], ["a"], RECORDS[0]),
    (RECORDS[0] + RECORDS[1], ["a", "b"], RECORDS[0] + RECORDS[1]), (CUT, [], ""),
    (RECORDS[0] + RECORDS[1] + CUT, ["a", "b"], RECORDS[0] + RECORDS[1])])
def test_trial_log_reads_records_and_drops_a_cut_last_line(tmp_path, text, keys, kept):
    path = tmp_path / "t.jsonl"
    path.write_text(text)
    assert list(TrialLog(str(path)).records) == keys
    assert path.read_text() == kept


@pytest.mark.parametrize("bad", ["not json", '{"reward": 0.1}', "[1]"])
def test_trial_log_refuses_a_line_that_is_not_a_record(tmp_path, bad):
    path = tmp_path / "t.jsonl"
    path.write_text(RECORDS[0] + bad + "\n")
    with pytest.raises(ValueError, match=r"t\.jsonl: line 2 is not a trial record"):
        TrialLog(str(path))


def test_trial_log_appends_numpy_numbers_in_a_new_folder(tmp_path):
    path = tmp_path / "a" / "b" / "t.jsonl"
    TrialLog(str(path)).append({"key": "k", "reward": np.float32(0.5)})
    assert TrialLog(str(path)).records == {"k": {"key": "k", "reward": 0.5}}
    in_memory = TrialLog(None)
    in_memory.append({"key": "k"})
    assert in_memory.records == {"k": {"key": "k"}}


def test_trial_key_depends_on_the_field_values_not_their_order():
    """The key of a log written before a field moved in `ProxyConfig` must still match."""
    config = get_preset("tiny")
    fields = [(f.name, f.type) for f in reversed(dataclasses.fields(config))]
    moved = dataclasses.make_dataclass("Moved", fields)(**dataclasses.asdict(config))
    key = trial_key("h", config, 3)
    assert re.fullmatch(r"h/[0-9a-f]{16}/3", key)
    assert trial_key("h", moved, 3) == key
    assert trial_key("h", dataclasses.replace(config, learning_rate=0.01), 3) != key


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

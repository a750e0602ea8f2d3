"""`nas search` configs: YAML and dotted `--set`, every bad key or value rejected with exit 2 and
nothing written; the built-in `resnet50-seed` model."""

import dataclasses
import json

import pytest
import yaml

from nas.cli import main
from nas.config import SearchConfig, apply_sets, dump_config, from_data, load_config
from nas.ledger import LEDGER_FILE, Ledger
from proxy_tasks.presets import get_preset
from nas.stack import initial_genomes
from search_space import builtin_spec, decode, distance, get_space, seed_genome


def test_set_selects_the_tiny_preset_and_nested_keys():
    config = load_config(assignments=["proxy.preset=tiny", "controller.name=ppo",
                                      "controller.ppo.batch_size=4", "max_trials=7",
                                      "proxy.epochs=2", "proxy.image_size=32",
                                      "constraints.max_flops=1e9", "proxy.seeds=[1, 2]"])
    assert config.proxy.preset == "tiny" and config.proxy_config().image_size == 32
    assert config.proxy_config().epochs == 2 and config.proxy.seeds == (1, 2)
    assert config.proxy.set == ("epochs=2", "image_size=32")  # as run folders record them
    assert (config.controller.name, config.controller.ppo.batch_size) == ("ppo", 4)
    assert config.constraints.max_flops == 1e9 and config.max_trials == 7
    assert apply_sets({}, ["proxy.set=[epochs=1]"]) == {"proxy": {"set": ["epochs=1"]}}


def test_yaml_file_then_sets(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump({"space": "r0-sp53", "controller": {"name": "random"},
                                    "proxy": {"preset": "tiny", "epochs": 3},
                                    "max_trials": 4}))
    config = load_config(str(path), ["max_trials=5"])
    assert (config.space, config.controller.name, config.max_trials) == ("r0-sp53", "random", 5)
    assert config.proxy_config().epochs == 3
    # The saved form reads back to the same config.
    assert load_config(assignments=[]).to_dict() == SearchConfig().to_dict()
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump(config.to_dict()))
    assert load_config(str(again)) == config


# config.yaml as a run folder written before the proxy section took ProxyConfig's fields holds it.
OLD_RUN_CONFIG = """\
space: spinenet-49
controller:
  name: evolution
  seed: 0
  initial: [resnet50-seed]
  initial_mutants: 2
  failure_reward: 0.0
  evolution: {population_size: 3, tournament_size: 2, crossover_prob: 0.0, average_offspring: true}
  ppo: {hidden: 64, embed: 32, batch_size: 32, epochs: 4, learning_rate: 0.01, clip_eps: 0.2,
        entropy_coef: 0.03, temperature: 1.0, baseline_decay: 0.95, normalize_advantages: true,
        initial_bias: 3.0, explore: 0.05}
objective: {name: ap, target_flops: null, weight: -0.07, mode: above, target: spinenet-49,
            delay_s: 0.0}
constraints: {max_flops: null, max_params: null}
proxy:
  preset: tiny
  set: [score_threshold=0.0, epochs=2, checkpoint_dir=none]
  seeds: [0, 1]
resources: {cpus: 1.0, gpus: 0.0, tpus: 0, hosts: 1, placement: STRICT_SPREAD}
early_stopping: {enabled: false, grace_epochs: 1, reduction_factor: 3}
retries: 2
max_trials: 5
concurrency: 2
"""
OLD_PROXY = {"preset": "tiny", "set": ["score_threshold=0.0", "epochs=2", "checkpoint_dir=none"],
             "seeds": [0, 1]}


def _old_run_folder(results):
    """An old run folder: its config.yaml, and its ledger with the config as meta."""
    folder = results / "old"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(OLD_RUN_CONFIG)
    ledger = Ledger(folder / LEDGER_FILE, create=True)
    ledger.set_meta({"config": yaml.safe_load(OLD_RUN_CONFIG), "code_version": "0.1.0+old"})
    ledger.close()
    return folder


def test_an_old_run_folder_loads_to_the_same_proxy(tmp_path):
    folder = _old_run_folder(tmp_path)
    expected = dataclasses.replace(get_preset("tiny"), score_threshold=0.0, epochs=2)
    ledger = Ledger(folder / LEDGER_FILE)
    from_ledger = from_data(SearchConfig, ledger.meta("config"))  # as a resume reads it
    ledger.close()
    from_file = load_config(str(folder / "config.yaml"))
    for config in (from_ledger, from_file):
        assert config.proxy_config() == expected and config.proxy.seeds == (0, 1)
        # A resume records the section as it was, so the reports read the same `set`.
        assert config.to_dict()["proxy"] == OLD_PROXY


def test_fields_given_directly_record_as_the_old_set_form():
    direct = load_config(assignments=["proxy.preset=tiny", "proxy.score_threshold=0.0",
                                      "proxy.epochs=2", "proxy.checkpoint_dir=null",
                                      "proxy.seeds=[0, 1]"])
    assert direct.to_dict()["proxy"] == OLD_PROXY
    assert direct.proxy_config() == dataclasses.replace(get_preset("tiny"), score_threshold=0.0,
                                                        epochs=2)
    # After a `set` list: the field given directly wins.
    both = load_config(assignments=["proxy.set=[epochs=4, image_size=32]", "proxy.epochs=3"])
    assert both.proxy.set == ("epochs=4", "image_size=32", "epochs=3")
    assert (both.proxy_config().epochs, both.proxy_config().image_size) == (3, 32)


# On load_config, not the CLI: a broken check here must not start a search.
@pytest.mark.parametrize("assignment, message", [
    ("proxy.epoch=3",
     "proxy.epoch: unknown key; keys here: preset, set, seeds and ProxyConfig's: task, dataset"),
    ("proxy.epochs=0", "proxy.epochs: must be positive, got 0"),
    ("proxy.learning_rate=fast", "proxy.learning_rate: expected a number, got 'fast'"),
    ("proxy.dtype=float16", "proxy.dtype: 'float16' is not one of"),
    ("proxy.task=classification",
     "proxy.scenes: the classification proxy reads only the digits, got 'shapes'"),
    # YAML reads `none` as a string, which `checkpoint_dir=none` would not give back.
    ("proxy.checkpoint_dir=none", "proxy.checkpoint_dir: 'none' cannot be recorded as key=value"),
    ("proxy.set=[epoch=3]", "proxy.set: --set epoch: unknown key"),
    ("proxy.set=epochs=3", "proxy.set: expected a list, got 'epochs=3'"),
])
def test_bad_proxy_fields_are_named_with_their_values(assignment, message):
    with pytest.raises(ValueError) as err:
        load_config(assignments=[assignment])
    assert message in str(err.value)


def test_the_report_shows_an_old_and_a_new_proxy_section_alike(tmp_path, capsys):
    _old_run_folder(tmp_path)
    new = tmp_path / "new"
    new.mkdir()
    config = load_config(assignments=["proxy.preset=tiny", "proxy.score_threshold=0.0",
                                      "proxy.epochs=2", "proxy.checkpoint_dir=null",
                                      "proxy.seeds=[0, 1]"])
    ledger = Ledger(new / LEDGER_FILE, create=True)
    ledger.set_meta({"config": config.to_dict(), "code_version": "0.1.0+old"})
    ledger.close()
    lines = {}
    for name in ("old", "new"):
        assert main(["report", name, "--results-dir", str(tmp_path)]) == 0
        text = (tmp_path / name / "report.md").read_text()
        (lines[name],) = [line for line in text.splitlines() if "proxy preset" in line]
    assert lines["old"] == lines["new"]
    assert ("proxy preset `tiny` with score_threshold=0.0, epochs=2, checkpoint_dir=none, seeds "
            "[0, 1]") in lines["new"]


@pytest.mark.parametrize("argv, message", [
    (["--set", "controler.name=ppo"], "controler: unknown key"),
    (["--set", "controller.name=bayes"], "controller.name: 'bayes' is not one of"),
    (["--set", "controller.evolution.population_size=0"],
     "controller.evolution.population_size: must be >= 1, got 0"),
    (["--set", "controller.evolution.popsize=3"], "controller.evolution.popsize: unknown key"),
    (["--set", "controller.evolution.average_offspring=1"],
     "controller.evolution.average_offspring: expected true or false, got 1"),
    (["--set", "controller.ppo.explore=1"], "controller.ppo.explore: must be in [0, 1), got 1.0"),
    (["--set", "controller.ppo.initial_bias=-1"],
     "controller.ppo.initial_bias: must be >= 0, got -1.0"),
    (["--set", "max_trials=ten"], "max_trials: expected an integer, got 'ten'"),
    (["--set", "max_trials=0"], "max_trials: must be >= 1, got 0"),
    (["--set", "proxy.preset=huge"], "proxy.preset: 'huge' is not one of"),
    (["--set", "proxy.epochs=three"], "proxy.epochs: expected an integer, got 'three'"),
    (["--set", "proxy.seeds=[]"], "proxy.seeds: at least one seed"),
    (["--set", "resources.cpus=0"], "resources.cpus: must be > 0, got 0.0"),
    (["--set", "objective.name=mnas"], "objective.target_flops: the mnas objective needs"),
    (["--set", "controller.initial=[spinenet-50]"], "controller.initial[0]: 'spinenet-50' is neither"),
    (["--set", "space=r0-sp53", "--set", "controller.initial=[spinenet-49]"],
     "controller.initial[0]: 'spinenet-49' is not in the search space 'r0-sp53'"),
    (["--set", "maxtrials"], "--set 'maxtrials': expected key=value"),
    (["--max-trials", "-1"], "max_trials: must be >= 1, got -1"),
    (["--name", "../escape"], "--name: '../escape' must be"),
    (["--config", "missing.yaml"], "--config: cannot read 'missing.yaml'"),
    (["--resume"], "--resume: name the run"),
    (["--resume", "--name", "x", "--set", "max_trials=3"], "--resume: a run keeps its config"),
    (["--resume", "--name", "absent"], "--resume: no search 'absent'"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["search", "--results-dir", "runs", *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("assignment, message", [
    ("controller.seed=-1", "controller.seed: must be >= 0, got -1"),
    ("controller.initial_mutants=-1", "controller.initial_mutants: must be >= 0, got -1"),
    ("objective.name=fast", "objective.name: 'fast' is not one of ap, mnas, similarity"),
    ("objective.mode=never", "objective.mode: 'never' is not one of above, always"),
    ("objective.delay_s=-0.5", "objective.delay_s: must be >= 0, got -0.5"),
    ("objective.name=mnas", "objective.target_flops: the mnas objective needs a FLOPs target"),
    ("objective.target_flops=0", "objective.target_flops: must be > 0, got 0.0"),
    ("objective.weight=0.1", "objective.weight: must be <= 0, got 0.1"),
    ("constraints.max_flops=0", "constraints.max_flops: must be > 0, got 0.0"),
    ("constraints.max_params=-1", "constraints.max_params: must be > 0, got -1.0"),
    ("proxy.seeds=[-1]", "proxy.seeds: must be >= 0, got -1"),
    ("proxy.seeds=[1, 1]", "proxy.seeds: repeated seeds in [1, 1]"),
    ("resources.gpus=-1", "resources.gpus: must be >= 0, got -1.0"),
    ("resources.tpus=-1", "resources.tpus: must be >= 0, got -1"),
    ("resources.hosts=0", "resources.hosts: must be >= 1, got 0"),
    ("resources.placement=ANY",
     "resources.placement: 'ANY' is not one of STRICT_SPREAD, SPREAD, PACK, STRICT_PACK"),
    ("early_stopping.grace_epochs=0", "early_stopping.grace_epochs: must be >= 1, got 0"),
    ("early_stopping.reduction_factor=1", "early_stopping.reduction_factor: must be >= 2, got 1"),
    ("space=nope", "space: 'nope' is not one of spinenet-49, r0-sp53"),
    ("retries=-1", "retries: must be >= 0, got -1"),
    ("concurrency=0", "concurrency: must be >= 1, got 0"),
])
def test_every_checked_field_is_named_with_its_value(assignment, message):
    with pytest.raises(ValueError) as error:
        load_config(assignments=[assignment])
    assert str(error.value) == message


@pytest.mark.parametrize("assignments, message", [
    (["objective.target_flops=lots"], "objective.target_flops: expected a number, got 'lots'"),
    (["proxy.seeds=[0, x]"], "proxy.seeds[1]: expected an integer, got 'x'"),
    (["space=3"], "space: expected a string, got 3"),
    (["proxy=3"], "proxy: expected a mapping of keys, got 3"),
    (["resources.cpu=1"], "resources.cpu: unknown key; keys here: cpus, gpus, tpus, hosts, "
                          "placement"),
    (["max_trials=3", "max_trials.x=1"], "--set max_trials.x: max_trials is not a section"),
    (["controller.name=random", "controller.name.x.y=1"],
     "--set controller.name.x.y: controller.name is not a section"),
    (["max_trials=[1"], "--set max_trials: cannot read the value '[1'"),
    (["early_stopping.enabled=true", "proxy.seeds=[0, 1]"],
     "early_stopping.enabled: ASHA needs one seed per trial, got proxy.seeds [0, 1]"),
])
def test_bad_values_and_keys_are_named_exactly(assignments, message):
    with pytest.raises(ValueError) as error:
        load_config(assignments=assignments)
    assert str(error.value) == message


def test_a_whole_config_that_is_not_a_mapping_is_named_config():
    with pytest.raises(ValueError) as error:
        from_data(SearchConfig, [1])
    assert str(error.value) == "config: expected a mapping of keys, got [1]"


def test_empty_values_and_sections_take_the_defaults(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(str(empty)) == SearchConfig()
    assert load_config(assignments=["controller=", "proxy="]) == SearchConfig()


def test_asha_with_one_seed_evaluates_every_epoch():
    config = load_config(assignments=["early_stopping.enabled=true"])
    assert config.proxy.seeds == (0,)
    assert config.proxy_config() == dataclasses.replace(SearchConfig().proxy_config(),
                                                        eval_every_epoch=True)
    assert not SearchConfig().proxy_config().eval_every_epoch


@pytest.mark.parametrize("text, message", [
    ("space: [unclosed\n", "is not valid YAML"),
    ("[1, 2]\n", "must hold a mapping of keys, got [1, 2]"),
])
def test_a_bad_config_file_is_named_by_its_path(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        load_config(str(path))
    assert str(error.value).startswith(f"--config: {str(path)!r} ") and message in str(error.value)


def test_a_field_of_a_type_configs_cannot_hold_is_a_programming_error():
    @dataclasses.dataclass(frozen=True)
    class Section:
        weights: dict = dataclasses.field(default_factory=dict)

    with pytest.raises(TypeError) as error:
        from_data(Section, {"weights": {}}, "extra")
    assert str(error.value) == "extra.weights: unsupported config type <class 'dict'>"


def test_the_saved_config_keeps_the_order_of_the_fields():
    saved = yaml.safe_load(dump_config(SearchConfig()))
    assert list(saved) == [f.name for f in dataclasses.fields(SearchConfig)]
    assert list(saved["resources"]) == ["cpus", "gpus", "tpus", "hosts", "placement"]


def test_each_limit_itself_is_accepted():
    config = load_config(assignments=[
        "controller.seed=0", "controller.initial_mutants=0", "objective.name=mnas",
        "objective.target_flops=0.5", "objective.weight=0", "objective.delay_s=0",
        "constraints.max_flops=0.5", "constraints.max_params=0.5", "resources.cpus=0.5",
        "resources.gpus=0", "resources.tpus=0", "resources.hosts=1", "retries=0",
        "concurrency=1", "early_stopping.grace_epochs=1", "early_stopping.reduction_factor=2"])
    assert (config.objective.target_flops, config.resources.cpus) == (0.5, 0.5)


def test_unsafe_yaml_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.yaml"
    path.write_text("space: !!python/object/apply:os.system ['echo pwned']\n")
    assert main(["search", "--config", str(path), "--results-dir", str(tmp_path / "r")]) == 2
    assert "is not valid YAML" in capsys.readouterr().err


def test_show_config_prints_the_effective_config(capsys):
    assert main(["search", "--set", "proxy.preset=tiny", "--max-trials", "3", "--show-config"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["proxy"]["preset"] == "tiny" and shown["max_trials"] == 3
    assert shown["controller"]["initial"] == ["resnet50-seed"]


def test_initial_mutants_are_distinct_single_mutations_of_the_seed():
    space = get_space("spinenet-49")
    config = load_config(assignments=["controller.initial_mutants=6"])
    genomes = initial_genomes(config, space)
    assert genomes[0] == seed_genome(space) and len(genomes) == 7
    assert len({decode(g, space) for g in genomes}) == 7
    for child in genomes[1:]:
        assert distance(genomes[0], child, space)["total"] in (1, 2)  # a swap moves two
    assert initial_genomes(config, space) == genomes  # drawn from the controller's seed


def test_resnet50_seed_is_a_builtin_model(capsys):
    assert main(["inspect", "resnet50-seed", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    space = get_space("spinenet-49")
    spec = builtin_spec("resnet50-seed")
    assert spec == decode(seed_genome(space), space, builtin_spec("spinenet-49").scaling)
    # Scale-decreasing: ResNet-50's blocks level by level, outputs L3..L7.
    assert [b.level for b in spec.blocks] == [2, 3, 3, 3, 4, 4, 4, 4, 4, 5, 3, 4, 5, 6, 7]
    assert out["backbone_params"] != 21_831_488 and out["levels"]["7"] == [5, 5, 256]


def test_trial_metrics_are_the_mean_over_seeds():
    from nas.trainable import summarize

    runs = [{"reward": r, "ap": r, "ap50": 2 * r, "compile_s": c, "params": 7, "flops": 9,
             "spec_hash": "h", "seed": s} for r, c, s in ((0.1, 30.0, 0), (0.4, 2.0, 1))]
    result = summarize(runs)
    assert result["reward"] == pytest.approx(0.25) and result["ap50"] == pytest.approx(0.5)
    assert result["reward_std"] == pytest.approx(0.15) and result["compile_s"] == 16.0
    assert (result["params"], result["flops"], result["status"]) == (7, 9, "ok")
    assert [r["seed"] for r in result["per_seed"]] == [0, 1]

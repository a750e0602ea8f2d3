"""Exporting a run's best architectures: the ranking (one per network, ties to the earlier
trial), the spec files in both formats, the manifest, and a re-export replacing only its own
files."""

import dataclasses
import json

from controllers.interface import Proposal
from nas.export import MANIFEST, best_trial, export_top, top_trials
from nas.ledger import DONE, FAILED, Ledger
from search_space import (builtin_spec, canonical_hash, decode, genome_from_spec, get_space,
                          parse_spec_text, seed_genome, to_json)

SPACE = get_space("spinenet-49")


def _genomes():
    """The seed, SpineNet-49, a mutant of the seed, and a twin of the seed: labels 1 and 2
    (both base level 3) swapped with their adjustments, another genome of the same network."""
    seed = seed_genome(SPACE)
    order = list(seed.intermediate_order)
    i, j = order.index(1), order.index(2)
    order[i], order[j] = order[j], order[i]
    twin = dataclasses.replace(seed, intermediate_order=tuple(order))
    mutant = dataclasses.replace(seed, parents=seed.parents[:10] + ((0, 1),) + seed.parents[11:])
    return seed, genome_from_spec(builtin_spec("spinenet-49"), SPACE), mutant, twin


def _ledger(path, rows):
    """A ledger holding `rows` of (trial id, genome, status, reward), proposed in that order."""
    ledger = Ledger(path / "ledger.sqlite", create=True)
    for k, (trial_id, genome, status, reward) in enumerate(rows):
        spec = decode(genome, SPACE)
        ledger.add_proposal(Proposal(trial_id, genome), canonical_hash(spec), to_json(spec),
                            {"params": 1000 + k, "flops": 2000 + k})
        ledger.mark_running(trial_id)
        ledger.finish(trial_id, status, reward, {} if reward is None else {"ap": reward})
    return ledger


def _run(tmp_path):
    seed, sn49, mutant, twin = _genomes()
    assert canonical_hash(decode(twin, SPACE)) == canonical_hash(decode(seed, SPACE))
    folder = tmp_path / "run"
    folder.mkdir()
    return folder, _ledger(folder, [("t0", seed, DONE, 0.30), ("t1", sn49, DONE, 0.50),
                                    ("t2", mutant, FAILED, None), ("t3", twin, DONE, 0.60),
                                    ("t4", mutant, DONE, 0.30)])


def test_top_trials_rank_networks_once_each_and_ties_go_to_the_earlier(tmp_path):
    _, ledger = _run(tmp_path)
    # t3 is the seed's network at 0.60; the seed's own t0 is the same network, so it drops out;
    # the failed t2 never counts; t4 ties t0 at 0.30 and comes after it.
    assert [t["trial_id"] for t in top_trials(ledger, 5)] == ["t3", "t1", "t4"]
    assert [t["trial_id"] for t in top_trials(ledger, 2)] == ["t3", "t1"]
    assert best_trial(ledger) == {"trial_id": "t3", "reward": 0.60,
                                  "spec_hash": canonical_hash(decode(_genomes()[0], SPACE))}


def test_tie_between_two_networks_goes_to_the_earlier_trial(tmp_path):
    seed, sn49, _, _ = _genomes()
    ledger = _ledger(tmp_path, [("a", sn49, DONE, 0.25), ("b", seed, DONE, 0.25)])
    assert [t["trial_id"] for t in top_trials(ledger, 2)] == ["a", "b"]
    empty = Ledger(tmp_path / "empty.sqlite", create=True)
    assert top_trials(empty, 3) == [] and best_trial(empty) is None


def test_export_writes_both_formats_and_a_manifest(tmp_path):
    folder, ledger = _run(tmp_path)
    out = export_top(folder, ledger, top=2)
    assert out == folder / "specs"
    assert sorted(p.name for p in out.iterdir()) == sorted([
        MANIFEST, "rank1-t3.json", "rank1-t3.model_garden.py", "rank2-t1.json",
        "rank2-t1.model_garden.py"])
    seed, sn49, _, twin = _genomes()
    for name, genome in (("rank1-t3", twin), ("rank2-t1", sn49)):
        spec = decode(genome, SPACE)
        assert parse_spec_text((out / f"{name}.json").read_text()) == spec
        assert json.loads((out / f"{name}.json").read_text())["name"] == f"run/{name[6:]}"
        garden = (out / f"{name}.model_garden.py").read_text()
        assert parse_spec_text(garden.split("SPINENET_BLOCK_SPECS = ", 1)[1]) == spec
    header = (out / "rank1-t3.model_garden.py").read_text().splitlines()[:2]
    assert header == [f"# Search run, rank 1: trial t3, reward 0.6, spec hash "
                      f"{canonical_hash(decode(seed, SPACE))}.",
                      "# block_specs for TF Model Garden's SpineNet builder."]
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest == [
        {"rank": 1, "trial_id": "t3", "reward": 0.60, "spec_hash": canonical_hash(decode(twin, SPACE)),
         "params": 1003, "flops": 2003, "metrics": {"ap": 0.60},
         "files": ["rank1-t3.json", "rank1-t3.model_garden.py"]},
        {"rank": 2, "trial_id": "t1", "reward": 0.50, "spec_hash": canonical_hash(decode(sn49, SPACE)),
         "params": 1001, "flops": 2001, "metrics": {"ap": 0.50},
         "files": ["rank2-t1.json", "rank2-t1.model_garden.py"]}]


def test_a_new_export_replaces_its_own_files_only(tmp_path):
    folder, ledger = _run(tmp_path)
    out = tmp_path / "elsewhere"
    export_top(folder, ledger, top=3, out=out)
    (out / "notes.txt").write_text("mine")
    export_top(folder, ledger, top=1, formats=("json",), out=out)
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, "notes.txt", "rank1-t3.json"])
    assert [e["files"] for e in json.loads((out / MANIFEST).read_text())] == [["rank1-t3.json"]]
    export_top(folder, ledger, top=1, formats=("modelgarden",), out=out)
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, "notes.txt",
                                                           "rank1-t3.model_garden.py"])


def test_a_manifest_naming_files_elsewhere_removes_none_of_them(tmp_path):
    folder, ledger = _run(tmp_path)
    out = export_top(folder, ledger, top=1)
    outside = tmp_path / "outside.txt"
    outside.write_text("not the export's")
    manifest = json.loads((out / MANIFEST).read_text())
    manifest[0]["files"].append("../../outside.txt")
    (out / MANIFEST).write_text(json.dumps(manifest))
    export_top(folder, ledger, top=1)
    assert outside.read_text() == "not the export's"



def test_a_failed_trial_never_ranks_even_with_a_reward(tmp_path):
    seed, sn49, _, _ = _genomes()
    ledger = _ledger(tmp_path, [("a", sn49, FAILED, 0.9), ("b", seed, DONE, 0.1)])
    assert [t["trial_id"] for t in top_trials(ledger, 2)] == ["b"]


def test_the_manifest_text_is_indented_json(tmp_path):
    """Exports are committed with a run's results: the manifest's layout is fixed, so a
    re-export of the same trials changes no byte."""
    folder, ledger = _run(tmp_path)
    out = export_top(folder, ledger, top=1, formats=("json",))
    text = (out / MANIFEST).read_text()
    assert text.startswith('[\n  {\n    "rank": 1,\n    "trial_id": "t3",\n')
    assert text.endswith("\n]\n")
    export_top(folder, ledger, top=1, formats=("json",))
    assert (out / MANIFEST).read_text() == text


def test_export_into_a_new_nested_folder_and_over_files_removed_by_hand(tmp_path):
    folder, ledger = _run(tmp_path)
    out = export_top(folder, ledger, top=2, formats=("json",), out=tmp_path / "a" / "b")
    (out / "rank1-t3.json").unlink()
    manifest = json.loads((out / MANIFEST).read_text())
    (out / MANIFEST).write_text(json.dumps(manifest + [{"note": "added by hand, no files"}]))
    export_top(folder, ledger, top=2, formats=("json",), out=out)
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, "rank1-t3.json",
                                                           "rank2-t1.json"])

"""`nas rediscover` end to end, as a user runs it: the similarity check with its report and
specs, two trials of the tiny proxy with the retraining, a resume with a larger budget, and
bad input refused with exit 2 and nothing written."""

import json
import shutil
import sqlite3
import statistics

import pytest
import yaml

from nas.ledger import LEDGER_FILE
from nas.stack import genome_of
from search_space import (builtin_spec, canonical_hash, decisions, distance, genome_from_spec,
                          get_space, read_spec, similarity)
from tests.nas.search_helpers import nas_env, run, status_json

pytestmark = pytest.mark.slow  # real processes (Ray or subprocesses)

CHECK = "a controller check, not a training result"
SPACE = get_space("spinenet-49")
SEED, TARGET = (genome_of(name, SPACE, name) for name in ("resnet50-seed", "spinenet-49"))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return nas_env(tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="module")
def similarity_run(env, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    out = run(["rediscover", "--objective", "similarity", "--budget", 12, "--name", "sim",
               "--results-dir", results, "--quiet"], env)
    return results, out


def _report_rows(text: str, section: str) -> dict:
    """{first cell: the other cells} of the table under `## section` in a Markdown report."""
    table = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split(" | ") for line in table.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[2:]}


def _distance_cell(genome) -> str:
    d = distance(genome, TARGET, SPACE)
    return f"{d['total']} ({d['levels']} / {d['parents']} / {d['block_fns']})"


def _levels_cell(genome) -> str:
    return " ".join(map(str, decisions(genome, SPACE)["levels"]))


def test_similarity_rediscovery_reports_distances_levels_and_exports_both_formats(
        similarity_run, env):
    results, out = similarity_run
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("search sim: space spinenet-49, controller evolution (seed 0)")
    assert lines[1] == f"objective similarity: {CHECK}"
    assert lines[-1] == f"rediscovery report {results / 'sim' / 'rediscovery.md'} ({CHECK})"
    folder = results / "sim"
    # The preset: the seed alone, then its mutants; evolution scaled to the budget of 12.
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert (config["controller"]["initial"], config["controller"]["initial_mutants"],
            config["controller"]["evolution"]["population_size"],
            config["controller"]["evolution"]["tournament_size"], config["max_trials"],
            config["objective"]["target"]) == (["resnet50-seed"], 3, 4, 2, 12, "spinenet-49")
    status = status_json(results, "sim", env)
    assert status["finished"] == 12
    first = next(t for t in status["trials"] if t["trial_id"] == "evolution-0")
    assert first["spec_hash"] == canonical_hash(builtin_spec("resnet50-seed"))

    text = (folder / "rediscovery.md").read_text()
    assert f"**Objective `similarity`: {CHECK}.**" in text
    table, levels = _report_rows(text, "Architectures"), _report_rows(text, "Level sequences")
    manifest = json.loads((folder / "specs" / "top.json").read_text())
    seed_hash = canonical_hash(builtin_spec("resnet50-seed"))
    found = [f"found #{m['rank']} ({m['trial_id']}"
             + (" = ResNet-50 seed)" if m["spec_hash"] == seed_hash else ")") for m in manifest]
    assert list(table) == list(levels) == ["ResNet-50 seed", "SpineNet-49", *found]
    assert table["SpineNet-49"][6] == "0 (0 / 0 / 0)"
    assert table["ResNet-50 seed"][6] == _distance_cell(SEED)
    assert levels["SpineNet-49"] == [_levels_cell(TARGET)]
    assert levels["ResNet-50 seed"] == [_levels_cell(SEED)]
    assert len(manifest) == 3
    for entry, label in zip(manifest, found):
        json_file, garden_file = (folder / "specs" / name for name in entry["files"])
        assert (json_file.suffix, garden_file.name.endswith(".model_garden.py")) == (".json", True)
        assert canonical_hash(read_spec(json_file)) == entry["spec_hash"]
        assert read_spec(garden_file).blocks == read_spec(json_file).blocks
        genome = genome_from_spec(read_spec(json_file), SPACE)
        assert table[label][0] == f"{entry['reward']:.4f}" == f"{similarity(genome, TARGET, SPACE):.4f}"
        assert table[label][6] == _distance_cell(genome)
        assert table[label][7] == (f"[JSON](specs/{json_file.name}) "
                                   f"[Model Garden](specs/{garden_file.name})")
        assert levels[label] == [_levels_cell(genome)]
    assert f"Line SpineNet-49: 1.0000.\nLine ResNet-50 seed: " \
           f"{similarity(SEED, TARGET, SPACE):.4f}." in text
    assert "TODO" not in text
    for name in ("rediscovery_architectures.png", "rediscovery_reward.png", "report.md"):
        assert (folder / name).stat().st_size > 0, name

    # `nas report` writes the same rediscovery report again.
    (folder / "rediscovery.md").unlink()
    again = run(["report", "sim", "--results-dir", results], env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == \
        f"rediscovery report written to {folder / 'rediscovery.md'}"
    assert (folder / "rediscovery.md").read_text() == text


def test_resume_with_a_larger_budget_runs_only_the_new_trials(similarity_run, env, tmp_path):
    results, out = similarity_run
    assert out.returncode == 0, out.stderr
    shutil.copytree(results / "sim", tmp_path / "sim")
    before = {t["trial_id"]: t for t in status_json(tmp_path, "sim", env)["trials"]}
    resume = ["rediscover", "--name", "sim", "--results-dir", tmp_path, "--resume", "--quiet"]
    refused = run([*resume, "--objective", "ap"], env)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert "--resume: a run keeps its controller, proxy and objective" in refused.stderr
    resumed = run([*resume, "--budget", 16], env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    lines = resumed.stdout.strip().splitlines()
    assert lines[0] == f"objective similarity: {CHECK}"
    assert [line.split()[0] for line in lines[1:5]] == [f"[{k}/16]" for k in range(13, 17)]
    assert lines[-1].endswith(f"rediscovery.md ({CHECK})")
    status = status_json(tmp_path, "sim", env)
    after = {t["trial_id"]: t for t in status["trials"]}
    assert (status["max_trials"], status["finished"]) == (16, 16)
    assert {k: after[k] for k in before} == before  # nothing ran again
    assert len({t["spec_hash"] for t in after.values() if t["status"] == "done"}) == 16
    assert "16 trials done of a budget of 16" in (tmp_path / "sim" / "rediscovery.md").read_text()


def test_tiny_rediscovery_trains_a_trial_and_retrains_what_the_search_did_not(env, tmp_path):
    out = run(["rediscover", "--proxy", "tiny", "--budget", 1, "--retrain-seeds", 1,
               "--name", "tiny", "--results-dir", tmp_path, "--quiet"], env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert CHECK not in out.stdout
    status = status_json(tmp_path, "tiny", env)
    assert (status["finished"], status["failed"]) == (1, 0)
    trials = {t["spec_hash"]: t for t in status["trials"]}
    target_hash = canonical_hash(builtin_spec("spinenet-49"))
    # Only SpineNet-49 is trained again: the seed-0 rewards of the rest are the search's.
    retrained = [line for line in out.stdout.splitlines() if line.startswith("retrained")]
    assert len(retrained) == 1 and retrained[0].startswith("retrained spinenet-49 (seed 0): reward")
    with sqlite3.connect(tmp_path / "tiny" / LEDGER_FILE) as conn:
        (meta,) = conn.execute("SELECT value FROM meta WHERE key = 'rediscovery'").fetchone()
    record = json.loads(meta)
    assert record["retrain_seeds"] == 1 and target_hash not in trials
    assert {h: v for h, v in record["retrain"].items() if h != target_hash} == \
        {h: {"0": t["reward"]} for h, t in trials.items()}
    target_reward = record["retrain"][target_hash]["0"]
    assert 0 <= target_reward <= 1
    text = (tmp_path / "tiny" / "rediscovery.md").read_text()
    row = _report_rows(text, "Architectures")["SpineNet-49"]
    assert row[:4] == ["-", f"{target_reward:.4f}", "0.0000", f"0: {target_reward:.4f}"]
    assert f"Line SpineNet-49: {target_reward:.4f}." in text


@pytest.mark.parametrize("argv, message", [
    (["--budget", "0"], "--budget: must be >= 1, got 0"),
    (["--retrain-seeds", "-1"], "--retrain-seeds: must be >= 0, got -1"),
    (["--objective", "similarity", "--retrain-seeds", "2", "--budget", "1"],
     "--retrain-seeds: the similarity objective trains nothing, got 2"),
    (["--resume"], "--resume: name the run to resume with --name"),
    (["--name", "a/b"], "--name: 'a/b' must be 1-100 letters"),
])
def test_bad_input_exits_2_naming_the_option_and_writes_nothing(argv, message, env, tmp_path):
    out = run(["rediscover", *argv, "--results-dir", tmp_path / "results"], env, timeout=120)
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr.startswith(f"nas rediscover: error: {message}"), out.stderr
    assert not (tmp_path / "results").exists()


def test_paper_proxy_without_coco_says_how_to_prepare_it_and_leaves_nothing(env, tmp_path):
    out = run(["rediscover", "--proxy", "paper", "--name", "p", "--results-dir", tmp_path,
               "--quiet"], env)
    assert out.returncode == 2
    assert out.stderr.startswith("nas rediscover: error: COCO 2017 is not prepared in data_dir=")
    assert "tfds build coco/2017 --file_format=array_record" in out.stderr
    assert list(tmp_path.iterdir()) == []


def _rewards(ledger_path) -> list:
    """The rewards in the order results arrived, read from the ledger itself."""
    with sqlite3.connect(ledger_path) as conn:
        return [r for (r,) in conn.execute(
            "SELECT reward FROM trials WHERE status IN ('done', 'failed') ORDER BY result_seq")]


def _best_so_far(ledger_path) -> list:
    """The running best reward (the similarity objective never fails a trial)."""
    best, out = None, []
    for reward in _rewards(ledger_path):
        best = reward if best is None else max(best, reward)
        out.append(best)
    return out


def test_report_compare_overlays_a_random_control_and_refuses_what_it_cannot_compare(
        similarity_run, env, tmp_path):
    results, out = similarity_run
    assert out.returncode == 0, out.stderr
    shutil.copytree(results / "sim", tmp_path / "sim")
    sets = ["space=spinenet-49", "controller.name=random", "controller.initial=[resnet50-seed]",
            "controller.initial_mutants=0", "objective.name=similarity",
            "objective.target=spinenet-49", "max_trials=14"]
    control = run(["search", *(a for s in sets for a in ("--set", s)), "--name", "rnd",
                   "--results-dir", tmp_path, "--quiet"], env)
    assert control.returncode == 0, control.stderr
    report = run(["report", "sim", "--results-dir", tmp_path, "--compare", "rnd"], env)
    assert report.returncode == 0, report.stderr
    folder = tmp_path / "sim"
    assert report.stdout.splitlines()[-1] == \
        f"comparison written to {folder / 'compare_rnd.md'}"
    assert (folder / "compare_rnd.png").stat().st_size > 0
    text = (folder / "compare_rnd.md").read_text()
    mine, theirs = (_best_so_far(tmp_path / n / LEDGER_FILE) for n in ("sim", "rnd"))
    assert (len(mine), len(theirs)) == (12, 14)
    table = _report_rows(text, "Best reward so far")
    assert table == {"10": [f"{mine[9]:.4f}", f"{theirs[9]:.4f}", f"{mine[9] - theirs[9]:+.4f}"],
                     "12": [f"{mine[11]:.4f}", f"{theirs[11]:.4f}",
                            f"{mine[11] - theirs[11]:+.4f}"],
                     "14": ["-", f"{theirs[13]:.4f}", "-"]}
    medians = {n: [statistics.median(rewards[:k]) for k in range(1, len(rewards) + 1)]
               for n, rewards in (("sim", _rewards(tmp_path / "sim" / LEDGER_FILE)),
                                  ("rnd", _rewards(tmp_path / "rnd" / LEDGER_FILE)))}
    assert _report_rows(text, "Median reward so far") == {
        "10": [f"{medians['sim'][9]:.4f}", f"{medians['rnd'][9]:.4f}"],
        "12": [f"{medians['sim'][11]:.4f}", f"{medians['rnd'][11]:.4f}"],
        "14": ["-", f"{medians['rnd'][13]:.4f}"]}
    assert f"ResNet-50 seed: {similarity(SEED, TARGET, SPACE):.4f}." in text
    # The control's best joins the rediscovery report's tables.
    rows = _report_rows((folder / "rediscovery.md").read_text(), "Traits")
    assert [label for label in rows if label.startswith("rnd's best (random-")] != []

    def files():  # SQLite's own -wal and -shm files come and go with readers
        return {p.name: p.read_bytes() for p in folder.iterdir()
                if p.is_file() and not p.name.endswith(("-wal", "-shm"))}

    before = files()
    missing = run(["report", "sim", "--results-dir", tmp_path, "--compare", "nope"], env)
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr.startswith(f"nas report: error: --compare: no search 'nope' in "
                                     f"'{tmp_path}'"), missing.stderr
    shutil.copytree(tmp_path / "rnd", tmp_path / "other-space")
    with sqlite3.connect(tmp_path / "other-space" / LEDGER_FILE) as conn:
        (value,) = conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        conn.execute("UPDATE meta SET value = ? WHERE key = 'config'",
                     (json.dumps({**json.loads(value), "space": "r0-sp53"}),))
    other = run(["report", "sim", "--results-dir", tmp_path, "--compare", "other-space"], env)
    assert (other.returncode, other.stdout) == (2, "")
    assert other.stderr.startswith("nas report: error: --compare: 'sim' searched space "
                                   "'spinenet-49' and 'other-space' space 'r0-sp53'; their "
                                   "rewards are not comparable"), other.stderr
    assert files() == before


def test_rediscovery_report_counts_traits_and_the_distance_walked(similarity_run):
    results, out = similarity_run
    assert out.returncode == 0, out.stderr
    folder = results / "sim"
    text = (folder / "rediscovery.md").read_text()
    traits = _report_rows(text, "Traits")
    # Counted by hand from the two spec tables (tests/search_space/test_traits.py).
    assert traits["ResNet-50 seed"] == ["0", "4", "0", "0", "15"]
    assert traits["SpineNet-49"] == ["3", "11", "2", "4", "11"]
    with sqlite3.connect(folder / LEDGER_FILE) as conn:
        genomes = [json.loads(g) for (g,) in conn.execute(
            "SELECT genome FROM trials WHERE status = 'done' ORDER BY result_seq")]
    from search_space import Genome

    totals = [distance(Genome.from_dict(g), TARGET, SPACE)["total"] for g in genomes]
    # The best so far under similarity is the nearest so far; ties keep the earlier network.
    nearest = [min(totals[:n]) for n in range(1, len(totals) + 1)]
    population = 4  # evolution's population for a budget of 12
    rows = _report_rows(text, "Distance to SpineNet-49 per trial")
    assert list(rows) == ["10", "12"]
    for n in (10, 12):
        window = sorted(totals[n - population:n])
        assert rows[str(n)][0].split()[0] == str(nearest[n - 1])
        assert rows[str(n)][1] == f"{(window[1] + window[2]) / 2:g}"
    assert (folder / "rediscovery_distance.png").stat().st_size > 0
    seed_similarity = similarity(SEED, TARGET, SPACE)
    assert (f"Line: resnet50-seed (evolution-0, first initial genome), reward "
            f"{seed_similarity:.4f}.") in (folder / "report.md").read_text()
    assert "## Cost" in text and "12 trials in " in text

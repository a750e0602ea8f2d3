"""`nas search` end to end, as a user runs it: real proxy trainings on the tiny preset, then
status, export and report; a trial over two hosts; SIGKILL and Ctrl-C of the driver and resume;
failing trials; a second driver on the same run; Ray listening on loopback only."""

import json
import signal
import sqlite3

import numpy as np
import psutil
import pytest

from nas.driver import RAY_PROCESSES_FILE
from nas.ledger import LEDGER_FILE
from proxy_tasks.presets import get_preset
from search_space import (backbone_cost, builtin_spec, canonical_hash, parse_spec_text, read_spec,
                          retinanet_head_cost)
from tests.nas.search_helpers import ledger_counts, nas_env, run, start, status_json, wait_for

pytestmark = pytest.mark.slow  # real processes (Ray or subprocesses)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return nas_env(tmp_path_factory.mktemp("datasets"))


# Two epochs, each evaluated for ASHA (halving after the first); every detection counts, so
# the tiny preset's AP is not 0 and depends on the parameters.
TINY = ["--set", "proxy.preset=tiny", "--set", "proxy.score_threshold=0.0",
        "--set", "proxy.epochs=2", "--set", "early_stopping.enabled=true",
        "--set", "early_stopping.reduction_factor=2"]


@pytest.fixture(scope="module")
def tiny_run(env, tmp_path_factory):
    """Two trials one after the other, so ASHA's decision on the second is known."""
    results = tmp_path_factory.mktemp("results")
    out = run(["search", *TINY, "--max-trials", 2, "--concurrency", 1,
               "--name", "tiny", "--results-dir", results, "--quiet"], env, timeout=900)
    return results, out


def _trial_rows(folder, trial_id):
    """(final metrics, per-epoch metrics) of a trial in a run's ledger."""
    with sqlite3.connect(folder / LEDGER_FILE) as conn:
        (metrics,) = conn.execute("SELECT metrics FROM trials WHERE trial_id = ?", (trial_id,)
                                  ).fetchone()
        epochs = [json.loads(r[0]) for r in conn.execute(
            "SELECT metrics FROM epochs WHERE trial_id = ? ORDER BY rowid", (trial_id,))]
    return json.loads(metrics), epochs


def test_tiny_search_trains_reports_and_exports(tiny_run, env, tmp_path):
    results, out = tiny_run
    assert out.returncode == 0, out.stdout + out.stderr
    # The console: the summary line, one line per trial, the end; nothing from Ray or Tune.
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("search tiny: space spinenet-49, controller evolution")
    assert [line.split()[1] for line in lines[1:3]] == ["evolution-0", "evolution-1"]
    assert [line[:5] for line in lines[1:3]] == ["[1/2]", "[2/2]"]
    assert lines[3].startswith("search tiny: 2 trials done, 0 failed") and len(lines) == 5
    assert "Ray" not in out.stderr and "Tune" not in out.stderr

    status = status_json(results, "tiny", env)
    assert (status["max_trials"], status["finished"], status["failed"], status["in_flight"]) == \
        (2, 2, 0, 0)
    assert [t["trial_id"] for t in status["trials"]] == ["evolution-0", "evolution-1"]
    assert all(t["status"] == "done" and t["attempts"] == 1 for t in status["trials"])
    folder = results / "tiny"
    with sqlite3.connect(folder / LEDGER_FILE) as conn:
        seed_row = conn.execute("SELECT spec, spec_hash, params, flops, metrics, compile_s "
                                "FROM trials WHERE trial_id = 'evolution-0'").fetchone()
    # The first trial is the ResNet-50 seed, costed as the tiny proxy builds it (64 px, a
    # 1 x 16 head, 10 classes, 9 anchors).
    spec = parse_spec_text(seed_row[0])
    assert spec.blocks == builtin_spec("resnet50-seed").blocks
    assert seed_row[1] == canonical_hash(spec)
    backbone = backbone_cost(spec.with_scaling(get_preset("tiny").scaling), 64, 64)
    cost = backbone.total + retinanet_head_cost(backbone.levels, 1, 16, 10, 9)
    assert (seed_row[2], seed_row[3]) == (cost.params, cost.flops)
    metrics = json.loads(seed_row[4])
    assert metrics["compile_s"] == seed_row[5] > 0 and 0 <= metrics["ap"] <= 1
    assert [s["seed"] for s in metrics["per_seed"]] == [0]

    best = status["best"]
    exported = run(["export", "tiny", "--results-dir", results, "--top", "2", "--out",
                    tmp_path / "specs"], env)
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads((tmp_path / "specs" / "top.json").read_text())
    assert [m["rank"] for m in manifest] == [1, 2] and manifest[0]["trial_id"] == best["trial_id"]
    for entry in manifest:
        json_file, garden_file = (tmp_path / "specs" / name for name in entry["files"])
        assert canonical_hash(read_spec(json_file)) == entry["spec_hash"]
        assert read_spec(garden_file).blocks == read_spec(json_file).blocks
        inspected = run(["inspect", garden_file, "--json"], env)
        assert inspected.returncode == 0 and json.loads(inspected.stdout)["backbone_params"] > 0
    for name in ("report.md", "reward.png", "flops_reward.png", "best_architecture.png",
                 "config.yaml", "logs/driver.log", "specs/top.json"):
        assert (folder / name).stat().st_size > 0, name
    assert best["trial_id"] in (folder / "report.md").read_text()
    assert list((folder / "tensorboard" / "evolution-0").glob("events.out.tfevents.*"))
    assert run(["report", "tiny", "--results-dir", results], env).returncode == 0


def test_asha_stops_the_second_trial_only_when_it_is_behind_after_one_epoch(tiny_run):
    results, out = tiny_run
    assert out.returncode == 0, out.stderr
    first, first_epochs = _trial_rows(results / "tiny", "evolution-0")
    second, second_epochs = _trial_rows(results / "tiny", "evolution-1")
    assert [e["epoch"] for e in first_epochs] == [1, 2] and "stopped_early" not in first
    assert {"config", "date", "trial_id"}.isdisjoint(first_epochs[0])  # Tune's additions
    # ASHA with reduction factor 2 keeps a trial at its first rung iff its reward is at least
    # the median of the rewards recorded there: with two trials, iff it is not behind.
    behind = second_epochs[0]["reward"] < first_epochs[0]["reward"]
    assert [e["epoch"] for e in second_epochs] == ([1] if behind else [1, 2])
    assert second.get("stopped_early", False) == behind
    assert second["reward"] == second_epochs[-1]["reward"]


def test_early_stopping_never_stops_a_trial_at_its_last_epoch():
    from types import SimpleNamespace

    from nas.tune_bridge import EpochHalving

    scheduler = EpochHalving(time_attr="training_iteration", metric="reward", mode="max",
                             max_t=2, grace_period=1, reduction_factor=2)
    leader, last = SimpleNamespace(trial_id="a"), SimpleNamespace(trial_id="b")
    for trial in (leader, last):
        scheduler.on_trial_add(None, trial)
    assert scheduler.on_trial_result(None, leader, {"training_iteration": 1, "reward": 0.5}) \
        == "CONTINUE"
    assert scheduler.on_trial_result(None, last, {"training_iteration": 1, "reward": 0.1}) \
        == "STOP"
    # Plain ASHA stops every trial at max_t, before its final result may have arrived.
    for result in ({"training_iteration": 2, "reward": 0.0},
                   {"training_iteration": 3, "reward": 0.0, "final": True}):
        assert scheduler.on_trial_result(None, leader, result) == "CONTINUE"


def test_trial_over_two_hosts_trains_like_one_process(tiny_run, env, tmp_path):
    results, single = tiny_run
    assert single.returncode == 0, single.stderr
    out = run(["search", *TINY, "--set", "resources.hosts=2", "--set", "resources.cpus=1",
               "--set", "resources.placement=PACK",
               "--max-trials", 1, "--name", "hosts", "--results-dir", tmp_path, "--quiet"], env,
              timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    metrics, epochs = _trial_rows(tmp_path / "hosts", "evolution-0")
    one_metrics, one_epochs = _trial_rows(results / "tiny", "evolution-0")  # the seed, too
    (two, one) = metrics["per_seed"][0], one_metrics["per_seed"][0]
    assert (two["processes"], two["devices"], one["processes"], one["devices"]) == (2, 2, 1, 1)
    assert two["global_batch"] == one["global_batch"] == 8  # each process fed half of it
    assert [e["epoch"] for e in epochs] == [e["epoch"] for e in one_epochs] == [1, 2]
    # Each process fed half of every global batch: the first epoch's losses (both steps at the
    # initial parameters: the warm-up's first step has learning rate 0) are one device's on the
    # whole batch, up to the order of the cross-device sums. Later epochs and AP are not
    # compared: in the tiny proxy the cross-process sums' rounding alone moves them;
    # tests/proxy_tasks/test_multiprocess.py compares the trained parameters of two processes and one.
    for key in ("train_loss", "train_cls_loss", "train_box_loss"):
        np.testing.assert_allclose(epochs[0][key], one_epochs[0][key], rtol=1e-5)
    assert two["steps"] == one["steps"] and metrics["params"] == one_metrics["params"]
    assert two["ap"] > 0 and np.isfinite(epochs[1]["train_loss"])


def test_failing_trials_are_recorded_and_the_search_finishes(env, tmp_path):
    # 64 images a batch from the tiny preset's 16: every trial raises before it compiles.
    out = run(["search", "--set", "proxy.preset=tiny", "--set", "proxy.batch_size=64",
               "--max-trials", 3, "--name", "bad", "--results-dir", tmp_path, "--quiet"], env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("FAILED: ValueError: batch_size: 64 exceeds the 16 training") == 3
    status = status_json(tmp_path, "bad", env)
    assert (status["finished"], status["failed"], status["best"]) == (3, 3, None)
    with sqlite3.connect(tmp_path / "bad" / LEDGER_FILE) as conn:
        errors = [row[0] for row in conn.execute("SELECT error FROM trials")]
    assert all("Traceback" in e and "batch_size: 64 exceeds" in e for e in errors)


def _listening(pid: int):
    """Listening addresses of `pid` and its descendants."""
    pids = {pid} | {p.pid for p in psutil.Process(pid).children(recursive=True)}
    return {(c.laddr.ip, c.laddr.port) for c in psutil.net_connections("inet")
            if c.status == psutil.CONN_LISTEN and c.pid in pids}


def test_killed_and_interrupted_search_resumes_without_losing_or_repeating(env, tmp_path):
    search = ["search", "--set", "objective.name=similarity", "--set", "objective.delay_s=2",
              "--set", "controller.evolution.population_size=4",
              "--set", "controller.evolution.tournament_size=2", "--max-trials", 14,
              "--concurrency", 2, "--set", "resources.cpus=1", "--name", "r", "--results-dir",
              tmp_path, "--quiet"]
    ledger = tmp_path / "r" / LEDGER_FILE
    attempts_expected = {}
    left_by_killed = []

    def kill(driver):
        """SIGKILLs the driver; returns the trials it left running (read once it is dead: a
        trial may start or finish between a read and the signal)."""
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        left_by_killed.extend(json.loads((tmp_path / "r" / RAY_PROCESSES_FILE).read_text()))
        return running_now()

    def running_now():
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as conn:
            return [r[0] for r in conn.execute("SELECT trial_id FROM trials WHERE status='running'")]

    # Kill point 1: the first trials are running, none has finished.
    driver = start(search, env)
    wait_for(lambda: ledger_counts(ledger).get("running", 0) == 2, what="two running trials",
             process=driver)
    killed_running = kill(driver)
    assert ledger_counts(ledger).get("done", 0) == 0
    for trial_id in killed_running:
        attempts_expected[trial_id] = attempts_expected.get(trial_id, 1) + 1

    # Kill point 2, Ctrl-C: some trials have finished, others run.
    resume = ["search", "--name", "r", "--results-dir", tmp_path, "--resume", "--quiet"]
    driver = start(resume, env)
    wait_for(lambda: ledger_counts(ledger).get("done", 0) >= 4, what="four finished trials",
             process=driver)
    driver.send_signal(signal.SIGINT)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, out + err
    interrupted_running = running_now()
    assert "continue with: nas search --name r --resume" in out
    done_before = ledger_counts(ledger)["done"]
    assert done_before < 14

    # Kill point 3, SIGKILL again, later on; meanwhile Ray listens on loopback only, and a
    # second driver on the run is refused.
    driver = start(resume, env)
    wait_for(lambda: ledger_counts(ledger).get("done", 0) > done_before, what="a trial done",
             process=driver)
    listening = _listening(driver.pid)
    assert listening and all(ip in ("127.0.0.1", "::ffff:127.0.0.1") for ip, _ in listening)
    second = run(resume, env)
    assert second.returncode == 2 and "another driver (pid" in second.stderr
    wait_for(lambda: ledger_counts(ledger).get("done", 0) >= done_before + 3,
             what="three more finished trials", process=driver)
    killed_again = kill(driver)
    assert killed_again

    final = run(resume, env)
    assert final.returncode == 0, final.stdout + final.stderr
    status = status_json(tmp_path, "r", env)
    assert (status["finished"], status["failed"], status["in_flight"]) == (14, 0, 0)
    trials = {t["trial_id"]: t for t in status["trials"] if t["status"] == "done"}
    assert len(trials) == 14 and len({t["spec_hash"] for t in trials.values()}) == 14
    for trial_id in interrupted_running + killed_again:
        attempts_expected[trial_id] = attempts_expected.get(trial_id, 1) + 1
    assert {k: t["attempts"] for k, t in trials.items() if t["attempts"] > 1} == attempts_expected
    # What the killed drivers left of Ray was ended by the resumes.
    assert left_by_killed and not [e for e in left_by_killed if _alive(e)]


def _alive(entry) -> bool:
    try:
        return psutil.Process(entry["pid"]).create_time() == entry["created"]
    except psutil.NoSuchProcess:
        return False


def test_resume_refuses_another_code_version_unless_allowed(tiny_run, env, tmp_path):
    import shutil

    results, out = tiny_run
    assert out.returncode == 0, out.stderr
    shutil.copytree(results / "tiny", tmp_path / "tiny")
    with sqlite3.connect(tmp_path / "tiny" / LEDGER_FILE) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'code_version'",
                     (json.dumps("0.0.1+000000000000"),))
    resume = ["search", "--name", "tiny", "--results-dir", tmp_path, "--resume", "--quiet"]
    refused = run(resume, env)
    assert refused.returncode == 2
    assert "written by code version 0.0.1+000000000000 and this is 0.1.0+" in refused.stderr
    allowed = run(resume + ["--allow-version-change"], env)  # the budget is spent: no trial runs
    assert allowed.returncode == 0, allowed.stderr
    assert "search tiny: 2 trials done" in allowed.stdout
    listed = run(["status", "--results-dir", tmp_path], env)
    assert listed.stdout.startswith("tiny: 2/2 finished (0 failed)")

"""`nas search` on a Ray cluster of several nodes: a trial whose node is lost finishes on
another and is recorded once; a cluster started with `ray start` as the README says is joined."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from nas.ledger import LEDGER_FILE
from tests.nas.search_helpers import ledger_counts, nas_env, run, start, status_json, wait_for

pytestmark = pytest.mark.slow  # real processes (Ray or subprocesses)

RAY = Path(sys.executable).with_name("ray")
RAY_AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return nas_env(tmp_path_factory.mktemp("datasets"))


def test_trial_on_a_lost_node_finishes_elsewhere_once(env, tmp_path, monkeypatch):
    from ray.cluster_utils import Cluster

    # The cluster runs without authentication: the driver must find no token either (an earlier
    # local search leaves one in ~/.ray), as on a machine that never made one.
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in RAY_AUTH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    env = {**{k: v for k, v in env.items() if k not in RAY_AUTH_VARIABLES}, "HOME": str(home)}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    try:
        driver = start(["search", "--address", cluster.address,
                        "--set", "objective.name=similarity", "--set", "objective.delay_s=25",
                        "--set", "resources.cpus=1", "--max-trials", 1, "--concurrency", 1,
                        "--name", "lost", "--results-dir", tmp_path, "--quiet"], env)
        ledger = tmp_path / "lost" / LEDGER_FILE
        wait_for(lambda: ledger_counts(ledger).get("running"), what="the trial to start",
                 process=driver)
        (node,) = wait_for(lambda: [w for w in workers if _runs_a_trial(w)],
                           what="the trial's node", process=driver)
        cluster.remove_node(node)
        out, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, out + err
        status = status_json(tmp_path, "lost", env)
        (trial,) = status["trials"]
        assert (status["finished"], status["failed"]) == (1, 0)
        assert (trial["status"], trial["attempts"]) == ("done", 2)
        assert out.count("[1/1]") == 1  # reported once
    finally:
        cluster.shutdown()


def _runs_a_trial(node) -> bool:
    """Whether a Tune trial's process (`ray::ImplicitFunc...`) runs under this node's raylet."""
    (raylet,) = node.all_processes["raylet"]
    return any(child.name().startswith("ray::ImplicitFunc")
               for child in psutil.Process(raylet.process.pid).children())


def test_search_joins_a_cluster_started_as_the_readme_says(env, tmp_path):
    # A machine's token, made as the README says; `ray start --head` finds it and turns token
    # authentication on, and another node joins with RAY_AUTH_MODE=token.
    home = tmp_path / "home"
    home.mkdir()
    ray_env = {k: v for k, v in env.items() if k not in RAY_AUTH_VARIABLES}
    ray_env["HOME"] = str(home)
    subprocess.run([RAY, "get-auth-token", "--generate"], env=ray_env, check=True,
                   capture_output=True)
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # Ray's own temporary folders, short (its socket paths) and not the machine's /tmp/ray,
    # whose `ray_current_cluster` a plain ray.init of another Ray user would join.
    temp = Path(tempfile.mkdtemp(prefix="nas-ray-", dir="/tmp"))
    try:
        with _ray_node(["--head", "--port", port, "--num-cpus", 0, "--include-dashboard=false",
                        "--node-ip-address", "127.0.0.1", "--temp-dir", temp / "head"],
                       ray_env, tmp_path / "head.log") as head_log, \
             _ray_node(["--address", address, "--num-cpus", 1, "--node-ip-address",
                        "127.0.0.1", "--temp-dir", temp / "node"],
                       {**ray_env, "RAY_AUTH_MODE": "token"}, tmp_path / "node.log"):
            assert "Token authentication is enabled" in head_log.read_text()
            out = run(["search", "--address", address, "--set", "proxy.preset=tiny",
                       "--set", "objective.name=similarity", "--set", "resources.cpus=1",
                       "--max-trials", 1, "--concurrency", 1, "--name", "joined",
                       "--results-dir", tmp_path / "results", "--quiet"], ray_env, timeout=300)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "search joined: 1 trials done, 0 failed" in out.stdout
    assert "Token authentication" not in out.stderr  # Ray's notice goes to the run's log


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _ray_node(args, env, log: Path):
    """A `ray start ARGS --block` node, up; yields its log. Ended by killing its own processes
    (its session and their descendants), never with `ray stop`, which ends every Ray here."""
    with open(log, "w") as out:
        node = subprocess.Popen([RAY, "start", *map(str, args), "--block"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: "Ray runtime started" in log.read_text(), timeout=120,
                 what=f"ray start {args[0]}", process=node)
        yield log
    finally:
        descendants = []
        with contextlib.suppress(psutil.NoSuchProcess):
            descendants = psutil.Process(node.pid).children(recursive=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.pid, signal.SIGKILL)
        for process in descendants:  # trial workers start sessions of their own
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        node.wait(timeout=30)
        psutil.wait_procs(descendants, timeout=30)

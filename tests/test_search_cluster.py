"""`nas search` on a Ray cluster of several nodes: a trial whose node is lost finishes on
another and is recorded once."""

import psutil
import pytest

from nas.ledger import LEDGER_FILE
from tests.search_helpers import ledger_counts, nas_env, start, status_json, wait_for


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return nas_env(tmp_path_factory.mktemp("datasets"))


def test_trial_on_a_lost_node_finishes_elsewhere_once(env, tmp_path):
    from ray.cluster_utils import Cluster

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

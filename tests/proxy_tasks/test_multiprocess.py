"""Two processes on localhost (CPU collectives over gloo) train like one process."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from tests.proxy_tasks.test_sharded_training import train

pytestmark = pytest.mark.slow  # real processes (Ray or subprocesses)

ROOT = Path(__file__).resolve().parents[2]


# gRPC's message when the coordinator (process 0) cannot bind its port; it then dies at once.
BIND_FAILURE = "Failed to add port to server"
PORT_ATTEMPTS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _run_workers(port: int, outs, env):
    """(exit statuses, logs) of the two worker processes meeting at `port`."""
    worker = "tests.proxy_tasks.multiprocess_worker"
    procs = [subprocess.Popen([sys.executable, "-m", worker, str(port), str(i), str(outs[i])],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    logs = [procs[0].communicate(timeout=900)[0]]
    if procs[0].returncode != 0:  # process 1 would wait for the coordinator for ever
        procs[1].kill()
    logs.append(procs[1].communicate(timeout=900)[0])
    return [p.returncode for p in procs], logs


def test_two_processes_match_one_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONPATH"] = str(ROOT)
    outs = [tmp_path / f"proc{i}.npz" for i in range(2)]
    # The port is free when picked but may be taken before the coordinator binds it: retry.
    for _ in range(PORT_ATTEMPTS):
        statuses, logs = _run_workers(_free_port(), outs, env)
        if statuses[0] == 0 or BIND_FAILURE not in logs[0]:
            break
    assert statuses == [0, 0], logs
    state, losses = train(jax.devices()[:2])
    reference = [np.asarray(x) for x in jax.tree_util.tree_leaves(state.params)]
    for out in outs:
        got = np.load(out)
        # Same maths over the same two shards; only the all-reduce's summation order may differ.
        np.testing.assert_allclose(got["losses"], losses, rtol=1e-5)
        leaves = [got[f"arr_{i}"] for i in range(len(reference))]
        for a, b in zip(leaves, reference):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)

"""Two processes on localhost (CPU collectives over gloo) train like one process."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np

from tests.test_sharded_training import train

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_process(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONPATH"] = str(ROOT)
    outs = [tmp_path / f"proc{i}.npz" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-m", "tests.multiprocess_worker", str(port), str(i),
                               str(outs[i])], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    logs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    state, losses = train(jax.devices()[:2])
    reference = [np.asarray(x) for x in jax.tree_util.tree_leaves(state.params)]
    for out in outs:
        got = np.load(out)
        # Same maths over the same two shards; only the all-reduce's summation order may differ.
        np.testing.assert_allclose(got["losses"], losses, rtol=1e-5)
        leaves = [got[f"arr_{i}"] for i in range(len(reference))]
        for a, b in zip(leaves, reference):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)

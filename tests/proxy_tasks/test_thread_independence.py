"""A trial's bits do not depend on how many threads XLA's CPU pool has (a search runs one trial
a core; `nas proxy` runs on all of them)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # subprocesses

ROOT = Path(__file__).resolve().parents[2]


def _train(threads: int, out: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "tests.proxy_tasks.threads_worker",
                             str(threads), str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_one_and_two_pool_threads_train_the_same_bits(tmp_path):
    outs = {threads: tmp_path / f"threads{threads}.npz" for threads in (1, 2)}
    procs = {threads: _train(threads, out) for threads, out in outs.items()}
    logs = {threads: proc.communicate(timeout=600)[0] for threads, proc in procs.items()}
    assert [procs[t].returncode for t in (1, 2)] == [0, 0], logs
    one, two = (np.load(outs[t]) for t in (1, 2))
    assert (int(one["threads"]), int(two["threads"])) == (1, 2)
    np.testing.assert_array_equal(one["losses"], two["losses"])
    leaves = [name for name in one.files if name.startswith("arr_")]
    assert len(leaves) == len(two.files) - 2 and len(leaves) > 100
    for name in leaves:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)

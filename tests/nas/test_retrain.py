"""Retraining's child processes: a driver killed with SIGKILL during a retraining leaves no
training running behind it."""

import signal
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = pytest.mark.slow  # real processes (Ray or subprocesses)

PARENT = """
import subprocess, sys
from nas.retrain import _die_with_parent
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                         preexec_fn=_die_with_parent)
print(child.pid, flush=True)
child.wait()
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_child_dies_with_a_killed_parent():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert not _gone(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 20
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = not _gone(child)
    if alive:
        psutil.Process(child).kill()
    assert not alive

"""Running `nas` in a subprocess as a user would, and watching a run's ledger meanwhile."""

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def nas_env(data_dir) -> dict:
    """The test session's settings for a `nas` subprocess: one CPU device per process, XLA's
    quick compile, the session's compilation cache and datasets."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_backend_optimization_level=0"
    env["PYTHONPATH"] = str(ROOT)
    env["NAS_DATA_DIR"] = str(data_dir)
    return env


def start(args, env, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nas.cli", *map(str, args)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


def run(args, env, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.cli", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def status_json(results, name, env) -> dict:
    out = run(["status", name, "--results-dir", results, "--json"], env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # the whole of stdout is one JSON document


def ledger_counts(path) -> dict:
    """Trials per status in a ledger that a driver may be writing (empty before it exists)."""
    if not Path(path).exists():
        return {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
        try:
            return dict(conn.execute("SELECT status, COUNT(*) FROM trials GROUP BY status"))
        except sqlite3.OperationalError:  # the tables are being created
            return {}


def wait_for(condition, timeout=300, what="condition", process=None):
    """Polls `condition` until it is true; fails early if `process` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the process exited ({process.returncode}) while waiting for "
                                 f"{what}:\n{out}\n{err}")
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")

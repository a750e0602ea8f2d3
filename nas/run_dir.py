"""A search run's folder, `DIR/NAME/`: its layout, its lock, and the code version it records."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from importlib import metadata
from pathlib import Path
from typing import List, Mapping

LOCK_FILE = "driver.lock"
CONFIG_FILE = "config.yaml"
SPECS_DIR = "specs"
LOGS_DIR = "logs"
TUNE_DIR = "tune"
TENSORBOARD_DIR = "tensorboard"
REPORT_FILE = "report.md"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# The sources a reward depends on, under `SOURCE_ROOT`: the proxy (its Python and the C++ of
# its kernels, `proxy_tasks/cpu_kernels`, whose build flags are in its build.py), the search space,
# and the trial that averages its seeds (and the message naming what it averages). AP moves with
# float rounding, so any change here makes rewards of two runs incomparable.
SOURCE_ROOT = Path(__file__).resolve().parents[1]
VERSIONED_SOURCES = ("proxy_tasks", "search_space", "nas/trainable.py", "nas/trial_messages.py")
SOURCE_SUFFIXES = (".py", ".cc", ".h")


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ValueError(f"--name: {name!r} must be 1-100 letters, digits, '.', '_' or '-', "
                         f"starting with a letter or digit")
    return name


def code_version(proxy_config: Mapping) -> str:
    """`VERSION+HASH.PATH`: the package version; a hash of the versioned sources, the proxy
    config, JAX's version, the CPU convolution path (with oneDNN's version where that is
    oneDNN: the paths round differently) and whether Adam steps fused; and the convolution path,
    the one taken, not just the one `NAS_CPU_CONV` asks for."""
    from proxy_tasks.cpu_kernels.ops import cpu_path, fused_optimizer

    digest = hashlib.sha256()
    for path in versioned_files():
        digest.update(str(path.relative_to(SOURCE_ROOT)).encode())
        digest.update(path.read_bytes())
    digest.update(repr(sorted(proxy_config.items())).encode())
    digest.update(metadata.version("jax").encode())
    conv = cpu_path()
    digest.update(conv.encode())
    if conv == "onednn":
        digest.update(metadata.version("onednn-cpu-gomp").encode())
    if fused_optimizer():
        digest.update(b"fused adamw")
    return f"{metadata.version('spinenet-nas')}+{digest.hexdigest()[:12]}.{conv}"


def versioned_files() -> List[Path]:
    """The files of `VERSIONED_SOURCES` whose change can change a reward, in a fixed order."""
    files = []
    for name in VERSIONED_SOURCES:
        source = SOURCE_ROOT / name
        candidates = source.rglob("*") if source.is_dir() else [source]
        files += [p for p in candidates if p.suffix in SOURCE_SUFFIXES and p.is_file()]
    return sorted(files)


def open_run(results_dir: Path, name: str):
    """The ledger of the run `results_dir/name`, for reading while a driver may be writing."""
    from nas.ledger import LEDGER_FILE, Ledger

    folder = Path(results_dir) / name
    if not (folder / LEDGER_FILE).exists():
        raise ValueError(f"run: no search {name!r} in {str(results_dir)!r}")
    return folder, Ledger(folder / LEDGER_FILE)


def driver_running(run_dir: Path) -> bool:
    """Whether a driver holds the run's lock now."""
    path = Path(run_dir) / LOCK_FILE
    if not path.exists():
        return False
    with open(path) as file:
        try:
            fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(file, fcntl.LOCK_UN)
    return False


class RunLock:
    """An exclusive lock on a run folder for one driver process; the OS releases it when the
    process dies, so a killed driver never leaves a stale lock."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self.file = None

    def acquire(self) -> "RunLock":
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            self.file = None
            raise ValueError(f"run {self.path.parent.name!r}: another driver ({holder}) is "
                             f"running this search; wait for it or stop it first") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"pid {os.getpid()}\n")
        self.file.flush()
        return self

    def release(self) -> None:
        if self.file is not None:
            fcntl.flock(self.file, fcntl.LOCK_UN)
            self.file.close()
            self.file = None

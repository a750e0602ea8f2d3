"""Run under tcmalloc when it is installed: XLA's CPU compile and steps are 10-20% faster with it
than with glibc malloc (bench/results/model_step.md). `python -m nas.preload ARGS` runs
`python ARGS` so; the `nas` command re-executes itself so. `NAS_TCMALLOC=0` turns it off."""

from __future__ import annotations

import ctypes.util
import os
import sys
from typing import List, Optional

LIBRARY = "tcmalloc_minimal"  # Debian/Ubuntu: libtcmalloc-minimal4


def preload_env(environ=os.environ) -> Optional[dict]:
    """The environment to re-execute with, or None where tcmalloc is off, missing or loaded."""
    if environ.get("NAS_TCMALLOC", "1") == "0" or not sys.platform.startswith("linux"):
        return None
    if LIBRARY in environ.get("LD_PRELOAD", ""):
        return None
    library = ctypes.util.find_library(LIBRARY)
    if library is None:
        return None
    env = dict(environ)
    env["LD_PRELOAD"] = " ".join(filter(None, (environ.get("LD_PRELOAD"), library)))
    env.setdefault("TCMALLOC_RELEASE_RATE", "0")  # keep freed pages: XLA reallocates them each step
    return env


def release_free_memory() -> None:
    """Hands the allocator's free pages back to the OS: tcmalloc keeps them here
    (TCMALLOC_RELEASE_RATE=0), glibc keeps them in its arenas. A long-lived process calls this
    after freeing a lot, so that what it freed stops counting in its resident memory."""
    process = ctypes.CDLL(None)
    if hasattr(process, "MallocExtension_ReleaseFreeMemory"):
        process.MallocExtension_ReleaseFreeMemory()
    elif hasattr(process, "malloc_trim"):
        process.malloc_trim(0)


def reexec(args: List[str]) -> None:
    """Replaces this process by `python ARGS` under tcmalloc; returns where it cannot."""
    env = preload_env()
    if env is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, *args], env)


if __name__ == "__main__":
    reexec(sys.argv[1:])
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])

"""Run under an allocator that keeps XLA's per-step buffers: tcmalloc where it is installed,
else glibc malloc tuned by `GLIBC_TUNABLES`. Plain glibc malloc maps each large buffer afresh on
every step (page faults: a quarter of a 256 px step's CPU, bench/results/model_step.md).
`python -m nas.preload ARGS` runs `python ARGS` so; the `nas` command re-executes itself so.
`NAS_PRELOAD=0` turns it off."""

from __future__ import annotations

import ctypes.util
import os
import sys
from typing import List, Optional

LIBRARY = "tcmalloc_minimal"  # Debian/Ubuntu: libtcmalloc-minimal4
# Without tcmalloc: blocks under 1 GiB from the heap rather than fresh mmaps, freed memory kept at
# the heap's top, and transparent huge pages for what is still mapped (a worker thread's large
# blocks: its arena cannot hold them), so one page fault where there were 512. One arena
# (`arena_max=1`) would remove those faults too, but its lock made trials 1.7x slower.
GLIBC_TUNABLES = ("glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=1073741824:"
                  "glibc.malloc.trim_threshold=4294967296")


def preload_env(environ=os.environ) -> Optional[dict]:
    """The environment to re-execute with (tcmalloc preloaded, else glibc's tunables set), or
    None where turned off, not on Linux, or already applied (tunables the user set included)."""
    if environ.get("NAS_PRELOAD", "1") == "0" or not sys.platform.startswith("linux"):
        return None
    if LIBRARY in environ.get("LD_PRELOAD", ""):
        return None
    library = ctypes.util.find_library(LIBRARY)
    env = dict(environ)
    if library is None:
        if "GLIBC_TUNABLES" in environ:
            return None
        env["GLIBC_TUNABLES"] = GLIBC_TUNABLES
        return env
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
    """Replaces this process by `python ARGS` under `preload_env`; returns where there is none."""
    env = preload_env()
    if env is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, *args], env)


if __name__ == "__main__":
    reexec(sys.argv[1:])
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])

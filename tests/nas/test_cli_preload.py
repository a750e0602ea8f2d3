"""`nas.preload`: when the `nas` command re-executes itself under tcmalloc or tuned glibc malloc,
and with what."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas import preload


@pytest.fixture
def found(monkeypatch):
    monkeypatch.setattr(preload.ctypes.util, "find_library",
                        lambda name: "libtcmalloc_minimal.so.4" if name == preload.LIBRARY else None)
    monkeypatch.setattr(preload.sys, "platform", "linux")


def test_preloads_after_the_users_own_libraries(found):
    env = preload.preload_env({"LD_PRELOAD": "/opt/mine.so", "PATH": "/bin"})
    assert env == {"LD_PRELOAD": "/opt/mine.so libtcmalloc_minimal.so.4", "PATH": "/bin",
                   "TCMALLOC_RELEASE_RATE": "0"}
    assert preload.preload_env({})["LD_PRELOAD"] == "libtcmalloc_minimal.so.4"


@pytest.mark.parametrize("environ", [
    {"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"},  # loaded: no loop
    {"NAS_PRELOAD": "0"},
])
def test_no_reexec_when_loaded_or_turned_off(found, environ):
    assert preload.preload_env(environ) is None


@pytest.fixture
def missing(monkeypatch):
    monkeypatch.setattr(preload.ctypes.util, "find_library", lambda name: None)
    monkeypatch.setattr(preload.sys, "platform", "linux")


def test_tunes_glibc_malloc_without_the_library(missing):
    assert preload.preload_env({"PATH": "/bin"}) == {"PATH": "/bin",
                                                     "GLIBC_TUNABLES": preload.GLIBC_TUNABLES}


@pytest.mark.parametrize("environ", [
    {"GLIBC_TUNABLES": preload.GLIBC_TUNABLES},  # applied: no loop
    {"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"},  # the user's own
    {"NAS_PRELOAD": "0"},
])
def test_no_reexec_when_tuned_or_turned_off(missing, environ):
    assert preload.preload_env(environ) is None


# A worker thread allocates, fills and frees a 64 MiB block three times; prints the page faults of
# the last two rounds.
FAULTS = """
import ctypes, resource, threading
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
faults = []
def rounds():
    for _ in range(3):
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
        block = libc.malloc(64 << 20)
        ctypes.memset(block, 1, 64 << 20)
        libc.free(block)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
thread = threading.Thread(target=rounds)
thread.start()
thread.join()
print(faults[-1] - faults[1])
"""


def transparent_huge_pages() -> bool:
    """Whether the kernel gives huge pages to memory that asks for them (`madvise` or `always`)."""
    try:
        return "[never]" not in Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not transparent_huge_pages(), reason="needs Linux transparent huge pages")
def test_tuned_glibc_maps_a_large_block_in_huge_pages(missing):
    def faults(environ):
        return int(subprocess.run([sys.executable, "-c", FAULTS], env=environ, capture_output=True,
                                  text=True, check=True).stdout)

    plain = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "LD_PRELOAD")}
    pages = 2 * (64 << 20) // 4096
    assert faults(plain) >= pages  # each round maps the block afresh, a fault a 4 KiB page
    assert faults(preload.preload_env(plain)) < pages // 20


def test_module_runs_python_with_the_arguments():
    out = subprocess.run([sys.executable, "-m", "nas.preload", "-c", "import sys; print(sys.argv[1:])",
                          "a", "b"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['a', 'b']"

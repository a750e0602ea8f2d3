"""`nas.preload`: when the `nas` command re-executes itself under tcmalloc, and with what."""

import subprocess
import sys

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
    {"NAS_TCMALLOC": "0"},
])
def test_no_reexec_when_loaded_or_turned_off(found, environ):
    assert preload.preload_env(environ) is None


def test_no_reexec_without_the_library(monkeypatch):
    monkeypatch.setattr(preload.ctypes.util, "find_library", lambda name: None)
    assert preload.preload_env({}) is None


def test_module_runs_python_with_the_arguments():
    out = subprocess.run([sys.executable, "-m", "nas.preload", "-c", "import sys; print(sys.argv[1:])",
                          "a", "b"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['a', 'b']"

"""The code version a run records: every source that can change a reward (the kernels' C++ and
build flags too) moves it, it names the CPU path actually taken, and an old run folder's version
still reads."""

import shutil

import pytest

from nas import run_dir
from nas.commands import status as status_cmd
from nas.cli import main
from proxy_tasks.cpu_kernels import ops
from tests.nas.test_search_state import config, run

PROXY = {"epochs": 1}
OLD_VERSION = "0.1.0+0123456789ab"  # the format of run folders before the path was named
REAL_ROOT = run_dir.SOURCE_ROOT


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A copy of the versioned sources, standing in for the real ones."""
    for name in ("proxy_tasks", "search_space"):
        shutil.copytree(REAL_ROOT / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__", "build"))
    (tmp_path / "nas").mkdir()
    for name in ("trainable.py", "trial_messages.py"):
        shutil.copy(REAL_ROOT / "nas" / name, tmp_path / "nas")
    monkeypatch.setattr(run_dir, "SOURCE_ROOT", tmp_path)
    return tmp_path


def flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 1
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("source", ["proxy_tasks/cpu_kernels/norm.cc", "proxy_tasks/cpu_kernels/common.h",
                                    "proxy_tasks/cpu_kernels/build.py", "nas/trainable.py",
                                    "nas/trial_messages.py"])
def test_one_byte_of_a_source_changes_the_version(tree, source, monkeypatch):
    copied = run_dir.code_version(PROXY)
    with monkeypatch.context() as real:
        real.setattr(run_dir, "SOURCE_ROOT", REAL_ROOT)
        assert run_dir.code_version(PROXY) == copied  # the copy versions as the real tree does
    flip_byte(tree / source, 200)
    changed = run_dir.code_version(PROXY)
    assert changed != copied and changed.split("+")[0] == copied.split("+")[0]
    flip_byte(tree / source, 200)
    assert run_dir.code_version(PROXY) == copied


def test_a_file_that_cannot_change_a_reward_leaves_the_version(tree):
    before = run_dir.code_version(PROXY)
    (tree / "proxy_tasks" / "cpu_kernels" / "build").mkdir()
    (tree / "proxy_tasks" / "cpu_kernels" / "build" / "libcpu_kernels.so").write_bytes(b"\0" * 64)
    (tree / "proxy_tasks" / "notes.txt").write_text("not code")
    assert run_dir.code_version(PROXY) == before


def test_the_version_names_the_cpu_path_taken_not_the_one_asked_for(monkeypatch):
    monkeypatch.delenv("NAS_CPU_CONV", raising=False)
    monkeypatch.setattr(ops, "library", lambda: None)  # the extension not built, or not found
    hidden = run_dir.code_version(PROXY)
    assert hidden.endswith(".xla")
    monkeypatch.setenv("NAS_CPU_CONV", "xla")
    assert run_dir.code_version(PROXY) == hidden  # as if XLA's had been asked for


def test_with_the_extension_the_version_names_onednn(monkeypatch):
    if ops.library() is None:
        pytest.skip("oneDNN extension not built")
    monkeypatch.delenv("NAS_CPU_CONV", raising=False)
    onednn = run_dir.code_version(PROXY)
    monkeypatch.setenv("NAS_CPU_CONV", "xla")
    xla = run_dir.code_version(PROXY)
    assert onednn.endswith(".onednn") and xla.endswith(".xla")
    assert onednn.split(".onednn")[0] != xla.split(".xla")[0]  # the hash too


def test_an_old_run_folders_version_still_reads(tmp_path, capsys):
    folder = tmp_path / "old"
    folder.mkdir()
    ledger, _, _ = run(folder / "ledger.sqlite", config("evolution", max_trials=4))
    ledger.set_meta({"code_version": OLD_VERSION})
    ledger.close()
    assert status_cmd.status(tmp_path, "old")["code_version"] == OLD_VERSION
    assert main(["report", "old", "--results-dir", str(tmp_path)]) == 0
    assert f"Code version {OLD_VERSION}." in (folder / "report.md").read_text()


def test_the_fused_adam_step_changes_the_version(monkeypatch):
    if ops.library() is None:
        pytest.skip("CPU kernels not built")
    monkeypatch.setenv("NAS_CPU_OPTIMIZER", "optax")
    optax_path = run_dir.code_version(PROXY)
    monkeypatch.setenv("NAS_CPU_OPTIMIZER", "fused")
    # Its bits are optax's where XLA compiles the chain as for a detector, not proven everywhere.
    assert run_dir.code_version(PROXY) != optax_path

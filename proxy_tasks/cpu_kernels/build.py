"""Compiles the oneDNN convolution, max-pool and batch-norm custom calls (`conv.cc`, `pool.cc`,
`norm.cc`) against the oneDNN wheels and XLA's FFI headers: `python -m proxy_tasks.cpu_kernels.build`
(the Makefile runs it after installing)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from proxy_tasks.cpu_kernels.ops import LIBRARY

SOURCES = [Path(__file__).resolve().parent / name for name in ("conv.cc", "pool.cc", "norm.cc")]


def prefix_dirs() -> tuple[Path, Path]:
    """(include, lib) where the onednn and onednn-devel wheels put their files: the environment's."""
    prefix = Path(sys.prefix)
    return prefix / "include", prefix / "lib"


def command() -> list[str]:
    import jax.ffi

    include, lib = prefix_dirs()
    return ["g++", "-O3", "-std=c++17", "-shared", "-fPIC", "-fopenmp",
            "-isystem", str(include), "-isystem", jax.ffi.include_dir(), *map(str, SOURCES),
            "-o", str(LIBRARY),
            f"-L{lib}", "-l:libdnnl.so.3", f"-Wl,-rpath,{lib}"]


def main() -> int:
    include, lib = prefix_dirs()
    if shutil.which("g++") is None or not (include / "oneapi" / "dnnl" / "dnnl.hpp").exists():
        print("oneDNN convolutions not built (needs g++ and the onednn wheels); "
              "convolutions run through XLA", file=sys.stderr)
        return 0
    LIBRARY.parent.mkdir(exist_ok=True)
    cmd = command()
    print(" ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())

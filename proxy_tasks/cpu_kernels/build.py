"""Compiles the oneDNN convolution, max-pool, batch-norm, AdamW and Threefry custom calls
(`conv.cc`, `pool.cc`, `norm.cc`, `adam.cc`, `threefry.cc`) against the oneDNN wheels and XLA's
FFI headers: `python -m proxy_tasks.cpu_kernels.build` (the Makefile runs it after installing)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from proxy_tasks.cpu_kernels.ops import LIBRARY

HERE = Path(__file__).resolve().parent
SOURCES = [HERE / name for name in ("conv.cc", "pool.cc", "norm.cc", "threefry.cc")]
# Compiled on its own: without errno its square roots vectorize (norm.cc's code would change), and
# the compiler contracts no multiply-adds of its own (adam.cc's are XLA's, as std::fma).
ADAM, ADAM_OBJECT = HERE / "adam.cc", LIBRARY.parent / "adam.o"


def prefix_dirs() -> tuple[Path, Path]:
    """(include, lib) where the onednn and onednn-devel wheels put their files: the environment's."""
    prefix = Path(sys.prefix)
    return prefix / "include", prefix / "lib"


def commands() -> list[list[str]]:
    """The g++ runs that build LIBRARY: adam.cc's object, then the library."""
    import jax.ffi

    include, lib = prefix_dirs()
    flags = ["g++", "-O3", "-std=c++17", "-fPIC", "-fopenmp", "-isystem", str(include),
             "-isystem", jax.ffi.include_dir()]
    return [flags + ["-fno-math-errno", "-ffp-contract=off", "-c", str(ADAM), "-o",
                     str(ADAM_OBJECT)],
            flags + ["-shared", *map(str, SOURCES), str(ADAM_OBJECT), "-o", str(LIBRARY),
                     f"-L{lib}", "-l:libdnnl.so.3", f"-Wl,-rpath,{lib}"]]


def main() -> int:
    include, lib = prefix_dirs()
    if shutil.which("g++") is None or not (include / "oneapi" / "dnnl" / "dnnl.hpp").exists():
        print("oneDNN convolutions not built (needs g++ and the onednn wheels); "
              "convolutions run through XLA", file=sys.stderr)
        return 0
    LIBRARY.parent.mkdir(exist_ok=True)
    for cmd in commands():
        print(" ".join(cmd), file=sys.stderr)
        if subprocess.run(cmd).returncode:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

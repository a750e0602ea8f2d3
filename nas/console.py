"""Console helpers for the command line."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def stdout_to_stderr():
    """Sends everything written to stdout inside the block, by Python or by C code (TFDS's
    "Downloading and preparing" line, say), to stderr: a `--json` command's stdout then holds
    exactly its one JSON document."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)

"""What the benchmarks write: their JSON printed, and saved with `--out`; the machine they ran on."""

from __future__ import annotations

import json
import os
import platform
from typing import Optional


def machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "ld_preload": os.environ.get("LD_PRELOAD", "")}


def emit(out: dict, path: Optional[str] = None) -> None:
    """Prints `out` as JSON and, given `path`, writes it there too."""
    text = json.dumps(out, indent=2)
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")
    print(text)

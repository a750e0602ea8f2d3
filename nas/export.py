"""Exporting a run's best architectures: each as a spec file in the project's JSON format and as
Model Garden's `block_specs` list, with a `top.json` manifest of their metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from nas import run_dir as layout
from nas.ledger import DONE, Ledger
from search_space import parse_spec_text, to_json, to_model_garden

FORMATS = ("json", "modelgarden")
MANIFEST = "top.json"


def top_trials(ledger: Ledger, k: int) -> List[Dict[str, Any]]:
    """The `k` best finished trials by reward, one per network (canonical spec hash); ties go
    to the earlier trial."""
    ranked = sorted((t for t in ledger.trials([DONE]) if t["reward"] is not None),
                    key=lambda t: -t["reward"])
    best, seen = [], set()
    for trial in ranked:
        if trial["spec_hash"] not in seen:
            seen.add(trial["spec_hash"])
            best.append(trial)
    return best[:k]


def best_trial(ledger: Ledger) -> Optional[Dict[str, Any]]:
    """`trial_id`, `reward` and `spec_hash` of the best finished trial, or None."""
    best = top_trials(ledger, 1)
    return {k: best[0][k] for k in ("trial_id", "reward", "spec_hash")} if best else None


def export_top(folder: Path, ledger: Ledger, top: int, formats: Sequence[str] = FORMATS,
               out: Optional[Path] = None) -> Path:
    """Writes the `top` best specs into `out` (default `folder/specs`); returns `out`."""
    out = Path(out) if out is not None else folder / layout.SPECS_DIR
    out.mkdir(parents=True, exist_ok=True)
    _remove_previous(out)
    run = folder.name
    manifest = []
    for rank, trial in enumerate(top_trials(ledger, top), start=1):
        spec = parse_spec_text(trial["spec"])
        stem = f"rank{rank}-{trial['trial_id']}"
        files = []
        if "json" in formats:
            files.append(_write(out / f"{stem}.json", to_json(spec, name=f"{run}/{trial['trial_id']}")))
        if "modelgarden" in formats:
            header = (f"# Search {run}, rank {rank}: trial {trial['trial_id']}, reward "
                      f"{trial['reward']:.6g}, spec hash {trial['spec_hash']}.\n"
                      f"# block_specs for TF Model Garden's SpineNet builder.\n")
            files.append(_write(out / f"{stem}.model_garden.py",
                                header + "SPINENET_BLOCK_SPECS = " + to_model_garden(spec)))
        manifest.append({"rank": rank, "trial_id": trial["trial_id"], "reward": trial["reward"],
                         "spec_hash": trial["spec_hash"], "params": trial["params"],
                         "flops": trial["flops"], "metrics": trial["metrics"], "files": files})
    _write(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return out


def _remove_previous(out: Path) -> None:
    """Removes the files of an earlier export into `out` (and nothing else)."""
    manifest = out / MANIFEST
    if manifest.exists():
        for entry in json.loads(manifest.read_text()):
            for name in entry.get("files", []):
                path = out / name
                if path.resolve().parent == out.resolve():
                    path.unlink(missing_ok=True)


def _write(path: Path, text: str) -> str:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path.name

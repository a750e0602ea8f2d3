"""`nas export`: a search's best architectures as spec files."""

from __future__ import annotations

from pathlib import Path

from nas.export import FORMATS, export_top, top_trials
from nas.run_dir import open_run
from nas.commands.common import add_results_dir


def register(sub) -> None:
    p = sub.add_parser("export", help="write a search's best specs (JSON and Model Garden)")
    p.add_argument("name", help="run name")
    p.add_argument("--top", type=int, default=3, help="how many architectures (default 3)")
    p.add_argument("--format", choices=FORMATS, action="append",
                   help="spec format, repeatable (default: both)")
    p.add_argument("--out", type=Path, help="folder to write into (default DIR/NAME/specs)")
    add_results_dir(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.top < 1:
        raise ValueError(f"--top: must be >= 1, got {args.top}")
    folder, ledger = open_run(args.results_dir, args.name)
    try:
        out = export_top(folder, ledger, args.top, args.format or FORMATS, args.out)
        for rank, trial in enumerate(top_trials(ledger, args.top), start=1):
            print(f"{rank}. {trial['trial_id']} reward {trial['reward']:.4f} "
                  f"hash {trial['spec_hash'][:12]}")
    finally:
        ledger.close()
    print(f"specs written to {out}")
    return 0

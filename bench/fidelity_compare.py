"""Do two fidelity panels (`nas fidelity --out`) rank their architectures alike?

    python bench/fidelity_compare.py OLD.json NEW.json [--reference LONG.json] [--out FILE.json]

For a change of numerics (e.g. `NAS_CPU_OPTIMIZER=fused` against `optax`): per architecture
both 3-seed means and their difference; Kendall's tau between the means; whether every reward
is identical; and each panel's mean trial wall time (base schedule). With `--reference`, a panel
run with a long schedule (`--factor` > 1), each panel's Kendall tau against its long rewards.
Architectures are matched by spec hash, so the panels must hold the same ones.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from json_out import emit
from proxy_tasks.fidelity import kendall_tau


def _by_hash(panel: dict, other: dict) -> dict:
    rows = {r["spec_hash"]: r for r in panel["architectures"]}
    others = {r["spec_hash"] for r in other["architectures"]}
    if set(rows) != others:
        raise ValueError(f"architectures: the panels differ in {sorted(rows.keys() ^ others)}")
    return rows


def against_long(panel: dict, reference: dict) -> float:
    """Kendall tau of `panel`'s means against `reference`'s long-schedule rewards."""
    long = {h: r["long"] for h, r in _by_hash(reference, panel).items()}
    return kendall_tau([r["mean"] for r in panel["architectures"]],
                       [long[r["spec_hash"]] for r in panel["architectures"]])


def compare(old: dict, new: dict) -> dict:
    old_rows, new_rows = _by_hash(old, new), _by_hash(new, old)
    rows = [{"name": r["name"], "old": r["mean"], "new": new_rows[h]["mean"],
             "difference": new_rows[h]["mean"] - r["mean"],
             "old_rewards": r["rewards"], "new_rewards": new_rows[h]["rewards"]}
            for h, r in old_rows.items()]

    def wall(panel):
        return float(np.mean([s["wall_s"] for r in panel["architectures"]
                              for s in r["seconds"] if s["schedule"] == "base"]))

    return {"architectures": rows,
            "kendall_tau": kendall_tau([r["old"] for r in rows], [r["new"] for r in rows]),
            "identical_rewards": all(r["old_rewards"] == r["new_rewards"] for r in rows),
            "mean_abs_difference": float(np.mean([abs(r["difference"]) for r in rows])),
            "wall_s": {"old": wall(old), "new": wall(new)}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--reference", help="a panel with a long schedule (--factor > 1)")
    parser.add_argument("--out")
    args = parser.parse_args()
    with open(args.old) as f_old, open(args.new) as f_new:
        old, new = json.load(f_old), json.load(f_new)
    out = dict(compare(old, new), old=args.old, new=args.new)
    if args.reference:
        with open(args.reference) as f:
            reference = json.load(f)
        out["tau_against_long"] = {"reference": args.reference,
                                   "old": against_long(old, reference),
                                   "new": against_long(new, reference)}
    emit(out, args.out)


if __name__ == "__main__":
    main()

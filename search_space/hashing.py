"""Canonical hashing of specs: two specs that build the same network hash the same."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from search_space.spec import BOTTLENECK, STEM_LEVEL, SpineNetSpec


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def node_hashes(spec: SpineNetSpec):
    """A Merkle hash per feature: its level, type, role and the hashes of what it sums.

    Sums are order-free, so two specs that list the same graph in another topological order
    (or with parent pairs swapped) give the same hashes.
    """
    merges = spec.dangling_merges()
    hashes = [_digest(["stem", k, STEM_LEVEL, BOTTLENECK]) for k in range(spec.num_stem_blocks)]
    for k, block in enumerate(spec.blocks):
        resampled = sorted(hashes[p] for p in block.input_offsets)
        direct = sorted(hashes[f] for f in merges.get(k, ()))
        hashes.append(_digest([block.level, block.block_fn, block.is_output, resampled, direct]))
    return hashes


def canonical_hash(spec: SpineNetSpec) -> str:
    """Hash of the network a spec builds (the multiset of its nodes), its outputs and scaling."""
    hashes = node_hashes(spec)
    outputs = {str(level): hashes[spec.feature_index(k)]
               for level, k in spec.output_blocks().items()}
    return _digest({
        "nodes": sorted(hashes),
        "outputs": outputs,
        "levels": [spec.min_level, spec.max_level],
        "scaling": dataclasses.asdict(spec.scaling),
    })

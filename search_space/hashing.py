"""Canonical hashing of specs: two specs hash the same exactly when they build the same network.

The network is a labelled DAG (stem features, blocks with level/type/role, resampled and
dangling edges). Its canonical form is found by colour refinement over parents and consumers,
then by trying every order among nodes the refinement cannot tell apart (rare, and small: such
nodes are structural twins) and keeping the least encoding.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from typing import List, Tuple

from search_space.spec import SpineNetSpec

MAX_TIE_ORDERS = 100_000


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def network(spec: SpineNetSpec) -> Tuple[List[list], List[Tuple[int, int, str]]]:
    """(node labels, edges) of the network a spec builds; edge kinds 'resampled' or 'direct'."""
    labels = [["stem", k] for k in range(spec.num_stem_blocks)]
    edges = []
    merges = spec.dangling_merges()
    for k, block in enumerate(spec.blocks):
        node = spec.feature_index(k)
        labels.append([block.level, block.block_fn, block.is_output])
        edges += [(p, node, "resampled") for p in block.input_offsets]
        edges += [(f, node, "direct") for f in merges.get(k, ())]
    return labels, edges


def _refine(labels, edges) -> List[str]:
    """Colour refinement: a node's colour absorbs its parents' and consumers' colours."""
    colours = [_digest(label) for label in labels]
    while True:
        ins = [[] for _ in labels]
        outs = [[] for _ in labels]
        for u, v, kind in edges:
            ins[v].append([colours[u], kind])
            outs[u].append([colours[v], kind])
        refined = [_digest([c, sorted(i), sorted(o)]) for c, i, o in zip(colours, ins, outs)]
        if len(set(refined)) == len(set(colours)):
            return refined
        colours = refined


def _encoding(labels, edges, order) -> str:
    """The network as JSON with its nodes numbered in `order`: their labels, then the edges."""
    rank = {node: r for r, node in enumerate(order)}
    return json.dumps([[labels[n] for n in sorted(rank, key=rank.get)],
                       sorted([rank[u], rank[v], kind] for u, v, kind in edges)])


def canonical_form(spec: SpineNetSpec) -> str:
    """The least encoding of the network over all node orders consistent with its colours."""
    labels, edges = network(spec)
    colours = _refine(labels, edges)
    groups = [[n for n in range(len(labels)) if colours[n] == c] for c in sorted(set(colours))]
    orders = math.prod(math.factorial(len(g)) for g in groups)
    if orders > MAX_TIE_ORDERS:
        raise ValueError(f"canonical_form: {orders} tie orders exceed {MAX_TIE_ORDERS}")
    return min(_encoding(labels, edges, itertools.chain.from_iterable(choice))
               for choice in itertools.product(*(itertools.permutations(g) for g in groups)))


def canonical_hash(spec: SpineNetSpec) -> str:
    """Hash of the network a spec builds, its output levels and its scaling."""
    return _digest({
        "network": canonical_form(spec),
        "levels": [spec.min_level, spec.max_level],
        "scaling": dataclasses.asdict(spec.scaling),
    })

"""JSON-able encodings of arrays and pytrees (policy parameters, optimizer state)."""

from __future__ import annotations

import base64
from typing import Any, Dict, List

import jax
import numpy as np


def encode_array(array) -> Dict[str, Any]:
    """An array as dtype, shape and base64 of its bytes in C order (exact, compact)."""
    array = np.asarray(array)
    return {"dtype": array.dtype.str, "shape": list(array.shape),
            "data": base64.b64encode(array.tobytes()).decode()}


def decode_array(data: Dict[str, Any]) -> np.ndarray:
    raw = base64.b64decode(data["data"])
    return np.frombuffer(raw, dtype=np.dtype(data["dtype"])).reshape(data["shape"]).copy()


def encode_tree(tree) -> List[Dict[str, Any]]:
    """The leaves of a pytree, in flattening order."""
    return [encode_array(leaf) for leaf in jax.tree_util.tree_leaves(tree)]


def decode_tree(template, leaves: List[Dict[str, Any]]):
    """The pytree shaped like `template` with the encoded leaves; raises if they do not fit."""
    expected = jax.tree_util.tree_leaves(template)
    arrays = [decode_array(leaf) for leaf in leaves]
    if len(arrays) != len(expected) or any(a.shape != np.shape(e)
                                           for a, e in zip(arrays, expected)):
        raise ValueError(f"state: {len(arrays)} encoded arrays do not fit a tree of "
                         f"{len(expected)} leaves with shapes {[np.shape(e) for e in expected]}")
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template),
                                        [jax.numpy.asarray(a) for a in arrays])

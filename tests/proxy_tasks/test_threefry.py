"""JAX's Threefry-2x32 hash as `threefry.cc`'s CPU call: Random123's known answers, JAX's own
loop bit for bit, and the random draws of a model's init unchanged."""

import jax
import numpy as np
import pytest
from jax._src.random import threefry2x32 as jax_threefry
from jax.interpreters import mlir

from proxy_tasks.cpu_kernels import ops

pytestmark = pytest.mark.skipif(ops.library() is None, reason="CPU extension not built")


def hashed(key0, key1, count0, count1):
    """The hash as a jitted program compiles it, failing unless it is the custom call."""
    args = [np.asarray(x, np.uint32) for x in (key0, key1, count0, count1)]
    lowered = jax.jit(lambda *a: jax_threefry.threefry2x32_p.bind(*a)).lower(*args)
    assert "onednn_threefry2x32" in lowered.as_text()
    return [np.asarray(x) for x in lowered.compile()(*args)]


@pytest.mark.parametrize("key, count, expected", [
    # Random123's known-answer tests for threefry2x32_20 (kat_vectors).
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
])
def test_known_answers(key, count, expected):
    assert [int(x) for x in hashed(*key, *count)] == list(expected)


@pytest.mark.parametrize("shape", [(), (7,), (3, 4, 5)])
def test_equals_jax_loop_with_keys_broadcast(shape):
    rng = np.random.default_rng(0)
    key = rng.integers(0, 2 ** 32, size=2, dtype=np.uint32)
    counts = rng.integers(0, 2 ** 32, size=(2, *shape), dtype=np.uint32)
    reference = jax.jit(lambda *a: jax_threefry._threefry2x32_lowering(*a))(
        key[0], key[1], counts[0], counts[1])
    for ours, theirs in zip(hashed(key[0], key[1], *counts), reference):
        np.testing.assert_array_equal(ours, np.asarray(theirs))


def test_random_draws_are_jaxs():
    """Normal and truncated-normal draws (what initializers make) through the call, and through
    JAX's own lowering put back for the test."""
    key = jax.random.PRNGKey(3)

    def draws():
        k1, k2 = jax.random.split(key)
        return (jax.random.normal(k1, (5, 33)),
                jax.random.truncated_normal(jax.random.fold_in(k2, 7), -2.0, 2.0, (64,)))

    ours = jax.jit(draws).lower()
    prim = jax_threefry.threefry2x32_p
    mlir.register_lowering(prim, jax_threefry._threefry2x32_cpu_lowering_rule, platform="cpu")
    try:
        theirs = jax.jit(lambda: draws()).lower()
    finally:
        mlir.register_lowering(prim, ops._threefry2x32_lowering, platform="cpu")
    assert "onednn_threefry2x32" in ours.as_text()
    assert "onednn_threefry2x32" not in theirs.as_text()
    for a, b in zip(ours.compile()(), theirs.compile()()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert np.asarray(a).std() > 0.5

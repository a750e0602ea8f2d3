"""The proxy optimizer against hand-computed values: warm-up, cosine and step schedules, weight
decay on kernels only, clipping before the decay, momentum."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from proxy_tasks.optim import apply_gradients, learning_rate, make_optimizer


def test_linear_warmup_then_cosine_to_zero():
    schedule = learning_rate(2.0, warmup_steps=4, total_steps=20)
    # Warm-up: 2 * k / 4; then 2 * (1 + cos(pi * t / 16)) / 2 over the remaining 16 steps.
    expected = {0: 0.0, 1: 0.5, 3: 1.5, 4: 2.0, 8: 1 + math.cos(math.pi / 4), 12: 1.0,
                16: 1 + math.cos(3 * math.pi / 4), 20: 0.0}
    np.testing.assert_allclose([schedule(k) for k in expected], list(expected.values()),
                               rtol=1e-6, atol=1e-7)
    assert float(learning_rate(2.0, warmup_steps=0, total_steps=20)(0)) == 2.0


def test_a_warmup_longer_than_training_ends_on_its_last_step():
    """The warm-up is cut to total - 1 steps, so the last step trains at the base rate (and a
    one-step training at it, not at 0)."""
    schedule = learning_rate(2.0, warmup_steps=30, total_steps=20)
    np.testing.assert_allclose([schedule(18), schedule(19)], [2.0 * 18 / 19, 2.0], rtol=1e-6)
    assert float(learning_rate(2.0, warmup_steps=5, total_steps=1)(0)) == 2.0


def test_step_decay_after_two_thirds_and_eight_ninths():
    schedule = learning_rate(1.0, warmup_steps=10, total_steps=100, schedule="step")
    # The rate drops tenfold at global steps int(0.67 * 100) = 67 and int(0.89 * 100) = 89.
    expected = {5: 0.5, 10: 1.0, 66: 1.0, 67: 0.1, 88: 0.1, 89: 0.01, 99: 0.01}
    np.testing.assert_allclose([schedule(k) for k in expected], list(expected.values()),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="schedule: 'linear' is not one of"):
        learning_rate(1.0, 10, 100, schedule="linear")
    rate = make_optimizer(1.0, 10, 100, schedule="step", optimizer="adam").adamw.rate
    np.testing.assert_allclose([rate(66), rate(67)], [1.0, 0.1], rtol=1e-6)


# numpy, not jax: a jax array made at import would start XLA in mutmut's fork server, and its
# forked mutant processes would hang (bench/results/mutation.md).
PARAMS = {"conv": {"kernel": np.full((1, 1, 2, 2), 2.0, np.float32)},
          "bn": {"scale": np.full((2,), 3.0, np.float32), "bias": np.ones((2,), np.float32)},
          "head": {"bias": np.ones((3,), np.float32)}}


def _updates(optimizer, grads_per_step):
    """The update of every step, applying each to the params before the next."""
    params, state, out = PARAMS, optimizer.init(PARAMS), []
    for grads in grads_per_step:
        updates, state = optimizer.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        out.append(updates)
    return out


def test_weight_decay_on_kernels_only_with_momentum():
    optimizer = make_optimizer(0.5, warmup_steps=0, total_steps=10, momentum=0.9,
                               weight_decay=0.1)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, PARAMS)
    first, second = _updates(optimizer, [zeros, zeros])
    # Step 0: trace = 0.1 * 2, rate 0.5. Step 1: kernel 1.9, trace = 0.1 * 1.9 + 0.9 * 0.2,
    # rate 0.5 * (1 + cos(pi / 10)) / 2.
    np.testing.assert_allclose(first["conv"]["kernel"], -0.1, rtol=1e-6)
    rate = 0.25 * (1 + math.cos(math.pi / 10))
    np.testing.assert_allclose(second["conv"]["kernel"], -rate * (0.19 + 0.18), rtol=1e-6)
    for update in (first, second):  # BN scales and offsets and biases are not decayed
        for leaf in (update["bn"]["scale"], update["bn"]["bias"], update["head"]["bias"]):
            assert not np.any(np.asarray(leaf))


def test_the_default_weight_decay_is_4e_5_on_conv_and_dense_kernels():
    """Model Garden's 4e-5, on a dense (2-d) kernel as on a conv's (4-d): SGD's first step on
    zero gradients moves each kernel by rate 0.5 * 4e-5 * 2."""
    params = {"conv": {"kernel": np.full((1, 1, 2, 2), 2.0, np.float32)},
              "dense": {"kernel": np.full((2, 3), 2.0, np.float32)}}
    optimizer = make_optimizer(0.5, warmup_steps=0, total_steps=10)
    zeros = jax.tree_util.tree_map(np.zeros_like, params)
    updates, _ = optimizer.update(zeros, optimizer.init(params), params)
    for layer in ("conv", "dense"):
        np.testing.assert_allclose(updates[layer]["kernel"], -0.5 * 4e-5 * 2, rtol=1e-6)


def test_gradients_are_clipped_before_the_weight_decay():
    optimizer = make_optimizer(0.5, warmup_steps=0, total_steps=10, weight_decay=0.1,
                               clip_norm=1.0)
    ones = jax.tree_util.tree_map(jnp.ones_like, PARAMS)
    (update,) = _updates(optimizer, [ones])
    clipped = 1 / math.sqrt(4 + 2 + 2 + 3)  # 11 gradient entries of 1, global norm sqrt(11)
    np.testing.assert_allclose(update["conv"]["kernel"], -0.5 * (clipped + 0.1 * 2), rtol=1e-6)
    np.testing.assert_allclose(update["head"]["bias"], -0.5 * clipped, rtol=1e-6)


def test_adam_steps_by_the_normalized_gradient_and_decays_kernels_decoupled():
    optimizer = make_optimizer(0.5, warmup_steps=0, total_steps=10, momentum=0.9,
                               weight_decay=0.1, optimizer="adam")
    grads = jax.tree_util.tree_map(lambda p: jnp.full_like(p, 4.0), PARAMS)
    first, second = _updates(optimizer, [grads, grads])
    # Bias-corrected moments of a constant gradient g are g and g^2: each step is -rate * g/|g|
    # (up to eps 1e-8 and float32's 1 - 0.999^t: rtol 5e-5), and kernels also lose rate * 0.1 * w
    # (w = 2, then 2 - 0.5 - 0.1 = 1.4).
    rate = 0.25 * (1 + math.cos(math.pi / 10))
    np.testing.assert_allclose(first["conv"]["kernel"], -0.5 * (1 + 0.1 * 2), rtol=5e-5)
    np.testing.assert_allclose(second["conv"]["kernel"], -rate * (1 + 0.1 * 1.4), rtol=5e-5)
    for update, step_rate in ((first, 0.5), (second, rate)):
        for leaf in (update["bn"]["scale"], update["bn"]["bias"], update["head"]["bias"]):
            np.testing.assert_allclose(leaf, -step_rate, rtol=5e-5)
    with pytest.raises(ValueError, match="optimizer: 'lamb' is not one of"):
        make_optimizer(0.5, 0, 10, optimizer="lamb")


def _fused(monkeypatch, path="fused"):
    """`apply_gradients` jitted with `NAS_CPU_OPTIMIZER=path`, compiled at XLA's default backend
    optimization level as a trial's step is (conftest lowers it for the tests); fails unless the
    fused call is in the program when asked for."""
    monkeypatch.setenv("NAS_CPU_OPTIMIZER", path)

    def step(optimizer, grads, state, params):
        lowered = jax.jit(lambda g, s, p: apply_gradients(optimizer, g, s, p)).lower(
            grads, state, params)
        assert ("onednn_adamw_step" in lowered.as_text()) == (path == "fused")
        return lowered.compile(compiler_options={"xla_backend_optimization_level": 3})(
            grads, state, params)
    return step


def test_fused_adam_takes_the_hand_computed_steps(monkeypatch):
    step = _fused(monkeypatch)
    optimizer = make_optimizer(0.5, warmup_steps=0, total_steps=10, momentum=0.9,
                               weight_decay=0.1, clip_norm=100.0, optimizer="adam")
    grads = jax.tree_util.tree_map(lambda p: jnp.full_like(p, 4.0), PARAMS)
    params, state, norm = step(optimizer, grads, optimizer.init(PARAMS), PARAMS)
    params, state, _ = step(optimizer, grads, state, params)
    # As the test above: each step -rate * (g/|g| + 0.1 * w) on kernels (w = 2, then 1.4), and
    # -rate on the rest (up to eps and float32's bias corrections, as above: 3e-5 on steps of
    # about 0.5); the global norm of 11 entries of 4 is 4 * sqrt(11).
    rate = 0.25 * (1 + math.cos(math.pi / 10))
    np.testing.assert_allclose(norm, 4 * math.sqrt(11), rtol=1e-6)
    for value, expected in ((params["conv"]["kernel"], 2 - 0.5 * 1.2 - rate * 1.14),
                            (params["bn"]["scale"], 3 - 0.5 - rate),
                            (params["head"]["bias"], 1 - 0.5 - rate)):
        np.testing.assert_allclose(value, expected, rtol=0, atol=3e-5)
    adam = state[-1][0]
    assert int(adam.count) == int(state[-1][2].count) == 2
    np.testing.assert_allclose(adam.mu["conv"]["kernel"], 4 * (1 - 0.9 ** 2), rtol=1e-6)
    np.testing.assert_allclose(adam.nu["bn"]["bias"], 16 * (1 - 0.999 ** 2), rtol=1e-5)


@pytest.mark.parametrize("path", ["optax", "fused"])
def test_adam_clips_the_gradients_into_its_moments_and_leaves_zero_gradients_alone(monkeypatch,
                                                                                    path):
    step = _fused(monkeypatch, path)
    optimizer = make_optimizer(0.5, warmup_steps=0, total_steps=10, momentum=0.9,
                               weight_decay=0.1, clip_norm=1.0, optimizer="adam")
    grads = jax.tree_util.tree_map(lambda p: np.full_like(p, 4.0), PARAMS)
    grads["head"]["bias"] = np.zeros(3, np.float32)
    params, state, norm = step(optimizer, grads, optimizer.init(PARAMS), PARAMS)
    # 8 entries of 4: norm 4 * sqrt(8), each clipped to 1 / sqrt(8); moments 0.1 and 0.001
    # of it and of its square. A gradient of zero moves nothing (eps keeps 0 / 0 away).
    adam = state[-1][0]
    np.testing.assert_allclose(norm, 4 * math.sqrt(8), rtol=1e-6)
    np.testing.assert_allclose(adam.mu["conv"]["kernel"], 0.1 / math.sqrt(8), rtol=1e-5)
    np.testing.assert_allclose(adam.nu["bn"]["scale"], 0.001 / 8, rtol=1e-5)
    np.testing.assert_array_equal(params["head"]["bias"], PARAMS["head"]["bias"])


@pytest.mark.parametrize("clip_norm", [0.0, 0.5, 2.0])
def test_fused_adam_gives_optax_bits(monkeypatch, clip_norm):
    """Ten steps of random gradients, a few large enough to be clipped, from the warm-up into the
    cosine, on parameters shaped like a detector's (kernels, and vectors of 8 or more: XLA
    compiles arrays of a few elements otherwise): the fused call's parameters, moments and norms
    equal those of optax's own chain bit for bit (adam.cc computes what XLA compiles it to)."""
    optimizer = make_optimizer(0.01, warmup_steps=3, total_steps=10, momentum=0.9,
                               weight_decay=0.1, clip_norm=clip_norm, optimizer="adam")
    rng = np.random.default_rng(0)
    shapes = {"conv": {"kernel": (3, 3, 8, 13)}, "bn": {"scale": (13,), "bias": (13,)},
              "head": {"kernel": (40, 32), "bias": (9,)}}
    params = jax.tree_util.tree_map(lambda shape: rng.normal(size=shape).astype(np.float32),
                                    shapes, is_leaf=lambda x: isinstance(x, tuple))
    grads = [jax.tree_util.tree_map(lambda p: rng.normal(scale=3.0 if k % 3 else 0.01,
                                                         size=p.shape).astype(np.float32), params)
             for k in range(10)]
    runs = []
    for path in ("optax", "fused"):
        step, p, s = _fused(monkeypatch, path), params, optimizer.init(params)
        norms = []
        for g in grads:
            p, s, norm = step(optimizer, g, s, p)
            norms.append(float(norm))
        runs.append((p, s, norms))
    (p_ref, s_ref, n_ref), (p_new, s_new, n_new) = runs
    assert jax.tree_util.tree_structure(s_new) == jax.tree_util.tree_structure(s_ref)
    assert n_new == n_ref and (clip_norm == 0 or min(n_ref) < clip_norm < max(n_ref))
    for a, b in zip(*map(jax.tree_util.tree_leaves, ((p_ref, s_ref), (p_new, s_new)))):
        np.testing.assert_array_equal(b, a)


def test_the_optimizer_switch_is_checked(monkeypatch):
    monkeypatch.setenv("NAS_CPU_OPTIMIZER", "eager")
    optimizer = make_optimizer(0.5, 0, 10, optimizer="adam")
    with pytest.raises(ValueError, match="NAS_CPU_OPTIMIZER: 'eager' is not one of"):
        apply_gradients(optimizer, PARAMS, optimizer.init(PARAMS), PARAMS)


def test_sgd_momentum_is_0_9_by_default_and_any_optax_transformation_steps():
    optimizer = make_optimizer(1.0, warmup_steps=0, total_steps=10, weight_decay=0.0)
    ones = jax.tree_util.tree_map(np.ones_like, PARAMS)
    first, second = _updates(optimizer, [ones, ones])
    # Momentum 0.9: the second step moves 1 + 0.9 at the cosine's rate (1 + cos(pi / 10)) / 2.
    np.testing.assert_allclose(second["head"]["bias"],
                               -0.5 * (1 + math.cos(math.pi / 10)) * 1.9, rtol=1e-6)
    sgd = optax.sgd(0.25)
    params, _, norm = apply_gradients(sgd, ones, sgd.init(PARAMS), PARAMS)
    np.testing.assert_allclose(params["bn"]["scale"], 3 - 0.25)
    np.testing.assert_allclose(norm, math.sqrt(11), rtol=1e-6)

"""The sharded training step: 8 simulated CPU devices give the 1-device result."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from proxy_tasks.mesh import global_batch, make_mesh, replicated
from proxy_tasks.models import ModelOptions, RetinaNetConfig, anchor_boxes, build_model, init_variables
from proxy_tasks.optim import apply_gradients, make_optimizer
from proxy_tasks.training import create_state, detection_loss, make_train_step
from tests.proxy_tasks.tiny_models import TINY_SPEC

SIZE, BATCH, CLASSES = 32, 8, 3
HEAD = RetinaNetConfig(num_classes=CLASSES, num_convs=1, num_filters=8)


def tiny_model():
    return build_model(TINY_SPEC, HEAD, ModelOptions())


def synthetic_batches(steps, seed=0):
    rng = np.random.default_rng(seed)
    anchors = anchor_boxes(SIZE, SIZE, range(3, 8))
    for _ in range(steps):
        yield {
            "images": rng.normal(size=(BATCH, SIZE, SIZE, 3)).astype(np.float32),
            "cls_targets": rng.integers(-2, CLASSES, size=(BATCH, len(anchors))).astype(np.int32),
            "box_targets": rng.normal(scale=0.1, size=(BATCH, len(anchors), 4)).astype(np.float32),
        }


def train(devices, steps=2, local_rows=slice(None), optimizer="sgd"):
    """Trains the tiny model; `local_rows` is this process's share of each global batch."""
    model = tiny_model()
    optimizer = make_optimizer(0.05, warmup_steps=1, total_steps=steps, clip_norm=10.0,
                               optimizer=optimizer)
    mesh = make_mesh(devices)
    state = create_state(model, optimizer, jax.random.PRNGKey(0), SIZE, SIZE, mesh)
    step = make_train_step(model, optimizer, functools.partial(detection_loss, num_classes=CLASSES), mesh)
    losses = []
    for batch in synthetic_batches(steps):
        local = {k: v[local_rows] for k, v in batch.items()}
        state, metrics = step(state, global_batch(local, mesh))
        losses.append(float(metrics["loss"]))
    return state, losses


@pytest.fixture(scope="module")
def one_device():
    return train(jax.devices()[:1])


def test_eight_devices_match_one_device(one_device):
    assert len(jax.devices()) == 8
    state1, losses1 = one_device
    state8, losses8 = train(jax.devices())
    # Same maths; only the order of the cross-device reductions differs (float32).
    np.testing.assert_allclose(losses8, losses1, rtol=1e-5)
    flat1 = jax.tree_util.tree_leaves(state1.params)
    flat8 = jax.tree_util.tree_leaves(state8.params)
    for a, b in zip(flat1, flat8):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-6)
    stats1 = jax.tree_util.tree_leaves(state1.batch_stats)
    stats8 = jax.tree_util.tree_leaves(state8.batch_stats)
    for a, b in zip(stats1, stats8):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-6)
    assert int(state8.step) == 2 and losses1[1] != losses1[0]


def test_fused_adam_step_is_the_same_on_eight_devices(monkeypatch):
    """The fused AdamW call under the 8-device mesh (state and gradients replicated) gives the
    1-device result bit for bit, replicated; a trained model's losses agree too (its gradients
    are reduced across devices, in another order)."""
    monkeypatch.setenv("NAS_CPU_OPTIMIZER", "fused")
    optimizer = make_optimizer(0.05, warmup_steps=1, total_steps=4, clip_norm=1.0,
                               optimizer="adam")
    params = init_variables(tiny_model(), jax.random.PRNGKey(0), SIZE, SIZE)["params"]
    rng = np.random.default_rng(0)
    grads = jax.tree_util.tree_map(lambda p: rng.normal(size=p.shape).astype(np.float32), params)
    outputs = []
    for devices in (jax.devices()[:1], jax.devices()):
        rep = replicated(make_mesh(devices))
        step = jax.jit(lambda g, s, p: apply_gradients(optimizer, g, s, p), in_shardings=rep,
                       out_shardings=rep)
        p, s, _ = step(grads, optimizer.init(params), params)
        outputs.append(step(grads, s, p))
    for a, b in zip(*map(jax.tree_util.tree_leaves, outputs)):
        assert b.sharding.is_fully_replicated and np.array_equal(np.asarray(a), np.asarray(b))
    losses1 = train(jax.devices()[:1], steps=3, optimizer="adam")[1]
    np.testing.assert_allclose(train(jax.devices(), steps=3, optimizer="adam")[1], losses1,
                               rtol=1e-5)


def test_state_is_replicated_and_updated(one_device):
    state, _ = one_device
    for leaf in jax.tree_util.tree_leaves(state):
        assert leaf.sharding.is_fully_replicated
    fresh = jax.jit(init_variables, static_argnums=(0, 2, 3))(tiny_model(), jax.random.PRNGKey(0),
                                                              SIZE, SIZE)["params"]
    for name in ("class_out", "box_out"):
        before, after = fresh["head"][name]["kernel"], state.params["head"][name]["kernel"]
        assert after.dtype == jnp.float32 and not np.array_equal(before, after)

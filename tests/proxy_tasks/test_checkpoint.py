"""A trial's checkpoints: the latest state restored exactly, with the structure and dtypes of
the state it is restored like, and only the latest `keep` kept."""

import jax.numpy as jnp
import numpy as np

from proxy_tasks.checkpoint import TrialCheckpoints


def _state(value):
    return {"step": jnp.asarray(value, jnp.int32),
            "params": {"w": jnp.full((2, 3), value, jnp.float32), "b": jnp.arange(3.0) + value}}


def test_the_latest_state_comes_back_like_the_state_given(tmp_path):
    checkpoints = TrialCheckpoints(tmp_path / "ckpt")
    assert checkpoints.latest_step() is None
    checkpoints.save(1, _state(1))
    checkpoints.save(2, _state(2))
    assert checkpoints.latest_step() == 2
    restored = checkpoints.restore(like=_state(0))
    assert restored["step"].dtype == jnp.int32 and int(restored["step"]) == 2
    np.testing.assert_array_equal(restored["params"]["w"], np.full((2, 3), 2, np.float32))
    np.testing.assert_array_equal(restored["params"]["b"], np.arange(3.0) + 2)
    checkpoints.close()


def test_only_the_latest_keep_are_kept_and_a_new_manager_finds_them(tmp_path):
    checkpoints = TrialCheckpoints(tmp_path / "ckpt", keep=2)
    for step in (1, 2, 3):
        checkpoints.save(step, _state(step))
    checkpoints.close()
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["2", "3"]
    again = TrialCheckpoints(tmp_path / "ckpt")
    assert again.latest_step() == 3
    assert int(again.restore(like=_state(0))["step"]) == 3
    again.close()


def test_by_default_one_checkpoint_is_kept_in_a_folder_made_for_it(tmp_path):
    checkpoints = TrialCheckpoints(tmp_path / "new" / "ckpt")
    assert (tmp_path / "new" / "ckpt").is_dir()  # made before anything is saved
    for step in (1, 2):
        checkpoints.save(step, _state(step))
    checkpoints.close()
    assert [p.name for p in (tmp_path / "new" / "ckpt").iterdir()] == ["2"]

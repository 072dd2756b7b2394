"""The joint-optimization baseline's object term: track reprojection of the moving part."""

import jax
import jax.numpy as jnp
import jaxlie
import numpy as np
import pytest

from arthoi_jax import joint_opt, stage1
from arthoi_jax.config import Stage1Config
from tests.stage2_scene import H, K, W, segmentation


def test_tracking_loss_is_zero_at_the_true_poses_and_recovers_them():
    seg = segmentation(np.array([0.3, 0.0, 2.0]))
    obj = stage1.build_scene(seg, K, (H, W), Stage1Config(), 0.05)
    T = 3
    true = jaxlie.SE3.exp(jnp.array([[0.02, 0.0, 0.0, 0.0, 0.1, 0.0]] * T) * jnp.arange(T)[:, None]).as_matrix()
    true = true[:, None]  # [T, P = 1, 4, 4]
    pts = obj.track_points
    x = jnp.einsum("tij,mj->tmi", true[:, 0, :3, :3], pts) + true[:, 0, None, :3, 3]
    tracks = x[..., :2] / x[..., 2:] * jnp.array([K[0, 0], K[1, 1]]) + jnp.array([K[0, 2], K[1, 2]])
    vis = jnp.broadcast_to(obj.track_part > 0, tracks.shape[:2])
    tracks = jnp.where(vis[..., None], tracks, 0.0)  # padding rows (points at the origin) carry zeros, as in bundles
    Kj = jnp.asarray(K, jnp.float32)
    assert float(joint_opt.tracking_loss(obj, true, tracks, vis, Kj)) == pytest.approx(0.0, abs=1e-6)

    def loss(delta):
        poses = (jaxlie.SE3.from_matrix(true) @ jaxlie.SE3.exp(delta)).as_matrix()
        return joint_opt.tracking_loss(obj, poses, tracks, vis, Kj)

    delta = jnp.zeros((T, 1, 6)).at[:, :, 4].set(0.05)
    assert float(loss(delta)) > 1.0
    grad = jax.jit(jax.grad(loss))
    for _ in range(200):  # plain gradient descent brings the perturbed poses back
        delta = delta - 1e-5 * grad(delta)
    assert float(loss(delta)) < 1e-3 * float(loss(jnp.zeros((T, 1, 6)).at[:, :, 4].set(0.05)))

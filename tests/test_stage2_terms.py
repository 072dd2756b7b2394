"""Stage II: surface normals by local plane fits, the penetration term on a known box, the frame window and the
learning-rate decay."""

import dataclasses
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arthoi_jax import stage2
from arthoi_jax import stage2_losses as L
from arthoi_jax.config import Stage2Config

STEP = 0.02  # metres between surface samples


def _grid(u, v):
    a, b = np.meshgrid(u, v, indexing="ij")
    return a.ravel(), b.ravel()


def _box_shell():
    """The faces of the box [0.1, 0.5] x [-0.2, 0.2] x [1.3, 1.7] that the camera at the origin sees: the front
    (z = 1.3, normal -z) and the left side (x = 0.1, normal -x), sampled every STEP as back-projected points."""
    x, y = _grid(np.arange(0.1, 0.5 + 1e-9, STEP), np.arange(-0.2, 0.2 + 1e-9, STEP))
    front = np.stack([x, y, np.full_like(x, 1.3)], -1)
    y, z = _grid(np.arange(-0.2, 0.2 + 1e-9, STEP), np.arange(1.3 + STEP, 1.7 + 1e-9, STEP))
    side = np.stack([np.full_like(y, 0.1), y, z], -1)
    return np.concatenate([front, side]).astype(np.float32), len(front)


def test_normals_of_a_tilted_plane_face_the_camera():
    tilt = np.deg2rad(30.0)
    u, v = _grid(np.arange(-0.3, 0.3, STEP), np.arange(-0.3, 0.3, STEP))
    axis_u = np.array([np.cos(tilt), 0.0, np.sin(tilt)])  # the plane turned 30 deg about y
    pts = np.array([0.1, 0.0, 2.0]) + u[:, None] * axis_u + v[:, None] * np.array([0.0, 1.0, 0.0])
    n = stage2.gaussian_normals(pts.astype(np.float32), np.zeros(len(pts), int))
    true = np.cross(axis_u, [0.0, 1.0, 0.0])
    true = true if true @ pts.mean(0) < 0 else -true  # towards the camera
    err = np.rad2deg(np.arccos(np.clip(n @ true, -1, 1)))
    assert err.max() < 0.5
    assert np.all(np.einsum("ij,ij->i", n, pts) < 0)


def test_normals_of_a_box_follow_its_faces_and_parts_are_fitted_apart():
    pts, n_front = _box_shell()
    n = stage2.gaussian_normals(pts, np.zeros(len(pts), int))
    # Away from the shared edge (x = 0.1) each face's points take its normal; at the edge the fit blends them.
    front_in = np.flatnonzero(pts[:n_front, 0] > 0.1 + 3 * STEP)
    side_in = n_front + np.flatnonzero(pts[n_front:, 2] > 1.3 + 3 * STEP)
    assert np.rad2deg(np.arccos(n[front_in] @ [0, 0, -1.0])).max() < 1.0
    assert np.rad2deg(np.arccos(n[side_in] @ [-1.0, 0, 0])).max() < 1.0
    # Labelled as two parts (a drawer front against its cabinet), the edge does not blend them.
    n2 = stage2.gaussian_normals(pts, (np.arange(len(pts)) >= n_front).astype(int))
    assert np.rad2deg(np.arccos(n2[:n_front] @ [0, 0, -1.0])).max() < 1.0
    assert np.rad2deg(np.arccos(n2[n_front:] @ [-1.0, 0, 0])).max() < 1.0


@pytest.mark.parametrize("point, depth", [
    ((0.3, 0.0, 1.25), None),  # 5 cm in front of the front face
    ((0.3, 0.0, 1.33), 0.03),  # 3 cm behind the middle of the front face: inside
    ((0.12, 0.0, 1.5), 0.02),  # 2 cm behind the side face: inside
    ((0.05, 0.0, 1.33), None),  # beside the front face, behind its plane but in front of the side face
    # Beside the front face past the unseen bottom face: outside, but only because it lies farther than the 5 cm
    # shell; within it the visible shell cannot tell (see stage2_losses.penetration_loss).
    ((0.3, 0.25, 1.35), None),
    ((0.3, 0.0, 1.39), None),  # 9 cm behind the front face: deeper than the 5 cm shell
    ((0.3, 0.0, 1.3015), None),  # 1.5 mm behind: within the 2 mm margin
])
def test_inside_test_on_a_box(point, depth):
    pts, _ = _box_shell()
    n = stage2.gaussian_normals(pts, np.zeros(len(pts), int))
    loss = float(L.penetration_loss(jnp.asarray([[point]], jnp.float32), jnp.asarray(pts)[None], jnp.asarray(n)[None],
                                    jnp.ones(len(pts), bool), radius=0.05, margin=0.002))
    assert loss == pytest.approx(0.0 if depth is None else (depth - 0.002) ** 2, rel=1e-3, abs=1e-9)


def test_window_start_reaches_the_end_frames_as_often_as_the_middle():
    T, W, n = 32, 8, 20000
    starts = np.asarray(jax.vmap(lambda k: stage2.window_start(k, jnp.int32(T), W))(
        jax.random.split(jax.random.PRNGKey(0), n)))
    assert starts.min() == 0 and starts.max() == T - W
    cover = np.stack([(starts <= t) & (t < starts + W) for t in range(T)], 1).mean(0)
    expected = W / (T + W - 1)
    assert cover[0] == pytest.approx(expected, rel=0.05) and cover[-1] == pytest.approx(expected, rel=0.05)
    assert cover[T // 2] == pytest.approx(expected, rel=0.05)
    assert cover.max() < 2 * expected


def test_learning_rates_decay_over_the_last_fraction_only():
    params = stage2.initial_params(SimpleNamespace(global_orient=jnp.zeros((3, 3)), body_pose=jnp.zeros((3, 21, 3)),
                                                   transl=jnp.zeros((3, 3))), 1)
    grads = jax.tree.map(lambda x: jnp.full_like(x, 1e-3), params)  # below the clipping norm

    def steps(cfg):
        opt = stage2.optimizer(cfg)
        state, out = opt.init(params), []
        for _ in range(cfg.iters):
            u, state = opt.update(grads, state, params)
            out.append((float(u.transl[0, 0]), float(u.offset[0])))
        return np.abs(np.array(out))

    paper = steps(Stage2Config(iters=10))
    decayed = steps(dataclasses.replace(Stage2Config(iters=10), lr_decay_fraction=0.3))
    np.testing.assert_allclose(paper, [[1e-3, 1e-4]] * 10, rtol=1e-3)  # Adam on a constant gradient: steps of lr
    np.testing.assert_allclose(decayed[:7], paper[:7], rtol=1e-6)
    assert decayed[-1, 0] == pytest.approx(1e-3 * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * 2 / 3))), rel=1e-3)
    assert np.all(np.diff(decayed[7:, 0]) < 0)

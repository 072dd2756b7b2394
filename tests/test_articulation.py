"""Joint transforms (JAX) and closed-form joint fitting."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from arthoi_jax.articulation import (
    PRISMATIC,
    REVOLUTE,
    fit_joint,
    fit_prismatic,
    fit_revolute,
    joint_transform,
    refine_joint_on_tracks,
)


def _revolute_poses(axis, pivot, angles):
    out = []
    for a in angles:
        R = Rotation.from_rotvec(np.asarray(axis) * a).as_matrix()
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R, pivot - R @ pivot
        out.append(T)
    return np.stack(out)


def _perturb(poses, rot_deg, trans_m, seed=0):
    rng = np.random.default_rng(seed)
    out = poses.copy()
    for T in out[1:]:
        T[:3, :3] = Rotation.from_rotvec(np.deg2rad(rot_deg) * rng.normal(size=3)).as_matrix() @ T[:3, :3]
        T[:3, 3] += trans_m * rng.normal(size=3)
    return out


AXIS = np.array([0.2, -0.95, 0.1]) / np.linalg.norm([0.2, -0.95, 0.1])
PIVOT = np.array([0.3, 0.1, 2.5])
POINTS = np.random.default_rng(1).uniform([-0.2, -0.5, 2.3], [0.5, 0.5, 2.7], (200, 3))


def test_joint_transform_revolute_matches_scipy_and_fixes_the_axis():
    T = np.asarray(joint_transform(jnp.int32(REVOLUTE), jnp.asarray(AXIS), jnp.asarray(PIVOT), jnp.float32(0.7)))
    np.testing.assert_allclose(T[:3, :3], Rotation.from_rotvec(AXIS * 0.7).as_matrix(), atol=1e-6)
    on_axis = PIVOT + 0.5 * AXIS
    np.testing.assert_allclose(T[:3, :3] @ on_axis + T[:3, 3], on_axis, atol=1e-5)


def test_joint_transform_prismatic_translates_along_axis():
    T = np.asarray(joint_transform(jnp.int32(PRISMATIC), jnp.asarray(AXIS), jnp.asarray(PIVOT), jnp.float32(0.25)))
    np.testing.assert_allclose(T[:3, :3], np.eye(3), atol=1e-7)
    np.testing.assert_allclose(T[:3, 3], 0.25 * AXIS, atol=1e-6)


@pytest.mark.parametrize("jt", [REVOLUTE, PRISMATIC])
@pytest.mark.parametrize("value", [0.0, 0.9])
def test_joint_transform_gradient_matches_finite_differences(jt, value):
    with jax.enable_x64(True):
        axis, pivot = jnp.asarray(AXIS), jnp.asarray(PIVOT)
        x = jnp.array([0.1, 0.4, 2.2])

        def f(v, ax, pv):
            T = joint_transform(jnp.int32(jt), ax, pv, v)
            return jnp.sum((T[:3, :3] @ x + T[:3, 3]) ** 2)

        g = jax.grad(f, argnums=(0, 1, 2))(jnp.float64(value), axis, pivot)
        eps = 1e-6
        fd_v = (f(value + eps, axis, pivot) - f(value - eps, axis, pivot)) / (2 * eps)
        np.testing.assert_allclose(g[0], fd_v, rtol=1e-6, atol=1e-8)
        for i in range(3):
            e = jnp.zeros(3).at[i].set(eps)
            fd_a = (f(value, axis + e, pivot) - f(value, axis - e, pivot)) / (2 * eps)
            fd_p = (f(value, axis, pivot + e) - f(value, axis, pivot - e)) / (2 * eps)
            np.testing.assert_allclose(g[1][i], fd_a, rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(g[2][i], fd_p, rtol=1e-5, atol=1e-7)


def test_fit_revolute_exact_motion_recovers_axis_pivot_angles():
    angles = np.linspace(0, 1.0, 12)
    fit = fit_revolute(_revolute_poses(AXIS, PIVOT, angles), POINTS)
    assert fit.joint_type == "revolute"
    sign = np.sign(fit.axis @ AXIS)
    np.testing.assert_allclose(sign * fit.axis, AXIS, atol=1e-8)
    np.testing.assert_allclose(sign * fit.values, angles, atol=1e-8)
    d = fit.pivot - PIVOT
    assert np.linalg.norm(d - (d @ AXIS) * AXIS) < 1e-8  # the pivot lies on the GT axis line
    assert fit.residual_m < 1e-8


def test_fit_revolute_noisy_motion_stays_close_and_reports_residual():
    noisy = _perturb(_revolute_poses(AXIS, PIVOT, np.linspace(0, 1.0, 20)), rot_deg=0.3, trans_m=0.003)
    fit = fit_revolute(noisy, POINTS)
    assert np.rad2deg(np.arccos(abs(fit.axis @ AXIS))) < 1.0
    assert 1e-4 < fit.residual_m < 0.02


def test_fit_prismatic_recovers_direction_and_positive_displacements():
    d = np.linspace(0, 0.3, 10)
    poses = np.tile(np.eye(4), (10, 1, 1))
    poses[:, :3, 3] = -d[:, None] * AXIS  # moves along -AXIS: the fit flips the axis so displacements are > 0
    fit = fit_prismatic(poses, POINTS)
    np.testing.assert_allclose(fit.axis, -AXIS, atol=1e-9)
    np.testing.assert_allclose(fit.values, d, atol=1e-9)
    assert fit.residual_m < 1e-9


def test_fit_joint_auto_picks_the_true_type():
    rev = _perturb(_revolute_poses(AXIS, PIVOT, np.linspace(0, 0.8, 10)), 0.1, 0.001)
    pri = np.tile(np.eye(4), (10, 1, 1))
    pri[:, :3, 3] = np.linspace(0, 0.3, 10)[:, None] * AXIS
    pri = _perturb(pri, 0.1, 0.001)
    assert fit_joint(rev, POINTS, "auto").joint_type == "revolute"
    assert fit_joint(pri, POINTS, "auto").joint_type == "prismatic"
    # The wrong model leaves a residual of the size of the motion.
    assert fit_prismatic(rev, POINTS).residual_m > 0.05


def test_refine_joint_on_tracks_recovers_the_axis_from_a_tilted_start_despite_outliers():
    K = np.array([[250.0, 0, 128], [0, 250.0, 96], [0, 0, 1]])
    rng = np.random.default_rng(3)
    pts = rng.uniform([-0.1, -0.5, 2.4], [0.5, 0.5, 2.6], (150, 3))
    angles = np.linspace(0, 1.0, 10)
    poses = _revolute_poses(AXIS, PIVOT, angles)
    X = np.einsum("tij,nj->tni", poses[:, :3, :3], pts) + poses[:, None, :3, 3]
    tracks = X[..., :2] / X[..., 2:] * 250 + [128, 96] + rng.normal(0, 0.5, (10, 150, 2))
    tracks[:, :10] += 25.0  # ten tracks stuck elsewhere
    vis = np.ones((10, 150), bool)
    tilted = Rotation.from_rotvec([0.15, 0, 0.1]).apply(AXIS)
    start = fit_revolute(_revolute_poses(tilted, PIVOT + 0.05, angles * 1.2), pts)
    fit, median_px = refine_joint_on_tracks(start, pts, tracks, vis, K)
    assert median_px < 1.0  # noise 0.5 px per coordinate; the stuck tracks are outliers
    assert np.rad2deg(np.arccos(abs(fit.axis @ AXIS))) < 0.5
    sign = np.sign(fit.axis @ AXIS)
    np.testing.assert_allclose(sign * fit.values, angles, atol=np.deg2rad(1.0))

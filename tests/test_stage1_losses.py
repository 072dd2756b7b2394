"""Stage I losses (Eq. 6-8, smoothness): values against hand computations, gradients against finite differences."""

import jax
import jax.numpy as jnp
import jaxlie
import numpy as np
import pytest

from arthoi_jax import losses

K = jnp.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])


def test_tracking_loss_is_mean_squared_pixel_error_over_weighted_tracks():
    pts = jnp.array([[0.0, 0.0, 2.0], [0.2, -0.1, 2.0], [0.0, 0.0, -1.0]])  # last: behind the camera
    uv = jnp.array([[32.0, 24.0], [42.0, 19.0], [0.0, 0.0]])
    w = jnp.ones(3)
    assert float(losses.tracking_loss(pts, K, uv, w)) == pytest.approx(0.0, abs=1e-6)
    off = uv.at[0].add(jnp.array([3.0, 4.0]))
    assert float(losses.tracking_loss(pts, K, off, w)) == pytest.approx(25.0 / 2, rel=1e-5)
    assert float(losses.tracking_loss(pts, K, off, w.at[0].set(0.0))) == pytest.approx(0.0, abs=1e-6)
    g = jax.grad(lambda p: losses.tracking_loss(p, K, off, w))(pts)
    assert bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g[2]).max()) == 0.0


def test_tracking_loss_gradient_matches_finite_differences():
    with jax.enable_x64(True):
        pts = jnp.array([[0.1, 0.05, 2.0], [0.2, -0.1, 2.5]], jnp.float64)
        uv = jnp.array([[40.0, 20.0], [35.0, 22.0]], jnp.float64)
        Kd = K.astype(jnp.float64)
        f = lambda p: losses.tracking_loss(p, Kd, uv, jnp.ones(2))
        g = jax.grad(f)(pts)
        eps = 1e-6
        for i in range(2):
            for j in range(3):
                e = jnp.zeros_like(pts).at[i, j].set(eps)
                np.testing.assert_allclose(g[i, j], (f(pts + e) - f(pts - e)) / (2 * eps), rtol=1e-6)


def test_articulation_loss_counts_distance_changes_in_radius_units():
    m0 = jnp.array([[0.0, 0, 0], [0.03, 0, 0], [1.0, 0, 0]])
    pairs = jnp.array([[0, 1], [0, 2]])
    valid = jnp.array([True, False])
    rigid = m0 + jnp.array([0.5, 0.2, 0.0])
    assert float(losses.articulation_loss(rigid, m0, pairs, valid, 0.05)) == pytest.approx(0.0, abs=1e-10)
    apart = m0.at[1].set(jnp.array([0.08, 0, 0]))  # distance 0.03 -> 0.08: change 1 radius
    assert float(losses.articulation_loss(apart, m0, pairs, valid, 0.05)) == pytest.approx(1.0, rel=1e-5)
    same = jnp.zeros((2, 3))  # coincident pair: distance 0, gradient must stay finite
    g = jax.grad(lambda m: losses.articulation_loss(m, same, jnp.array([[0, 1]]), jnp.array([True]), 0.05))(same)
    assert bool(jnp.all(jnp.isfinite(g)))


def test_smoothness_is_zero_for_constant_velocity_and_finite_at_identity():
    step = jaxlie.SE3.exp(jnp.array([[0.01, 0.0, 0.02, 0.0, 0.05, 0.0]]))
    T0 = jaxlie.SE3.identity((1,))
    T1 = T0 @ step
    T2 = T1 @ step
    assert float(losses.smoothness_loss(T2, T1, T0, jnp.bool_(True))) == pytest.approx(0.0, abs=1e-10)
    faster = T1 @ step @ step
    assert float(losses.smoothness_loss(faster, T1, T0, jnp.bool_(True))) > 1e-4
    assert float(losses.smoothness_loss(faster, T1, T0, jnp.bool_(False))) == 0.0

    def f(xi):
        return losses.smoothness_loss(jaxlie.SE3.exp(xi), T0, T0, jnp.bool_(True))

    g = jax.grad(f)(jnp.zeros((1, 6)))
    assert bool(jnp.all(jnp.isfinite(g)))


def test_reconstruction_loss_masks_colour_and_compares_silhouette_everywhere():
    image = jnp.zeros((4, 4, 3)).at[:2].set(1.0)
    mask = jnp.zeros((4, 4)).at[:2].set(1.0)
    rgb = jnp.zeros((4, 4, 3)).at[:2].set(0.5)  # colour error 3 * 0.25 per masked pixel; outside ignored
    alpha = jnp.ones((4, 4))  # 8 of 16 pixels wrong
    c, s = losses.reconstruction_loss(rgb, alpha, image, mask, beta=2.0)
    assert float(c) == pytest.approx(0.75)
    assert float(s) == pytest.approx(2.0 * 0.5)


def test_robust_tracking_loss_is_squared_near_zero_and_linear_far_out():
    K = jnp.array([[100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]])
    pts = jnp.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])  # both project to (50, 50)
    tracks = jnp.array([[50.1, 50.0], [90.0, 50.0]])  # 0.1 px and 40 px off
    one = lambda w, s: float(losses.tracking_loss(pts, K, tracks, jnp.array(w), robust_px=s))
    assert one([1.0, 0.0], 2.0) == pytest.approx(0.01, rel=1e-3)  # r << s: r^2
    assert one([0.0, 1.0], 0.0) == pytest.approx(1600.0, rel=1e-5)
    assert one([0.0, 1.0], 2.0) == pytest.approx(2 * 4.0 * (np.sqrt(1 + 400.0) - 1), rel=1e-5)  # ~2 s r

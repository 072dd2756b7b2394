"""Stage II losses: values at known configurations and gradients against finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arthoi_jax import stage2_losses as L


def test_losses_vanish_at_their_targets():
    rng = np.random.default_rng(0)
    j = jnp.asarray(rng.normal(size=(5, 4, 3)), jnp.float32)
    assert float(L.kinematic_loss(j, j, jnp.ones((5, 4)))) == 0.0
    assert float(L.prior_loss(j[:, :3], j[:, :3], j[:, 0], j[:, 0], 2.0)) == 0.0
    line = jnp.arange(5.0)[:, None, None] * jnp.ones((1, 4, 3))
    assert float(L.smoothness_loss(line)) == pytest.approx(0.0, abs=1e-10)  # constant velocity
    assert float(L.foot_sliding_loss(j, jnp.zeros((5, 4)))) == 0.0  # no contact frames


def test_depth_anchor_counts_only_the_pelvis_depth_change():
    start = jnp.array([[0.1, 0.2, 2.0], [0.0, 0.0, 2.5]])
    moved = start + jnp.array([[0.3, -0.2, 0.0], [0.0, 0.0, -0.04]])  # sideways: free; 4 cm nearer: counted
    assert float(L.depth_anchor_loss(moved, start)) == pytest.approx(0.04**2, rel=1e-5)
    g = jax.grad(L.depth_anchor_loss)(moved, start)
    np.testing.assert_allclose(g, [[0, 0, 0], [0, 0, -0.08]], atol=1e-7)


def test_kinematic_loss_ignores_unconfident_keypoints():
    j = jnp.zeros((2, 3, 3))
    k = jnp.ones((2, 3, 3))
    w = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert float(L.kinematic_loss(j, k, w)) == pytest.approx(6.0)


def test_robust_kinematic_loss_is_quadratic_near_and_bounded_far():
    j = jnp.zeros((1, 2, 3))
    k = jnp.array([[[0.001, 0.0, 0.0], [10.0, 0.0, 0.0]]])  # 1 mm and 10 m from their joints
    w = jnp.ones((1, 2))
    s2 = 0.05**2
    assert float(L.kinematic_loss(j, k, w, 0.05)) == pytest.approx(1e-6 * s2 / (1e-6 + s2) + 100 * s2 / (100 + s2),
                                                                    rel=1e-4)
    assert float(L.kinematic_loss(j, k, w, 0.05)) < 1.01 * (1e-6 + s2)  # the 10 m outlier adds at most sigma^2
    g = jax.grad(lambda x: L.kinematic_loss(x, k, w, 0.05))(j)
    assert abs(float(g[0, 0, 0])) == pytest.approx(2e-3, rel=1e-3)  # near: the squared distance's gradient
    assert abs(float(g[0, 1, 0])) < 1e-6  # far: the outlier does not pull


def test_foot_sliding_counts_steps_between_two_contact_frames():
    v = jnp.zeros((3, 1, 3)).at[:, 0, 0].set(jnp.array([0.0, 0.1, 0.3]))
    c = jnp.array([[1.0], [1.0], [0.0]])  # only the step 0 -> 1 is between contact frames
    assert float(L.foot_sliding_loss(v, c)) == pytest.approx(0.01)


def test_penetration_only_behind_the_surface_and_within_the_radius():
    # A plane z = 1 (normals towards the camera, -z), sampled on a grid.
    g = jnp.linspace(-0.5, 0.5, 11)
    xy = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    surf = jnp.concatenate([xy, jnp.ones((len(xy), 1))], -1)[None]
    normals = jnp.broadcast_to(jnp.array([0.0, 0.0, -1.0]), surf.shape)
    valid = jnp.ones(len(xy), bool)
    pts = jnp.array([[[0.0, 0.0, 0.9], [0.0, 0.0, 1.05], [0.0, 0.0, 1.5]]])  # in front, 5 cm behind, 50 cm behind
    loss = float(L.penetration_loss(pts, surf, normals, valid, 0.1))
    assert loss == pytest.approx(0.05**2, rel=1e-4)


def test_contact_loss_is_the_closest_hand_to_surface_distance():
    surf = jnp.array([[[0.0, 0.0, 1.0], [1.0, 0.0, 1.0]]] * 2)
    hand = jnp.array([[[0.0, 0.0, 0.8], [0.0, 0.0, 0.5]], [[1.0, 0.1, 1.0], [5.0, 0.0, 0.0]]])
    valid = jnp.array([True, True])
    assert float(L.contact_loss(hand, surf, valid, jnp.array([1.0, 1.0]))) == pytest.approx(0.04 + 0.01)
    assert float(L.contact_loss(hand, surf, valid, jnp.array([0.0, 1.0]))) == pytest.approx(0.01)
    assert float(L.contact_loss(hand, surf, jnp.array([False, True]), jnp.array([1.0, 0.0]))) == pytest.approx(
        1.0 + 0.04)



def test_contact_loss_tolerance_is_free_within_it_and_pulls_past_it():
    surf = jnp.array([[[0.0, 0.0, 1.0]]] * 2)
    hand = jnp.array([[[0.0, 0.0, 0.99]], [[0.0, 0.0, 0.95]]])  # 1 cm and 5 cm in front of the surface
    valid, on = jnp.array([True]), jnp.ones(2)
    assert float(L.contact_loss(hand, surf, valid, on, 0.02)) == pytest.approx(0.03**2, rel=1e-4)
    g = jax.grad(lambda x: L.contact_loss(x, surf, valid, on, 0.02))(hand)
    assert float(jnp.abs(g[0]).max()) == 0.0  # within the tolerance: no pull
    assert float(g[1, 0, 2]) == pytest.approx(-2 * 0.03, rel=1e-3)  # past it: towards the surface (+z)

@pytest.mark.parametrize("name", ["smooth", "contact", "penetration", "foot"])
def test_gradients_match_finite_differences(name):
    jax.config.update("jax_enable_x64", True)
    try:
        rng = np.random.default_rng(3)
        surf = jnp.asarray(rng.normal(size=(4, 30, 3)) * 0.3 + [0, 0, 1.0])
        normals = jnp.broadcast_to(jnp.array([0.0, 0.0, -1.0]), surf.shape)
        valid = jnp.ones(30, bool)
        x0 = jnp.asarray(rng.normal(size=(4, 6, 3)) * 0.3 + [0, 0, 1.0])
        f = {
            "smooth": lambda x: L.smoothness_loss(x),
            "contact": lambda x: L.contact_loss(x, surf, valid, jnp.ones(4)),
            # 30 cm deeper: most points behind all four of their nearest surface points
            "penetration": lambda x: L.penetration_loss(x + jnp.array([0, 0, 0.3]), surf, normals, valid, 0.5),
            "foot": lambda x: L.foot_sliding_loss(x, jnp.ones((4, 6))),
        }[name]
        g = np.asarray(jax.grad(f)(x0))
        assert np.all(np.isfinite(g)) and np.abs(g).max() > 0
        eps = 1e-6
        d = jnp.asarray(rng.normal(size=x0.shape))
        fd = (f(x0 + eps * d) - f(x0 - eps * d)) / (2 * eps)
        assert float(fd) == pytest.approx(float(np.sum(g * np.asarray(d))), rel=1e-4, abs=1e-8)
    finally:
        jax.config.update("jax_enable_x64", False)

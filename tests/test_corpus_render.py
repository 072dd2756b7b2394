"""Bad inputs to the rasterizer: each case builds its input and asserts the exact behaviour."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arthoi_jax.config import RenderConfig
from arthoi_jax.errors import InputError
from arthoi_jax.render.rasterize import render
from arthoi_jax.render.types import Camera, Gaussians

W, H = 24, 16
CFG = RenderConfig(mode="tiled", tile_size=8, tile_capacity=16)
BG = jnp.array([0.1, 0.2, 0.3])


def scene(n=8, z=2.0):
    rng = np.random.default_rng(0)
    return Gaussians(
        means=jnp.asarray(np.c_[rng.uniform(-0.5, 0.5, (n, 2)), np.full(n, z)], jnp.float32),
        quats=jnp.asarray(rng.normal(size=(n, 4)), jnp.float32),
        log_scales=jnp.full((n, 3), np.log(0.1), jnp.float32),
        opacity_logits=jnp.ones((n,), jnp.float32),
        colors=jnp.asarray(rng.uniform(size=(n, 3)), jnp.float32),
    )


def camera(width=W, height=H, K=None, T=None):
    K = jnp.array([[20.0, 0, width / 2], [0, 20.0, height / 2], [0, 0, 1]]) if K is None else K
    return Camera(K=K, T_cam_world=jnp.eye(4) if T is None else T, width=width, height=height)


def loss_and_grads(g, cfg=CFG, valid=None):
    def loss(g):
        out = render(g, camera(), cfg, background=BG, valid=valid)
        return jnp.sum(out.rgb) + jnp.sum(out.depth) + jnp.sum(out.means2d), out

    return jax.value_and_grad(loss, has_aux=True)(g)


def assert_background_with_zero_grads(g, cfg=CFG):
    (_, out), grads = loss_and_grads(g, cfg)
    np.testing.assert_array_equal(np.asarray(out.rgb), np.broadcast_to(np.asarray(BG), (H, W, 3)))
    assert np.all(np.asarray(out.alpha) == 0) and np.all(np.asarray(out.radii) == 0)
    for leaf in jax.tree.leaves(grads):
        assert np.all(np.asarray(leaf) == 0)


@pytest.mark.parametrize("mode", ["tiled", "dense"])
def test_render_n0_gives_background_and_zero_grads(mode):
    assert_background_with_zero_grads(jax.tree.map(lambda x: x[:0], scene()), dataclasses.replace(CFG, mode=mode))


@pytest.mark.parametrize("mode", ["tiled", "dense"])
def test_render_all_behind_camera_gives_background_and_zero_grads(mode):
    assert_background_with_zero_grads(scene(z=-2.0), dataclasses.replace(CFG, mode=mode))


def test_render_all_closer_than_near_plane_gives_background():
    assert_background_with_zero_grads(scene(z=0.005))


def test_render_all_invalid_padding_gives_background_and_zero_grads():
    (_, out), grads = loss_and_grads(scene(), valid=jnp.zeros((8,), bool))
    np.testing.assert_array_equal(np.asarray(out.rgb), np.broadcast_to(np.asarray(BG), (H, W, 3)))
    assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(grads))


@pytest.mark.parametrize(
    "field,value",
    [("means", np.nan), ("means", np.inf), ("log_scales", np.nan), ("log_scales", np.inf), ("quats", np.nan),
     ("opacity_logits", np.nan), ("colors", np.inf)],
)
def test_render_culls_gaussian_with_nonfinite_parameter(field, value):
    """Gaussian 0 gets a non-finite entry: it is culled; the image equals the scene without it, grads finite."""
    g = scene()
    arr = getattr(g, field)
    bad = dataclasses.replace(g, **{field: arr.at[0].set(value)})
    (_, out), grads = loss_and_grads(bad)
    (_, without), _ = loss_and_grads(g, valid=jnp.arange(8) > 0)
    assert int(out.radii[0]) == 0
    np.testing.assert_allclose(np.asarray(out.rgb), np.asarray(without.rgb), atol=1e-6)
    for name, leaf in zip(("means", "quats", "log_scales", "opacity_logits", "colors"), jax.tree.leaves(grads)):
        assert np.all(np.isfinite(np.asarray(leaf))), name
        assert np.all(np.asarray(leaf[0]) == 0), name


def test_render_culls_zero_quaternion():
    g = scene()
    (_, out), grads = loss_and_grads(dataclasses.replace(g, quats=g.quats.at[3].set(0.0)))
    assert int(out.radii[3]) == 0 and all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(grads))


@pytest.mark.parametrize("log_scale", [12.0, 40.0, 100.0])
def test_render_huge_scales_stay_finite(log_scale):
    """Scales of e^12 m (covers every tile), e^40 m (cov2d overflows float32: culled), e^100 (exp = inf: culled)."""
    g = scene()
    (_, out), grads = loss_and_grads(dataclasses.replace(g, log_scales=g.log_scales.at[0].set(log_scale)))
    for leaf in jax.tree.leaves((out.rgb, out.alpha, out.depth, grads)):
        assert np.all(np.isfinite(np.asarray(leaf)))
    assert (int(out.radii[0]) > 0) == (log_scale == 12.0)


def test_render_gaussian_at_camera_centre_is_culled():
    g = scene()
    (_, out), grads = loss_and_grads(dataclasses.replace(g, means=g.means.at[2].set(0.0)))
    assert int(out.radii[2]) == 0 and all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(grads))


@pytest.mark.parametrize("width,height", [(0, 16), (24, 0), (-4, 16)])
def test_render_rejects_zero_size_image(width, height):
    with pytest.raises(InputError, match=r"camera\.(width|height) must be a positive int"):
        render(scene(), camera(width=width, height=height), CFG)


def test_render_rejects_quats_shape_mismatch():
    g = scene()
    with pytest.raises(InputError, match=r"gaussians\.quats must have shape \(8, 4\).*got \(8, 3\)"):
        render(dataclasses.replace(g, quats=g.quats[:, :3]), camera(), CFG)


def test_render_rejects_opacity_count_mismatch():
    g = scene()
    with pytest.raises(InputError, match=r"gaussians\.opacity_logits must have shape \(8,\).*got \(7,\)"):
        render(dataclasses.replace(g, opacity_logits=g.opacity_logits[:7]), camera(), CFG)


def test_render_rejects_means_without_xyz():
    g = scene()
    with pytest.raises(InputError, match=r"gaussians\.means must be \[N, 3\], got shape \(8, 2\)"):
        render(dataclasses.replace(g, means=g.means[:, :2]), camera(), CFG)


def test_render_rejects_valid_of_wrong_length():
    with pytest.raises(InputError, match=r"valid must have shape \(8,\).*got \(9,\)"):
        render(scene(), camera(), CFG, valid=jnp.ones((9,), bool))


def test_render_rejects_batched_camera_without_vmap():
    cam = camera()
    with pytest.raises(InputError, match=r"camera\.K must be \[3, 3\].*got \(2, 3, 3\)"):
        render(scene(), dataclasses.replace(cam, K=jnp.stack([cam.K, cam.K])), CFG)


def test_render_rejects_background_with_wrong_channels():
    with pytest.raises(InputError, match=r"background must have shape \(3,\).*got \(4,\)"):
        render(scene(), camera(), CFG, background=jnp.zeros(4))


def test_render_rejects_nonfinite_camera():
    with pytest.raises(InputError, match=r"camera\.K and camera\.T_cam_world must be finite"):
        render(scene(), camera(T=jnp.eye(4).at[0, 3].set(jnp.nan)), CFG)


def test_render_rejects_nonpositive_focal_length():
    K = jnp.array([[0.0, 0, 12], [0, 20.0, 8], [0, 0, 1]])
    with pytest.raises(InputError, match=r"positive focal lengths, got fx=0\.0"):
        render(scene(), camera(K=K), CFG)


def test_render_rejects_unknown_mode():
    with pytest.raises(InputError, match=r"cfg\.mode must be 'tiled' or 'dense', got 'fast'"):
        render(scene(), camera(), dataclasses.replace(CFG, mode="fast"))


def test_render_tile_capacity_one_counts_overflow_and_stays_finite():
    out = render(scene(n=8), camera(), dataclasses.replace(CFG, tile_capacity=1))
    assert int(out.overflow) > 0 and np.all(np.isfinite(np.asarray(out.rgb)))

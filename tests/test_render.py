"""Rasterizer parity: gsplat 1.5.3's torch projection/tiling, an independent torch compositing twin, finite
differences, and the tiled == dense invariant.

Tolerances (float32): projection and images max abs error <= 1e-4; radii exact (gsplat's own tests allow
+-1; we assert exact since both sides compute ceil(3.33 sqrt(cov)) in float32 with the same formula);
gradients ||g_jax - g_torch|| / ||g_torch|| <= 1e-3 per parameter; float64 finite differences rel 1e-6.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from gsplat.cuda._torch_impl import _fully_fused_projection, _isect_tiles, _quat_scale_to_covar_preci

from arthoi_jax.config import RenderConfig
from arthoi_jax.render.project import covariance_3d, project_gaussians
from arthoi_jax.render.rasterize import render, render_dense, render_tiled
from arthoi_jax.render.tiles import bin_gaussians, tile_grid
from arthoi_jax.render.types import Camera, Gaussians
from tests.torch_compositing_reference import render_reference

W, H = 40, 30
CFG = RenderConfig(mode="dense", tile_size=8, tile_capacity=64)


def make_scene(n=48, seed=0, dtype=np.float32, spread=1.0, opaque=False):
    """Gaussians in front of a camera ~3 m away, with a few behind it and a few beside the image.

    opaque: large, nearly opaque Gaussians piled up, so most pixels reach the transmittance cut-off.
    """
    rng = np.random.default_rng(seed)
    means = rng.uniform([-spread, -0.8 * spread, 2.0], [spread, 0.8 * spread, 4.0], (n, 3))
    means[0] = [0.1, 0.0, -1.0]  # behind the camera
    means[1] = [9.0, 0.0, 3.0]  # beside the image
    g = dict(
        means=means,
        quats=rng.normal(size=(n, 4)),
        log_scales=rng.uniform(-3.0, -1.6, (n, 3)),
        opacity_logits=rng.normal(0.0, 1.5, n),
        colors=rng.uniform(size=(n, 3)),
    )
    if opaque:
        g["opacity_logits"] = rng.uniform(2.0, 5.0, n)
        g["log_scales"] = rng.uniform(-1.1, -0.6, (n, 3))
    return {k: v.astype(dtype) for k, v in g.items()}


def make_camera(dtype=np.float32):
    """An off-centre principal point and a non-trivial pose (small rotation + translation)."""
    K = np.array([[42.0, 0.0, 21.7], [0.0, 44.0, 13.9], [0.0, 0.0, 1.0]])
    a = 0.1
    R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = [0.05, -0.03, 0.2]
    return K.astype(dtype), T.astype(dtype)


def jax_inputs(g, K, T):
    gs = Gaussians(**{k: jnp.asarray(v) for k, v in g.items()})
    return gs, Camera(K=jnp.asarray(K), T_cam_world=jnp.asarray(T), width=W, height=H)


def torch_proj(g, K, T, cfg=CFG):
    covars, _ = _quat_scale_to_covar_preci(torch.tensor(g["quats"]), torch.exp(torch.tensor(g["log_scales"])))
    radii, means2d, depths, conics, _ = _fully_fused_projection(
        torch.tensor(g["means"]), covars, torch.tensor(T)[None], torch.tensor(K)[None], W, H,
        eps2d=cfg.eps2d, near_plane=cfg.near, far_plane=cfg.far,
    )
    return radii[0].numpy(), means2d[0].numpy(), depths[0].numpy(), conics[0].numpy()


def test_covariance_matches_gsplat():
    g = make_scene()
    ours = covariance_3d(jnp.asarray(g["quats"]), jnp.exp(jnp.asarray(g["log_scales"])))
    ref, _ = _quat_scale_to_covar_preci(torch.tensor(g["quats"]), torch.exp(torch.tensor(g["log_scales"])))
    np.testing.assert_allclose(np.asarray(ours), ref.numpy(), atol=1e-6, rtol=0)


def test_projection_matches_gsplat():
    g = make_scene(n=200, spread=1.5)
    K, T = make_camera()
    p = project_gaussians(*jax_inputs(g, K, T), CFG)
    radii, means2d, depths, conics = torch_proj(g, K, T)
    np.testing.assert_array_equal(np.asarray(p.radii), radii)
    vis = (radii > 0).all(-1)
    assert 50 < vis.sum() < 200 and radii[0].sum() == 0 and radii[1].sum() == 0  # behind / beside culled
    np.testing.assert_allclose(np.asarray(p.means2d)[vis], means2d[vis], atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.asarray(p.conics)[vis], conics[vis], atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.asarray(p.depths), depths, atol=1e-5, rtol=0)


def test_tile_binning_matches_gsplat_isect_tiles():
    g = make_scene(n=120, spread=1.5)
    K, T = make_camera()
    p = project_gaussians(*jax_inputs(g, K, T), CFG)
    ts = CFG.tile_size
    tx, ty = tile_grid(W, H, ts)
    bins = bin_gaussians(p.means2d, p.radii, p.depths, W, H, ts, 120)
    radii, means2d, depths, _ = torch_proj(g, K, T)
    tiles_per_gauss, isect_ids, flatten_ids = _isect_tiles(
        torch.tensor(means2d)[None], torch.tensor(radii)[None], torch.tensor(depths)[None], ts, tx, ty
    )
    np.testing.assert_array_equal(np.asarray(bins.tiles_per_gaussian), tiles_per_gauss[0].numpy())
    tile_of_pair = (isect_ids >> 32).numpy()
    ids, mask = np.asarray(bins.ids), np.asarray(bins.mask)
    assert int(bins.overflow) == 0 and len(flatten_ids) == int(mask.sum())
    for t in range(tx * ty):
        np.testing.assert_array_equal(ids[t][mask[t]], flatten_ids.numpy()[tile_of_pair == t], err_msg=f"tile {t}")


def test_overflow_counts_pairs_beyond_capacity():
    g = make_scene(n=120, spread=0.6)
    K, T = make_camera()
    gs, cam = jax_inputs(g, K, T)
    p = project_gaussians(gs, cam, CFG)
    full = bin_gaussians(p.means2d, p.radii, p.depths, W, H, CFG.tile_size, 120)
    counts = np.asarray(full.count)
    cap = 40  # some tiles hold more, but all pairs fit in the 20 x 40 pair buffer
    assert counts.max() > cap and counts.sum() <= counts.size * cap
    out = render(gs, cam, dataclasses.replace(CFG, mode="tiled", tile_capacity=cap))
    assert int(out.overflow) == int(np.maximum(counts - cap, 0).sum()) > 0
    # The kept Gaussians are each tile's nearest ones.
    small = bin_gaussians(p.means2d, p.radii, p.depths, W, H, CFG.tile_size, cap)
    np.testing.assert_array_equal(np.asarray(small.ids), np.asarray(full.ids)[:, :cap] * np.asarray(small.mask))


def test_overflow_counts_pairs_beyond_pair_buffer():
    """With 20 tiles x capacity 5 < 737 pairs, kept + dropped still account for every pair."""
    g = make_scene(n=120, spread=0.6)
    K, T = make_camera()
    p = project_gaussians(*jax_inputs(g, K, T), CFG)
    small = bin_gaussians(p.means2d, p.radii, p.depths, W, H, CFG.tile_size, 5)
    total = int(np.asarray(small.tiles_per_gaussian).sum())
    assert total > 20 * 5 and int(small.overflow) == total - int(np.asarray(small.mask).sum())


@pytest.mark.parametrize("opaque", [False, True], ids=["translucent", "saturated"])
@pytest.mark.parametrize("mode", ["dense", "tiled"])
def test_render_matches_torch_reference(mode, opaque):
    g = make_scene(opaque=opaque, spread=1.3 if opaque else 1.0)
    K, T = make_camera()
    bg = np.array([0.2, 0.5, 0.9], np.float32)
    out = render(*jax_inputs(g, K, T), dataclasses.replace(CFG, mode=mode), background=jnp.asarray(bg))
    rgb, alpha, depth, means2d, radii = render_reference(
        *(torch.tensor(g[k]) for k in ("means", "quats", "log_scales", "opacity_logits", "colors")),
        torch.tensor(T), torch.tensor(K), W, H, torch.tensor(bg),
    )
    assert int(out.overflow) == 0 and float(alpha.max()) > 0.9  # some pixels are nearly opaque
    if opaque:  # most pixels stopped at the transmittance cut-off
        assert float((alpha > 0.999).float().mean()) > 0.5
    np.testing.assert_allclose(np.asarray(out.rgb), rgb.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.asarray(out.alpha), alpha.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.asarray(out.depth), depth.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_array_equal(np.asarray(out.radii), radii.numpy().max(-1))


def _loss_weights(n):
    rng = np.random.default_rng(7)
    return [rng.normal(size=s).astype(np.float32) for s in [(H, W, 3), (H, W), (H, W), (n, 2)]]


@pytest.mark.parametrize("opaque", [False, True], ids=["translucent", "saturated"])
@pytest.mark.parametrize("mode", ["dense", "tiled"])
def test_gradients_match_torch_autograd(mode, opaque):
    g = make_scene(n=32, opaque=opaque, spread=1.3 if opaque else 1.0)
    K, T = make_camera()
    wr, wa, wd, wm = _loss_weights(32)
    cfg = dataclasses.replace(CFG, mode=mode)

    def loss_jax(params, K, T):
        gs = Gaussians(**params)
        out = render(gs, Camera(K=K, T_cam_world=T, width=W, height=H), cfg)
        vis = (out.radii > 0)[:, None]
        return (jnp.sum(out.rgb * wr) + jnp.sum(out.alpha * wa) + jnp.sum(out.depth * wd)
                + jnp.sum(jnp.where(vis, out.means2d, 0.0) * wm))

    params = {k: jnp.asarray(v) for k, v in g.items()}
    gj, gK, gT = jax.grad(loss_jax, argnums=(0, 1, 2))(params, jnp.asarray(K), jnp.asarray(T))

    tp = {k: torch.tensor(v, requires_grad=True) for k, v in g.items()}
    tK, tT = torch.tensor(K, requires_grad=True), torch.tensor(T, requires_grad=True)
    rgb, alpha, depth, means2d, radii = render_reference(
        tp["means"], tp["quats"], tp["log_scales"], tp["opacity_logits"], tp["colors"], tT, tK, W, H,
        torch.zeros(3),
    )
    vis = (radii > 0).all(-1)[:, None]
    loss = ((rgb * torch.tensor(wr)).sum() + (alpha * torch.tensor(wa)).sum() + (depth * torch.tensor(wd)).sum()
            + (torch.where(vis, means2d, 0.0) * torch.tensor(wm)).sum())
    loss.backward()
    pairs = {k: (gj[k], tp[k].grad) for k in g} | {"K": (gK, tK.grad), "T_cam_world": (gT, tT.grad)}
    for name, (a, b) in pairs.items():
        b = b.numpy()
        rel = np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b)
        assert np.linalg.norm(b) > 0 and rel <= 1e-3, f"{name}: relative error {rel:.2e}"


def test_gradients_match_finite_differences_float64():
    with jax.enable_x64(True):
        g = make_scene(n=6, seed=3, dtype=np.float64, spread=0.4)
        K, T = make_camera(np.float64)
        cfg = dataclasses.replace(CFG, mode="tiled")
        wr, wa, wd, _ = (w.astype(np.float64) for w in _loss_weights(6))

        @jax.jit
        def loss(params, K, T):
            out = render(Gaussians(**params), Camera(K=K, T_cam_world=T, width=W, height=H), cfg)
            return jnp.sum(out.rgb * wr) + jnp.sum(out.alpha * wa) + jnp.sum(out.depth * wd)

        args = ({k: jnp.asarray(v) for k, v in g.items()}, jnp.asarray(K), jnp.asarray(T))
        assert args[1].dtype == jnp.float64
        grads = jax.grad(loss, argnums=(0, 1, 2))(*args)
        rng = np.random.default_rng(1)
        eps = 1e-6
        for i in range(4):  # random directions in the joint parameter space
            direction = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape)), args)
            direction = (direction[0], direction[1].at[2].set(0.0), direction[2].at[3].set(0.0))
            plus = jax.tree.map(lambda x, d: x + eps * d, args, direction)
            minus = jax.tree.map(lambda x, d: x - eps * d, args, direction)
            fd = (loss(*plus) - loss(*minus)) / (2 * eps)
            analytic = sum(jnp.sum(a * d) for a, d in zip(jax.tree.leaves(grads), jax.tree.leaves(direction)))
            assert abs(float(fd)) > 1e-3
            np.testing.assert_allclose(float(analytic), float(fd), rtol=1e-6, err_msg=f"direction {i}")


def test_tiled_equals_dense_without_overflow():
    g = make_scene(n=150, spread=1.2, seed=5)
    K, T = make_camera()
    gs, cam = jax_inputs(g, K, T)
    tiled = render_tiled(gs, cam, dataclasses.replace(CFG, tile_capacity=150))
    dense = render_dense(gs, cam, CFG)
    assert int(tiled.overflow) == 0
    for name in ("rgb", "alpha", "depth"):
        np.testing.assert_allclose(getattr(tiled, name), getattr(dense, name), atol=1e-6, rtol=0, err_msg=name)


def test_vmap_over_frames_equals_loop():
    g = make_scene()
    K, T = make_camera()
    gs, cam = jax_inputs(g, K, T)
    shifts = jnp.array([[0.0, 0.0, 0.0], [0.1, -0.05, 0.0], [-0.1, 0.0, 0.3]])
    Ts = jnp.stack([cam.T_cam_world.at[:3, 3].add(s) for s in shifts])
    cfg = dataclasses.replace(CFG, mode="tiled")
    batched = jax.jit(jax.vmap(lambda T: render(gs, Camera(K=cam.K, T_cam_world=T, width=W, height=H), cfg)))(Ts)
    for i in range(3):
        one = render(gs, Camera(K=cam.K, T_cam_world=Ts[i], width=W, height=H), cfg)
        np.testing.assert_allclose(batched.rgb[i], one.rgb, atol=1e-6, rtol=0)
        np.testing.assert_array_equal(batched.radii[i], one.radii)


def test_vmap_over_padded_scenes_ignores_padding():
    """Two scenes of 20 and 32 Gaussians padded to 32: the padding neither draws nor receives gradient."""
    K, T = make_camera()
    a, b = make_scene(n=20, seed=1), make_scene(n=32, seed=2)
    pad = {k: np.concatenate([a[k], 5.0 * np.ones_like(b[k][20:])]) for k in a}  # finite garbage, opaque
    stacked = {k: jnp.stack([pad[k], b[k]]) for k in a}
    valid = jnp.array([[True] * 20 + [False] * 12, [True] * 32])
    cfg = dataclasses.replace(CFG, mode="tiled")

    def loss(params, valid):
        out = render(Gaussians(**params), Camera(K=jnp.asarray(K), T_cam_world=jnp.asarray(T), width=W, height=H),
                     cfg, valid=valid)
        return jnp.sum(out.rgb), out.rgb

    (_, rgb), grads = jax.jit(jax.vmap(jax.value_and_grad(loss, has_aux=True)))(stacked, valid)
    alone = render(*jax_inputs(a, K, T), cfg)
    np.testing.assert_allclose(rgb[0], alone.rgb, atol=1e-6, rtol=0)
    for name, grad in grads.items():
        assert np.all(np.asarray(grad[0, 20:]) == 0), name
        assert np.all(np.isfinite(np.asarray(grad))), name


def test_known_point_lands_on_known_pixel():
    """A small Gaussian at p_world lands at K (R p + t), with the principal point off-centre."""
    K, T = make_camera()
    p_world = np.array([0.3, -0.2, 3.0])
    p_cam = T[:3, :3] @ p_world + T[:3, 3]
    u = K[0, 0] * p_cam[0] / p_cam[2] + K[0, 2]
    v = K[1, 1] * p_cam[1] / p_cam[2] + K[1, 2]
    g = dict(means=p_world[None], quats=np.array([[1.0, 0, 0, 0]]), log_scales=np.full((1, 3), np.log(0.01)),
             opacity_logits=np.array([5.0]), colors=np.ones((1, 3)))
    g = {k: np.asarray(x, np.float32) for k, x in g.items()}
    out = render(*jax_inputs(g, K, T), CFG)
    np.testing.assert_allclose(np.asarray(out.means2d[0]), [u, v], atol=1e-4)
    row, col = np.unravel_index(np.argmax(np.asarray(out.alpha)), (H, W))
    assert (col, row) == (int(np.floor(u)), int(np.floor(v)))
    np.testing.assert_allclose(float(out.depths[0]), p_cam[2], atol=1e-6)


def test_jit_compiles_once_across_scenes():
    traces = []
    cfg = dataclasses.replace(CFG, mode="tiled")

    @jax.jit
    def step(params):
        traces.append(1)
        return render(Gaussians(**params), Camera(K=jnp.asarray(K), T_cam_world=jnp.asarray(T), width=W, height=H),
                      cfg).rgb

    K, T = make_camera()
    for seed in range(3):
        step({k: jnp.asarray(v) for k, v in make_scene(seed=seed).items()})
    assert len(traces) == 1

"""Differentiable rasterization of 3D Gaussians: projection -> (tile binning) -> compositing.

`render` dispatches on `cfg.mode`:
  * "tiled": Gaussians are binned into cfg.tile_size tiles holding at most cfg.tile_capacity each (static
    shapes; dropped pairs are counted in `RenderOutput.overflow`); each tile composites its list 32 Gaussians
    at a time and stops once all its pixels are saturated (`tile_composite`). The fast path: its cost follows
    the Gaussians drawn, the capacity only bounds memory.
  * "dense": every pixel composites every depth-sorted Gaussian as one [pixels x N] matrix, in blocks of
    pixels (`composite`; no overflow possible). The simple, independent twin used by tests.
Both give the same image whenever the tiled path reports no overflow (a pixel outside a Gaussian's 3.33-sigma
box always has alpha < 1/255, so the tile test drops nothing that would be drawn).

All three functions are pure, jit-able (`jax.jit(render, static_argnames="cfg")`), differentiable w.r.t. every
Gaussian parameter, `camera.K` and `camera.T_cam_world`, and vmap-able over frames or scenes (close over
`cfg`). Backward memory is bounded: both compositors have hand-written VJPs that keep only their inputs
(per tile: its gathered Gaussians) and recompute each block of pixels in the backward pass.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from arthoi_jax.config import RenderConfig
from arthoi_jax.errors import InputError
from arthoi_jax.render.composite import chunked_map, composite
from arthoi_jax.render.project import Projection, project_gaussians
from arthoi_jax.render.tile_composite import composite_tile
from arthoi_jax.render.tiles import bin_gaussians, tile_grid
from arthoi_jax.render.types import Camera, Gaussians, RenderOutput

# Entries of the [pixels x Gaussians] block composited at once on the dense path; bounds its memory.
_BLOCK_ELEMENTS = 1 << 20
# Tiled path: Gaussians composited per step of a tile's loop, and [pixels x Gaussians] entries per step
# across the tiles processed together (small: the loop over a group runs until its slowest tile is done).
_TILE_CHUNK = 32
_TILE_STEP_ELEMENTS = 1 << 15


def render(
    gaussians: Gaussians,
    camera: Camera,
    cfg: RenderConfig,
    background: jnp.ndarray | None = None,
    valid: jnp.ndarray | None = None,
) -> RenderOutput:
    """Renders N Gaussians into camera.height x camera.width pixels (see module docstring).

    gaussians: means [N, 3] metres world frame, quats [N, 4] wxyz, log_scales [N, 3], opacity_logits [N],
      colors [N, C]. camera: K [3, 3] pixels, T_cam_world [4, 4]. background: [C] (default cfg.background).
    valid: [N] bool, False for padding: treated as culled (no contribution, zero gradient).
    Returns RenderOutput: rgb [H, W, C] = sum w_i c_i + T_final background; alpha [H, W] = 1 - T_final;
    depth [H, W] = sum w_i z_i (alpha-weighted, NOT normalised: divide by alpha for the surface depth);
    means2d [N, 2]; depths [N]; radii [N] int32 (max of the x/y radii, 0 when culled); overflow [] int32.
    """
    if cfg.mode == "tiled":
        return render_tiled(gaussians, camera, cfg, background, valid)
    if cfg.mode == "dense":
        return render_dense(gaussians, camera, cfg, background, valid)
    raise InputError(f"render: cfg.mode must be 'tiled' or 'dense', got {cfg.mode!r}")


def render_dense(gaussians, camera, cfg, background=None, valid=None) -> RenderOutput:
    """`render` with every pixel compositing every Gaussian (depth-sorted); overflow is always 0."""
    bg, empty = _prepare(gaussians, camera, cfg, background, valid)
    return empty if empty is not None else _render_dense(gaussians, camera, cfg, bg, valid)


def render_tiled(gaussians, camera, cfg, background=None, valid=None) -> RenderOutput:
    """`render` over cfg.tile_size tiles of at most cfg.tile_capacity depth-sorted Gaussians each."""
    bg, empty = _prepare(gaussians, camera, cfg, background, valid)
    return empty if empty is not None else _render_tiled(gaussians, camera, cfg, bg, valid)


@partial(jax.jit, static_argnames="cfg")
def _render_dense(gaussians, camera, cfg, bg, valid) -> RenderOutput:
    proj = project_gaussians(gaussians, camera, cfg, valid)
    order = jnp.argsort(jnp.where(proj.radii[:, 0] > 0, jax.lax.stop_gradient(proj.depths), jnp.inf), stable=True)
    p = jax.tree.map(lambda x: x[order], proj)
    pixels = _pixel_centres(camera.height, camera.width, camera.K.dtype).reshape(-1, 2)
    n = gaussians.means.shape[0]

    def block(px):
        return composite(px, p.means2d, p.conics, p.opacities, p.colors, p.depths, cfg.max_alpha)

    color, trans, depth = chunked_map(block, pixels, max(1, _BLOCK_ELEMENTS // n))
    shape = (camera.height, camera.width)
    return _output(color.reshape(shape + (-1,)), trans.reshape(shape), depth.reshape(shape), bg, proj, 0)


@partial(jax.jit, static_argnames="cfg")
def _render_tiled(gaussians, camera, cfg, bg, valid) -> RenderOutput:
    proj = project_gaussians(gaussians, camera, cfg, valid)
    n = gaussians.means.shape[0]
    ts = cfg.tile_size
    capacity = min(cfg.tile_capacity, n)
    bins = bin_gaussians(proj.means2d, proj.radii, proj.depths, camera.width, camera.height, ts, capacity)
    tiles_x, tiles_y = tile_grid(camera.width, camera.height, ts)
    # Pixel centres of each tile, [n_tiles, ts*ts, 2], tiles row-major like the tile ids.
    grid = _pixel_centres(tiles_y * ts, tiles_x * ts, camera.K.dtype)
    pixels = grid.reshape(tiles_y, ts, tiles_x, ts, 2).transpose(0, 2, 1, 3, 4).reshape(tiles_x * tiles_y, ts * ts, 2)

    chunk = min(_TILE_CHUNK, capacity)
    slots = -(-capacity // chunk) * chunk  # capacity padded to whole chunks with empty slots
    ids = jnp.pad(bins.ids, ((0, 0), (0, slots - capacity)))
    mask = jnp.pad(bins.mask, ((0, 0), (0, slots - capacity)))

    def one_tile(px, ids, mask):
        return composite_tile(
            px, proj.means2d[ids], proj.conics[ids], jnp.where(mask, proj.opacities[ids], 0.0),
            proj.colors[ids], proj.depths[ids], cfg.max_alpha, chunk,
        )

    tiles_per_step = max(1, _TILE_STEP_ELEMENTS // (ts * ts * chunk))
    color, trans, depth = chunked_map(lambda a: jax.vmap(one_tile)(*a), (pixels, ids, mask), tiles_per_step)

    def untile(x):
        x = x.reshape((tiles_y, tiles_x, ts, ts) + x.shape[2:]).swapaxes(1, 2)
        return x.reshape((tiles_y * ts, tiles_x * ts) + x.shape[4:])[: camera.height, : camera.width]

    return _output(untile(color), untile(trans), untile(depth), bg, proj, bins.overflow)


def _pixel_centres(height: int, width: int, dtype) -> jnp.ndarray:
    ys, xs = jnp.meshgrid(jnp.arange(height, dtype=dtype) + 0.5, jnp.arange(width, dtype=dtype) + 0.5, indexing="ij")
    return jnp.stack([xs, ys], axis=-1)


def _output(color, trans, depth, bg, proj: Projection, overflow) -> RenderOutput:
    return RenderOutput(
        rgb=color + trans[..., None] * bg,
        alpha=1.0 - trans,
        depth=depth,
        means2d=proj.means2d,
        depths=proj.depths,
        radii=jnp.max(proj.radii, axis=-1),
        overflow=jnp.asarray(overflow, jnp.int32),
    )


def _prepare(gaussians: Gaussians, camera: Camera, cfg: RenderConfig, background, valid):
    """Checks shapes (at trace time) and returns (background [C], the output for N = 0 or None)."""
    g = gaussians
    if g.means.ndim != 2 or g.means.shape[-1] != 3:
        raise InputError(f"render: gaussians.means must be [N, 3], got shape {tuple(g.means.shape)}")
    n = g.means.shape[0]
    if g.colors.ndim != 2 or g.colors.shape[0] != n or g.colors.shape[1] < 1:
        raise InputError(f"render: gaussians.colors must be [N={n}, C], got shape {tuple(g.colors.shape)}")
    expected = {"quats": (n, 4), "log_scales": (n, 3), "opacity_logits": (n,)}
    for name, shape in expected.items():
        got = tuple(getattr(g, name).shape)
        if got != shape:
            raise InputError(f"render: gaussians.{name} must have shape {shape} (N={n} from means), got {got}")
    if valid is not None and tuple(valid.shape) != (n,):
        raise InputError(f"render: valid must have shape ({n},) (one flag per Gaussian), got {tuple(valid.shape)}")
    if tuple(camera.K.shape) != (3, 3) or tuple(camera.T_cam_world.shape) != (4, 4):
        raise InputError(
            f"render: camera.K must be [3, 3] and camera.T_cam_world [4, 4], got {tuple(camera.K.shape)} and "
            f"{tuple(camera.T_cam_world.shape)} (vmap over batched cameras instead of passing them whole)"
        )
    for name in ("width", "height"):
        size = getattr(camera, name)
        if not isinstance(size, (int, np.integer)) or size <= 0:
            raise InputError(f"render: camera.{name} must be a positive int (static), got {size!r}")
    channels = g.colors.shape[1]
    bg = jnp.asarray(cfg.background if background is None else background, dtype=g.colors.dtype)
    if bg.shape != (channels,):
        raise InputError(f"render: background must have shape ({channels},) like the colours, got {tuple(bg.shape)}")
    _check_concrete(camera)
    if n > 0:
        return bg, None
    h, w = camera.height, camera.width
    dtype = g.means.dtype
    empty = RenderOutput(
        rgb=jnp.broadcast_to(bg, (h, w, channels)),
        alpha=jnp.zeros((h, w), dtype),
        depth=jnp.zeros((h, w), dtype),
        means2d=jnp.zeros((0, 2), dtype),
        depths=jnp.zeros((0,), dtype),
        radii=jnp.zeros((0,), jnp.int32),
        overflow=jnp.zeros((), jnp.int32),
    )
    return bg, empty


def _check_concrete(camera: Camera) -> None:
    """Rejects a non-finite or singular camera when its values are known (outside jit)."""
    try:
        K, T = np.asarray(camera.K), np.asarray(camera.T_cam_world)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return
    if not (np.all(np.isfinite(K)) and np.all(np.isfinite(T))):
        raise InputError("render: camera.K and camera.T_cam_world must be finite")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise InputError(f"render: camera.K must have positive focal lengths, got fx={K[0, 0]}, fy={K[1, 1]}")

"""Binning projected Gaussians into screen tiles with a static per-tile capacity.

Tile rectangles follow gsplat 1.5.3's `_isect_tiles`: Gaussian g covers tiles
[floor((m - r) / s), ceil((m + r) / s)) on each axis, clamped to the grid, when both its radii are > 0.
Every (Gaussian, tile) pair is listed in global front-to-back order, then stably sorted by tile, so each
tile's list is depth-sorted (ties broken by Gaussian index). A tile keeps its first `capacity` Gaussians;
the rest, and any pair beyond the pair buffer of n_tiles * capacity entries, are dropped and counted.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp


class TileBins(NamedTuple):
    """ids: [n_tiles, capacity] int32 Gaussian indices, front to back; mask: [n_tiles, capacity] bool (slot
    used); count: [n_tiles] int32 pairs of each tile that fit the pair buffer (before the capacity cut; the
    exact pair count whenever the buffer did not fill); overflow: [] int32 pairs dropped in all (buffer and
    capacity); tiles_per_gaussian: [N] int32 tiles each Gaussian's rectangle covers."""

    ids: jnp.ndarray
    mask: jnp.ndarray
    count: jnp.ndarray
    overflow: jnp.ndarray
    tiles_per_gaussian: jnp.ndarray


def tile_grid(width: int, height: int, tile_size: int) -> tuple[int, int]:
    """(tiles across, tiles down) covering a width x height image."""
    return -(-width // tile_size), -(-height // tile_size)


def tile_rects(means2d, radii, tile_size: int, tiles_x: int, tiles_y: int):
    """[N, 2] pixels, [N, 2] int radii -> (tile_min [N, 2], tile_max [N, 2]) int32, half-open, clamped."""
    m = means2d / tile_size
    r = radii.astype(means2d.dtype) / tile_size
    hi = jnp.array([tiles_x, tiles_y])
    tmin = jnp.clip(jnp.floor(m - r), 0, hi).astype(jnp.int32)
    tmax = jnp.clip(jnp.ceil(m + r), 0, hi).astype(jnp.int32)
    return tmin, tmax


@partial(jax.jit, static_argnames=("width", "height", "tile_size", "capacity"))
def bin_gaussians(means2d, radii, depths, width: int, height: int, tile_size: int, capacity: int) -> TileBins:
    """Per-tile, depth-sorted Gaussian lists of static size (see module docstring). Not differentiable.

    means2d: [N, 2] pixels; radii: [N, 2] int32 (0 = culled); depths: [N] metres.
    """
    means2d, depths = jax.lax.stop_gradient(means2d), jax.lax.stop_gradient(depths)
    n = means2d.shape[0]
    tiles_x, tiles_y = tile_grid(width, height, tile_size)
    n_tiles = tiles_x * tiles_y
    visible = jnp.all(radii > 0, axis=-1)
    tmin, tmax = tile_rects(means2d, radii, tile_size, tiles_x, tiles_y)
    extent = tmax - tmin
    per_gaussian = jnp.where(visible, extent[:, 0] * extent[:, 1], 0)

    order = jnp.argsort(jnp.where(visible, depths, jnp.inf), stable=True)
    buffer = n_tiles * capacity
    # Pair slot s belongs to the Gaussian order[j] whose run of pairs contains s.
    j = jnp.repeat(jnp.arange(n, dtype=jnp.int32), per_gaussian[order], total_repeat_length=buffer)
    starts = jnp.cumsum(per_gaussian[order]) - per_gaussian[order]
    total = jnp.sum(per_gaussian)
    slot = jnp.arange(buffer, dtype=jnp.int32)
    gid = order[j]
    local = slot - starts[j]
    span = jnp.maximum(extent[gid, 0], 1)
    tile = (tmin[gid, 1] + local // span) * tiles_x + tmin[gid, 0] + local % span
    tile = jnp.where(slot < total, tile, n_tiles)  # unused slots sort last, into no tile

    perm = jnp.argsort(tile, stable=True)
    tile, gid = tile[perm], gid[perm]
    count = jnp.bincount(tile, length=n_tiles + 1)[:n_tiles].astype(jnp.int32)
    first = jnp.cumsum(count) - count
    k = jnp.arange(capacity, dtype=jnp.int32)
    mask = k[None, :] < count[:, None]
    ids = jnp.where(mask, gid[jnp.minimum(first[:, None] + k[None, :], buffer - 1)], 0)
    kept = jnp.sum(jnp.minimum(count, capacity))
    overflow = (total - kept).astype(jnp.int32)
    return TileBins(ids.astype(jnp.int32), mask, count, overflow, per_gaussian.astype(jnp.int32))

"""Compositing one tile's depth-sorted Gaussians in chunks, stopping early (the tiled path's inner loop).

Same equations as `composite.composite` (see there), evaluated `chunk` Gaussians at a time in a while loop
that ends once every pixel of the tile is saturated (transmittance cut-off) or the tile's Gaussians are
used up, so the cost follows the Gaussians actually drawn rather than the tile capacity. The backward pass
(hand-written, as in gsplat) walks the same chunks back to front, recovering each chunk's transmittance
from the final one in log space; it keeps only the inputs, the final log-transmittance and, per pixel,
the index where compositing stopped.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from arthoi_jax.render.composite import _LOG_T_STOP, alphas


def _slice(x, start, size):
    return jax.lax.dynamic_slice_in_dim(x, start, size, axis=0)


def _n_chunks(opacities, chunk):
    """Chunks up to the last slot in use (slots past a tile's count have opacity 0)."""
    k = opacities.shape[0]
    used = jnp.max(jnp.where(opacities > 0, jnp.arange(1, k + 1), 0))
    return (used + chunk - 1) // chunk


def _forward(pixels, means2d, conics, opacities, colors, depths, max_alpha, chunk):
    P, K, C = pixels.shape[0], means2d.shape[0], colors.shape[1]
    dtype = means2d.dtype
    n_chunks = _n_chunks(opacities, chunk)

    def cond(state):
        c, _, _, _, done, _ = state
        return (c < n_chunks) & ~jnp.all(done)

    def body(state):
        c, log_t, color, depth, done, stop = state
        s = c * chunk
        _, _, _, _, alpha = alphas(pixels, _slice(means2d, s, chunk), _slice(conics, s, chunk),
                                    _slice(opacities, s, chunk), max_alpha)
        log_1ma = jnp.log1p(-alpha)
        cs = log_t[:, None] + jnp.cumsum(log_1ma, axis=1)
        alive = ~done[:, None] & (cs > _LOG_T_STOP)
        weights = jnp.where(alive, alpha * jnp.exp(cs - log_1ma), 0.0)
        newly_done = ~done & (cs[:, -1] <= _LOG_T_STOP)
        stop = jnp.where(newly_done, s + jnp.sum(alive, axis=1, dtype=jnp.int32), stop)
        log_t = log_t + jnp.sum(jnp.where(alive, log_1ma, 0.0), axis=1)
        color = color + weights @ _slice(colors, s, chunk)
        depth = depth + weights @ _slice(depths, s, chunk)
        return c + 1, log_t, color, depth, done | newly_done, stop

    init = (jnp.int32(0), jnp.zeros((P,), dtype), jnp.zeros((P, C), dtype), jnp.zeros((P,), dtype),
            jnp.zeros((P,), bool), jnp.full((P,), K, jnp.int32))
    _, log_t, color, depth, _, stop = jax.lax.while_loop(cond, body, init)
    return color, log_t, depth, stop


@partial(jax.custom_vjp, nondiff_argnums=(6, 7))
def composite_tile(pixels, means2d, conics, opacities, colors, depths, max_alpha: float, chunk: int):
    """Composites one tile. pixels: [P, 2]; means2d [K, 2], conics [K, 3], opacities [K] (0 = empty slot),
    colors [K, C], depths [K] front to back, K a multiple of `chunk`.
    Returns (colour [P, C] without background, transmittance [P], sum w_i z_i [P]); gradients for all
    inputs but `pixels`."""
    color, log_t, depth, _ = _forward(pixels, means2d, conics, opacities, colors, depths, max_alpha, chunk)
    return color, jnp.exp(log_t), depth


def _fwd(pixels, means2d, conics, opacities, colors, depths, max_alpha, chunk):
    color, log_t, depth, stop = _forward(pixels, means2d, conics, opacities, colors, depths, max_alpha, chunk)
    return (color, jnp.exp(log_t), depth), (pixels, means2d, conics, opacities, colors, depths, log_t, stop)


def _bwd(max_alpha, chunk, residuals, cotangents):
    pixels, means2d, conics, opacities, colors, depths, log_t_final, stop = residuals
    g_color, g_trans, g_depth = cotangents
    # Last chunk holding a Gaussian that some pixel composited.
    n_chunks = jnp.minimum(_n_chunks(opacities, chunk), (jnp.max(stop) + chunk - 1) // chunk)
    g_final = (g_trans * jnp.exp(log_t_final))[:, None]

    def cond(state):
        return state[0] >= 0

    def body(state):
        c, log_t_end, suffix, grads = state
        s = c * chunk
        m, con, op = _slice(means2d, s, chunk), _slice(conics, s, chunk), _slice(opacities, s, chunk)
        col, dep = _slice(colors, s, chunk), _slice(depths, s, chunk)
        dx, dy, gauss, raw, alpha = alphas(pixels, m, con, op, max_alpha)
        alive = (s + jnp.arange(chunk))[None, :] < stop[:, None]
        log_1ma = jnp.where(alive, jnp.log1p(-alpha), 0.0)
        cs = jnp.cumsum(log_1ma, axis=1)
        log_t_start = log_t_end - cs[:, -1]
        t_excl = jnp.exp(log_t_start[:, None] + cs - log_1ma)
        weights = jnp.where(alive, alpha * t_excl, 0.0)
        v = g_color @ col.T + g_depth[:, None] * dep[None, :]
        wv = weights * v
        total = jnp.sum(wv, axis=1)
        after = suffix[:, None] + total[:, None] - jnp.cumsum(wv, axis=1)
        g_alpha = t_excl * v - (after + g_final) / (1.0 - alpha)
        g_raw = jnp.where(alive & (alpha > 0) & (raw < max_alpha), g_alpha, 0.0)
        g_sigma = -g_raw * raw
        a, b, cc = con[:, 0], con[:, 1], con[:, 2]
        chunk_grads = (
            jnp.stack([jnp.sum(g_sigma * (a * dx + b * dy), 0), jnp.sum(g_sigma * (b * dx + cc * dy), 0)], -1),
            jnp.stack([jnp.sum(g_sigma * 0.5 * dx * dx, 0), jnp.sum(g_sigma * dx * dy, 0),
                       jnp.sum(g_sigma * 0.5 * dy * dy, 0)], -1),
            jnp.sum(g_raw * gauss, 0),
            weights.T @ g_color,
            weights.T @ g_depth,
        )
        grads = tuple(jax.lax.dynamic_update_slice_in_dim(g, cg, s, axis=0) for g, cg in zip(grads, chunk_grads))
        return c - 1, log_t_start, suffix + total, grads

    zeros = tuple(jnp.zeros_like(x) for x in (means2d, conics, opacities, colors, depths))
    init = (n_chunks - 1, log_t_final, jnp.zeros_like(log_t_final), zeros)
    *_, grads = jax.lax.while_loop(cond, body, init)
    return (jnp.zeros_like(pixels),) + grads


composite_tile.defvjp(_fwd, _bwd)

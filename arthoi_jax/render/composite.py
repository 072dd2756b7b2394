"""Front-to-back alpha compositing of depth-sorted 2D Gaussians at pixel centres (3DGS / gsplat semantics).

For pixel p and Gaussians i = 1..K in front-to-back order:
  sigma_i = 0.5 (a dx^2 + c dy^2) + b dx dy, (dx, dy) = mean2d_i - p
  alpha_i = min(max_alpha, opacity_i exp(-sigma_i)); skipped (alpha_i := 0) when sigma_i < 0 or alpha_i < 1/255
  T_i = prod_{j<i} (1 - alpha_j); compositing stops before the first i with T_i (1 - alpha_i) <= 1e-4
  w_i = alpha_i T_i for the Gaussians before the stop; colour = sum w_i c_i + T_final bg; depth = sum w_i z_i.
Transmittance is accumulated in log space (a cumulative sum of log(1 - alpha), alpha <= max_alpha < 1), which
is exact up to rounding and has a well-defined gradient everywhere.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp

ALPHA_THRESHOLD = 1.0 / 255.0
TRANSMITTANCE_STOP = 1e-4
_LOG_T_STOP = math.log(TRANSMITTANCE_STOP)


@partial(jax.custom_vjp, nondiff_argnums=(6,))
def composite(pixels, means2d, conics, opacities, colors, depths, max_alpha: float):
    """Composites K sorted Gaussians over P pixels.

    pixels: [P, 2] (x, y) pixel centres; means2d: [K, 2]; conics: [K, 3]; opacities: [K] (0 = absent);
    colors: [K, C]; depths: [K] metres; all Gaussians in front-to-back order.
    Returns (colour [P, C] without background, transmittance T_final [P], expected depth sum w_i z_i [P]).
    Differentiable w.r.t. all but `pixels` through a hand-written backward (the 3DGS one) that recomputes
    the forward from the inputs, so only the inputs are kept for the backward pass.
    """
    out, _ = _forward(pixels, means2d, conics, opacities, colors, depths, max_alpha)
    return out


def alphas(pixels, means2d, conics, opacities, max_alpha):
    """[P, 2] x [k, ...] -> dx, dy, gauss, raw = opacity * gauss, alpha (0 where skipped), all [P, k]."""
    dx = means2d[None, :, 0] - pixels[:, None, 0]
    dy = means2d[None, :, 1] - pixels[:, None, 1]
    sigma = 0.5 * (conics[:, 0] * dx * dx + conics[:, 2] * dy * dy) + conics[:, 1] * dx * dy
    in_front = sigma >= 0
    gauss = jnp.exp(-jnp.where(in_front, sigma, 0.0))
    raw = opacities * gauss
    alpha = jnp.minimum(max_alpha, raw)
    alpha = jnp.where(in_front & (alpha >= ALPHA_THRESHOLD), alpha, 0.0)
    return dx, dy, gauss, raw, alpha


def _forward(pixels, means2d, conics, opacities, colors, depths, max_alpha):
    dx, dy, gauss, raw, alpha = alphas(pixels, means2d, conics, opacities, max_alpha)
    log_1ma = jnp.log1p(-alpha)
    log_t_incl = jnp.cumsum(log_1ma, axis=1)
    alive = log_t_incl > _LOG_T_STOP  # a prefix of each row: transmittance only decreases
    t_excl = jnp.exp(log_t_incl - log_1ma)
    weights = jnp.where(alive, alpha * t_excl, 0.0)
    transmittance = jnp.exp(jnp.sum(jnp.where(alive, log_1ma, 0.0), axis=1))
    out = (weights @ colors, transmittance, weights @ depths)
    return out, (dx, dy, gauss, raw, alpha, alive, t_excl, weights, transmittance)


def _composite_fwd(pixels, means2d, conics, opacities, colors, depths, max_alpha):
    out, _ = _forward(pixels, means2d, conics, opacities, colors, depths, max_alpha)
    return out, (pixels, means2d, conics, opacities, colors, depths)


def _composite_bwd(max_alpha, inputs, cotangents):
    pixels, means2d, conics, opacities, colors, depths = inputs
    g_color, g_trans, g_depth = cotangents
    _, (dx, dy, gauss, raw, alpha, alive, t_excl, weights, trans) = _forward(*inputs, max_alpha)
    # dL/dw_i = v_i; w_i = alpha_i T_i and T_j (j > i), T_final all carry a factor (1 - alpha_i).
    v = g_color @ colors.T + g_depth[:, None] * depths[None, :]
    wv = weights * v
    suffix = jnp.sum(wv, axis=1, keepdims=True) - jnp.cumsum(wv, axis=1)
    g_alpha = t_excl * v - (suffix + (g_trans * trans)[:, None]) / (1.0 - alpha)
    # alpha = opacity exp(-sigma) where drawn and not clamped at max_alpha; no gradient elsewhere (gsplat).
    g_raw = jnp.where(alive & (alpha > 0) & (raw < max_alpha), g_alpha, 0.0)
    g_sigma = -g_raw * raw
    g_opacities = jnp.sum(g_raw * gauss, 0)
    a, b, c = conics[:, 0], conics[:, 1], conics[:, 2]
    g_means2d = jnp.stack([jnp.sum(g_sigma * (a * dx + b * dy), 0), jnp.sum(g_sigma * (b * dx + c * dy), 0)], -1)
    g_conics = jnp.stack(
        [jnp.sum(g_sigma * 0.5 * dx * dx, 0), jnp.sum(g_sigma * dx * dy, 0), jnp.sum(g_sigma * 0.5 * dy * dy, 0)], -1
    )
    return (jnp.zeros_like(pixels), g_means2d, g_conics, g_opacities, weights.T @ g_color, weights.T @ g_depth)


composite.defvjp(_composite_fwd, _composite_bwd)


def chunked_map(f, xs, chunk: int):
    """lax.map of `f` over chunks of `chunk` rows of every array in pytree `xs`.

    Rows are padded to a multiple of `chunk` by repeating row 0 (so padding is finite) and cut off again.
    With `composite` (which keeps only its inputs for the backward) peak memory is that of one chunk.
    """
    n = jax.tree.leaves(xs)[0].shape[0]
    chunk = max(1, min(chunk, n))
    n_chunks = -(-n // chunk)
    pad = n_chunks * chunk - n

    def split(x):
        if pad:
            x = jnp.concatenate([x, jnp.broadcast_to(x[:1], (pad,) + x.shape[1:])], axis=0)
        return x.reshape((n_chunks, chunk) + x.shape[1:])

    out = jax.lax.map(f, jax.tree.map(split, xs))
    return jax.tree.map(lambda y: y.reshape((n_chunks * chunk,) + y.shape[2:])[:n], out)

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

import jax
import jax.numpy as jnp

ALPHA_THRESHOLD = 1.0 / 255.0
TRANSMITTANCE_STOP = 1e-4
_LOG_T_STOP = math.log(TRANSMITTANCE_STOP)


def composite(pixels, means2d, conics, opacities, colors, depths, max_alpha: float):
    """Composites K sorted Gaussians over P pixels.

    pixels: [P, 2] (x, y) pixel centres; means2d: [K, 2]; conics: [K, 3]; opacities: [K] (0 = absent);
    colors: [K, C]; depths: [K] metres; all Gaussians in front-to-back order.
    Returns (colour [P, C] without background, transmittance T_final [P], expected depth sum w_i z_i [P]).
    """
    d = means2d[None, :, :] - pixels[:, None, :]
    dx, dy = d[..., 0], d[..., 1]
    sigma = 0.5 * (conics[:, 0] * dx * dx + conics[:, 2] * dy * dy) + conics[:, 1] * dx * dy
    in_front = sigma >= 0
    alpha = jnp.minimum(max_alpha, opacities * jnp.exp(-jnp.where(in_front, sigma, 0.0)))
    alpha = jnp.where(in_front & (alpha >= ALPHA_THRESHOLD), alpha, 0.0)
    log_1ma = jnp.log1p(-alpha)
    log_t_incl = jnp.cumsum(log_1ma, axis=1)
    alive = log_t_incl > _LOG_T_STOP  # a prefix of each row: transmittance only decreases
    weights = jnp.where(alive, alpha * jnp.exp(log_t_incl - log_1ma), 0.0)
    transmittance = jnp.exp(jnp.sum(jnp.where(alive, log_1ma, 0.0), axis=1))
    return weights @ colors, transmittance, weights @ depths


def chunked_map(f, xs, chunk: int):
    """lax.map of `f` over chunks of `chunk` rows of every array in pytree `xs`, rematerialised in the backward.

    Rows are padded to a multiple of `chunk` by repeating row 0 (so padding is finite) and cut off again.
    Peak memory is that of one chunk in the forward and in the backward pass.
    """
    n = jax.tree.leaves(xs)[0].shape[0]
    chunk = max(1, min(chunk, n))
    n_chunks = -(-n // chunk)
    pad = n_chunks * chunk - n

    def split(x):
        if pad:
            x = jnp.concatenate([x, jnp.broadcast_to(x[:1], (pad,) + x.shape[1:])], axis=0)
        return x.reshape((n_chunks, chunk) + x.shape[1:])

    out = jax.lax.map(jax.checkpoint(f), jax.tree.map(split, xs))
    return jax.tree.map(lambda y: y.reshape((n_chunks * chunk,) + y.shape[2:])[:n], out)

"""Oriented boxes (an object's solids): corners -> frames (numpy) and a differentiable signed distance (JAX).

A box is given by corner 0 and its three neighbours [..., 4, 3] (synthetic.objects, interaction_metrics) or as
centre [..., 3], unit axes [..., 3, 3] (rows) and half extents [..., 3] metres (the IK clearance, Stage II's
solid parts).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def box_frames(boxes: np.ndarray):
    """[..., 4, 3] corners -> origin (corner 0) [..., 3], unit axes [..., 3, 3] (rows), half extents [..., 3]."""
    v0 = boxes[..., 0, :]
    edges = boxes[..., 1:, :] - v0[..., None, :]
    length = np.linalg.norm(edges, axis=-1)
    return v0, edges / length[..., None], length / 2


def box_sdf(points: jnp.ndarray, centre: jnp.ndarray, axes: jnp.ndarray, half: jnp.ndarray) -> jnp.ndarray:
    """Signed distance (m, < 0 inside) of points [K, 3] to the union of boxes (centre [B, 3], axes [B, 3, 3],
    half [B, 3]) -> [K]; differentiable everywhere: the outside norm is smoothed (sqrt(s + e) - sqrt(e), e = 1e-12
    m^2), which leaves it exactly 0 inside, so depths inside are exact."""
    q = jnp.einsum("bkj,nbj->nbk", axes, points[:, None] - centre[None])
    d = jnp.abs(q) - half[None]
    outside = jnp.sqrt(jnp.sum(jnp.maximum(d, 0.0) ** 2, -1) + 1e-12) - 1e-6
    return jnp.min(outside + jnp.minimum(d.max(-1), 0.0), axis=-1)

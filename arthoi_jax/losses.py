"""Stage I losses (paper Eq. 6-8 and the smoothness term), pure JAX functions of arrays.

Units are chosen so the paper's weights (lambda_r 1, lambda_tr 2, lambda_a 0.05, lambda_s 1) combine terms of
similar size: colours in [0, 1], reprojection errors in pixels, binding distances in units of the binding
radius, pose velocities in the se(3) tangent (metres, radians). Every term is a mean, so its size does not
depend on the number of pixels, tracks or pairs; an empty set (no valid entry) gives 0 with zero gradient.
"""

from __future__ import annotations

import jax.numpy as jnp
import jaxlie


def _masked_mean(x: jnp.ndarray, w: jnp.ndarray) -> jnp.ndarray:
    w = w.astype(x.dtype)
    return jnp.sum(x * w) / jnp.maximum(jnp.sum(w), 1.0)


def reconstruction_loss(rgb: jnp.ndarray, alpha: jnp.ndarray, image: jnp.ndarray, mask: jnp.ndarray,
                        beta: float) -> tuple[jnp.ndarray, jnp.ndarray]:
    """L_r^o (Eq. 6) -> (rgb term, silhouette term), the total being rgb + beta * silhouette.

    rgb: [H, W, 3] rendered object (over a black background); alpha: [H, W] rendered silhouette;
    image: [H, W, 3] frame in [0, 1]; mask: [H, W] object mask M^o(t) in [0, 1].
    The colour term is the squared error per pixel averaged over the object mask (outside it the frame shows
    what the object Gaussians do not model); the silhouette term is the mean squared error over all pixels.
    """
    rgb_term = _masked_mean(jnp.sum((rgb - image) ** 2, -1), mask)
    sil_term = jnp.mean((alpha - mask) ** 2)
    return rgb_term, beta * sil_term


def tracking_loss(points_cam: jnp.ndarray, K: jnp.ndarray, tracks: jnp.ndarray, weight: jnp.ndarray,
                  robust_px: float = 0.0) -> jnp.ndarray:
    """L_tr (Eq. 8): mean squared reprojection error in pixels^2 over weighted tracks.

    points_cam: [M, 3] the tracks' 3D points moved to frame t, camera frame; K: [3, 3]; tracks: [M, 2] pixel
    positions at frame t; weight: [M] (visible and on a moving part: 1, else 0). Points behind the camera
    (z <= 1 cm) contribute nothing. robust_px > 0: soft-L1 of scale s, 2 s^2 (sqrt(1 + r^2 / s^2) - 1) per track
    (r^2 for r << s, linear beyond: a drifting track pulls with a bounded force).
    """
    z = points_cam[..., 2]
    front = z > 1e-2
    w = weight * front
    z_safe = jnp.where(front, z, 1.0)  # double where: no inf/NaN gradient through a masked entry
    uv = points_cam[..., :2] / z_safe[..., None] * jnp.stack([K[0, 0], K[1, 1]]) + K[:2, 2]
    sq = jnp.sum((uv - tracks) ** 2, -1)
    if robust_px > 0:
        sq = 2.0 * robust_px**2 * (jnp.sqrt(1.0 + sq / robust_px**2) - 1.0)
    return _masked_mean(sq, w)


def _safe_norm(x: jnp.ndarray) -> jnp.ndarray:
    sq = jnp.sum(x**2, -1)
    pos = sq > 1e-20
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


def articulation_loss(means_t: jnp.ndarray, means_0: jnp.ndarray, pairs: jnp.ndarray, pair_valid: jnp.ndarray,
                      radius: float) -> jnp.ndarray:
    """L_a (Eq. 7): mean over binding pairs of the squared change of their distance, in units of `radius`.

    means_t, means_0: [N, 3] metres at frame t and 0; pairs: [E, 2] int indices; pair_valid: [E] bool.
    """
    d_t = _safe_norm(means_t[pairs[:, 0]] - means_t[pairs[:, 1]])
    d_0 = _safe_norm(means_0[pairs[:, 0]] - means_0[pairs[:, 1]])
    return _masked_mean(((d_t - d_0) / radius) ** 2, pair_valid)


def smoothness_loss(pose_t: jaxlie.SE3, pose_prev: jaxlie.SE3, pose_prev2: jaxlie.SE3,
                    valid: jnp.ndarray) -> jnp.ndarray:
    """L_s: constant-velocity prior, the squared change of the body-frame velocity
    |log(T_{t-1}^-1 T_t) - log(T_{t-2}^-1 T_{t-1})|^2 (tangent: metres and radians), mean over parts.

    pose_*: SE3 with batch [P]; valid: [] bool, False when frame t-2 does not exist (t < 2).
    """
    v_t = (pose_prev.inverse() @ pose_t).log()
    v_prev = (pose_prev2.inverse() @ pose_prev).log()
    return jnp.where(valid, jnp.mean(jnp.sum((v_t - v_prev) ** 2, -1)), 0.0)

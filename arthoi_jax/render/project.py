"""EWA projection of 3D Gaussians to the image plane (gsplat 1.5.3 `_fully_fused_projection`, pinhole).

A Gaussian is culled (radii 0, zero opacity, zero gradient) when it is marked invalid, when any of its
parameters is not finite, when its quaternion is zero, when its camera depth is outside (near, far), when
its projected covariance is not finite or not positive definite, or when its 3.33-sigma box misses the
image. Culling uses the "double where" pattern: culled Gaussians are recomputed from safe stand-in values,
so neither branch of any `where` produces inf/NaN and culled Gaussians get exactly zero gradient.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from arthoi_jax.config import RenderConfig
from arthoi_jax.render.types import Camera, Gaussians

# gsplat's box half-width in standard deviations (not opacity-aware, as in its torch `_fully_fused_projection`).
RADIUS_SIGMAS = 3.33
# The EWA Jacobian is evaluated with x/z, y/z clamped to the field of view widened by this fraction (gsplat).
FOV_CLAMP_MARGIN = 0.3
# Radii are clipped here before the int32 cast so huge Gaussians cannot overflow it (2^30 px is "everywhere").
MAX_RADIUS_PX = float(2**30)


class Projection(NamedTuple):
    """Per-Gaussian screen-space quantities (leading shape [N]).

    means2d:   [N, 2] pixels (x, y), continuous coordinates; 0 when culled for depth or numerical reasons.
    conics:    [N, 3] (a, b, c) of the inverse blurred 2D covariance [[a, b], [b, c]], 1/pixels^2.
    depths:    [N] camera-frame z, metres (0 when an input is not finite).
    radii:     [N, 2] int32 box half-sizes (x, y) = ceil(3.33 sigma), pixels; 0 when culled.
    opacities: [N] sigmoid(opacity_logits); 0 when culled, so culled Gaussians never composite.
    colors:    [N, C] input colours; 0 where not finite or culled.
    """

    means2d: jnp.ndarray
    conics: jnp.ndarray
    depths: jnp.ndarray
    radii: jnp.ndarray
    opacities: jnp.ndarray
    colors: jnp.ndarray


def quat_to_rotmat(quats: jnp.ndarray) -> jnp.ndarray:
    """[..., 4] wxyz quaternions (any non-zero norm) -> [..., 3, 3] rotation matrices."""
    q = quats / jnp.sqrt(jnp.sum(quats * quats, axis=-1, keepdims=True))
    w, x, y, z = jnp.moveaxis(q, -1, 0)
    R = jnp.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )  # fmt: skip
    return R.reshape(quats.shape[:-1] + (3, 3))


def covariance_3d(quats: jnp.ndarray, scales: jnp.ndarray) -> jnp.ndarray:
    """Sigma = R S S^T R^T. quats: [..., 4] wxyz; scales: [..., 3] metres -> [..., 3, 3] metres^2."""
    M = quat_to_rotmat(quats) * scales[..., None, :]
    return M @ jnp.swapaxes(M, -1, -2)


def _ewa(means_c, quats, log_scales, R, K, width, height, eps2d):
    """Camera-frame means [N,3] -> (means2d [N,2], blurred cov2d [N,2,2], det [N]). Needs z > 0."""
    cov_c = R @ covariance_3d(quats, jnp.exp(log_scales)) @ R.T
    tx, ty, tz = means_c[:, 0], means_c[:, 1], means_c[:, 2]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos = (width - cx) / fx + FOV_CLAMP_MARGIN * tan_fovx
    lim_x_neg = cx / fx + FOV_CLAMP_MARGIN * tan_fovx
    lim_y_pos = (height - cy) / fy + FOV_CLAMP_MARGIN * tan_fovy
    lim_y_neg = cy / fy + FOV_CLAMP_MARGIN * tan_fovy
    txc = tz * jnp.clip(tx / tz, -lim_x_neg, lim_x_pos)
    tyc = tz * jnp.clip(ty / tz, -lim_y_neg, lim_y_pos)
    zero = jnp.zeros_like(tz)
    J = jnp.stack(
        [fx / tz, zero, -fx * txc / tz**2, zero, fy / tz, -fy * tyc / tz**2], axis=-1
    ).reshape(-1, 2, 3)
    cov2d = J @ cov_c @ jnp.swapaxes(J, -1, -2) + eps2d * jnp.eye(2, dtype=means_c.dtype)
    means2d = (means_c @ K[:2, :3].T) / tz[:, None]
    det = cov2d[:, 0, 0] * cov2d[:, 1, 1] - cov2d[:, 0, 1] * cov2d[:, 1, 0]
    return means2d, cov2d, det


@partial(jax.jit, static_argnames="cfg")
def project_gaussians(
    gaussians: Gaussians, camera: Camera, cfg: RenderConfig, valid: jnp.ndarray | None = None
) -> Projection:
    """Projects N Gaussians (world frame) through `camera`; see `Projection` for outputs and units.

    Differentiable w.r.t. every Gaussian parameter, `camera.K` and `camera.T_cam_world`. `valid`: [N] bool
    (False = padding, treated as culled). Uses cfg.near, cfg.far (metres) and cfg.eps2d (pixels^2). Matches gsplat 1.5.3's `_fully_fused_projection` (pinhole,
    calc_compensations=False) on every Gaussian it keeps; culled Gaussians differ only in being zeroed.
    """
    g = gaussians
    n = g.means.shape[0]
    dtype = g.means.dtype
    width, height = camera.width, camera.height
    near, far, eps2d = cfg.near, cfg.far, cfg.eps2d
    R, t = camera.T_cam_world[:3, :3], camera.T_cam_world[:3, 3]
    ok = jnp.ones((n,), bool) if valid is None else valid.astype(bool)
    for x in (g.means, g.quats, g.log_scales, g.colors):
        ok &= jnp.all(jnp.isfinite(x), axis=-1)
    ok &= jnp.isfinite(g.opacity_logits) & (jnp.sum(g.quats * g.quats, axis=-1) > 0)

    unit_quat = jnp.array([1.0, 0.0, 0.0, 0.0], dtype)
    front = jnp.array([0.0, 0.0, 1.0], dtype)

    def safe_inputs(keep):
        means = jnp.where(keep[:, None], g.means, 0.0)
        means_c = means @ R.T + t
        means_c = jnp.where(keep[:, None], means_c, front)
        quats = jnp.where(keep[:, None], g.quats, unit_quat)
        log_scales = jnp.where(keep[:, None], g.log_scales, 0.0)
        return means_c, quats, log_scales

    # Pass 1 (no gradient): which Gaussians project to finite, positive-definite 2D covariances.
    means_c, quats, log_scales = jax.lax.stop_gradient(safe_inputs(ok))
    z = means_c[:, 2]
    in_depth = ok & (z > near) & (z < far)
    m2, c2, det = _ewa(jnp.where(in_depth[:, None], means_c, front), quats, log_scales, jax.lax.stop_gradient(R),
                       jax.lax.stop_gradient(camera.K), width, height, eps2d)
    good = in_depth & (det > 0) & jnp.isfinite(det) & jnp.all(jnp.isfinite(c2), axis=(-1, -2))
    good &= jnp.all(jnp.isfinite(m2), axis=-1)

    # Pass 2: the differentiable projection, from safe stand-ins wherever pass 1 culled.
    means_c, quats, log_scales = safe_inputs(good)
    means2d, cov2d, det = _ewa(means_c, quats, log_scales, R, camera.K, width, height, eps2d)
    det = jnp.where(good, det, 1.0)
    conics = jnp.stack([cov2d[:, 1, 1], -0.5 * (cov2d[:, 0, 1] + cov2d[:, 1, 0]), cov2d[:, 0, 0]], -1) / det[:, None]
    radii = jnp.ceil(RADIUS_SIGMAS * jnp.sqrt(jnp.stack([cov2d[:, 0, 0], cov2d[:, 1, 1]], -1)))
    radii = jax.lax.stop_gradient(jnp.minimum(radii, MAX_RADIUS_PX))
    m = jax.lax.stop_gradient(means2d)
    inside = (
        (m[:, 0] + radii[:, 0] > 0) & (m[:, 0] - radii[:, 0] < width)
        & (m[:, 1] + radii[:, 1] > 0) & (m[:, 1] - radii[:, 1] < height)
    )  # fmt: skip
    visible = good & inside
    radii = jnp.where(visible[:, None], radii, 0.0).astype(jnp.int32)

    depths = jnp.where(ok, (jnp.where(ok[:, None], g.means, 0.0) @ R.T + t)[:, 2], 0.0)
    means2d = jnp.where(good[:, None], means2d, 0.0)
    conics = jnp.where(good[:, None], conics, 0.0)
    opacities = jnp.where(visible, jax.nn.sigmoid(jnp.where(ok, g.opacity_logits, 0.0)), 0.0)
    colors = jnp.where(visible[:, None], jnp.where(ok[:, None], g.colors, 0.0), 0.0)
    return Projection(means2d, conics, depths, radii, opacities, colors)

"""Camera conventions, written once.

* OpenCV camera frame: +x right, +y down, +z forward (points in front of the camera have z > 0).
* Extrinsics are world-to-camera: p_cam = T_cam_world @ p_world (4x4, homogeneous).
* Intrinsics K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels. Image coordinates are continuous: pixel
  (row i, column j) covers [j, j+1) x [i, i+1), its centre is (j + 0.5, i + 0.5) (gsplat's convention).
  OpenCV routines put pixel centres at integers: convert with `+ 0.5` / `- 0.5` at that boundary only.
* OpenGL (x right, y up, z backward) is reached only through `opencv_to_opengl`.

Functions work on numpy or jax arrays alike (they use the array's own namespace via jnp, which accepts both).
"""

from __future__ import annotations

import jax.numpy as jnp

# Right-multiplying a camera-from-world matrix's rows by this flips between OpenCV and OpenGL camera axes.
OPENCV_TO_OPENGL = jnp.diag(jnp.array([1.0, -1.0, -1.0, 1.0]))


def transform_points(T: jnp.ndarray, points: jnp.ndarray) -> jnp.ndarray:
    """Applies rigid transforms. T: [..., 4, 4]; points: [..., 3] -> [..., 3]."""
    return jnp.einsum("...ij,...j->...i", T[..., :3, :3], points) + T[..., :3, 3]


def project(points_cam: jnp.ndarray, K: jnp.ndarray) -> jnp.ndarray:
    """Pinhole projection. points_cam: [..., 3] metres, camera frame; K: [3, 3] -> [..., 2] pixels (x, y).

    Points at z <= 0 give meaningless pixels: mask them by depth first.
    """
    z = points_cam[..., 2:3]
    xy = points_cam[..., :2] / z
    return xy * jnp.stack([K[0, 0], K[1, 1]]) + jnp.stack([K[0, 2], K[1, 2]])


def backproject(uv: jnp.ndarray, depth: jnp.ndarray, K: jnp.ndarray) -> jnp.ndarray:
    """Inverse of `project`. uv: [..., 2] pixels; depth: [...] metres along z -> [..., 3] camera frame."""
    x = (uv[..., 0] - K[0, 2]) / K[0, 0]
    y = (uv[..., 1] - K[1, 2]) / K[1, 1]
    return jnp.stack([x * depth, y * depth, depth], axis=-1)


def pixel_centers(height: int, width: int) -> jnp.ndarray:
    """[H, W, 2] (x, y) coordinates of every pixel centre."""
    ys, xs = jnp.meshgrid(jnp.arange(height) + 0.5, jnp.arange(width) + 0.5, indexing="ij")
    return jnp.stack([xs, ys], axis=-1)


def intrinsics_from_fov(width: int, height: int, fov_x_deg: float) -> jnp.ndarray:
    """K [3, 3] for a centred principal point and square pixels with horizontal field of view `fov_x_deg`."""
    f = 0.5 * width / jnp.tan(jnp.deg2rad(fov_x_deg) / 2)
    return jnp.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])


def scale_intrinsics(K: jnp.ndarray, sx: float, sy: float) -> jnp.ndarray:
    """K of an image resized by (sx, sy): pixel edges scale, so cx -> sx * cx with continuous coordinates."""
    return jnp.diag(jnp.array([sx, sy, 1.0])) @ K


def opencv_to_opengl(T_cam_world: jnp.ndarray) -> jnp.ndarray:
    """World-to-camera in OpenCV axes -> world-to-camera in OpenGL axes (x right, y up, z backward)."""
    return OPENCV_TO_OPENGL @ T_cam_world

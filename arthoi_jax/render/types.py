"""Pytrees the rasterizer takes and returns."""

from __future__ import annotations

import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Gaussians:
    """N 3D Gaussians. Shapes may carry leading batch axes (vmap)."""

    means: jnp.ndarray  # [N, 3] metres, world frame
    quats: jnp.ndarray  # [N, 4] wxyz, need not be normalized
    log_scales: jnp.ndarray  # [N, 3] log of metres
    opacity_logits: jnp.ndarray  # [N] pre-sigmoid
    colors: jnp.ndarray  # [N, 3] RGB in [0, 1]


@struct.dataclass
class Camera:
    """A pinhole camera (OpenCV axes, see arthoi_jax.geometry.camera)."""

    K: jnp.ndarray  # [3, 3] pixels
    T_cam_world: jnp.ndarray  # [4, 4] world-to-camera
    width: int = struct.field(pytree_node=False, default=0)
    height: int = struct.field(pytree_node=False, default=0)


@struct.dataclass
class RenderOutput:
    """What `arthoi_jax.render.rasterize.render` returns (see its docstring for the compositing equations)."""

    rgb: jnp.ndarray  # [H, W, 3] composited colour over the background
    alpha: jnp.ndarray  # [H, W] accumulated opacity (the silhouette)
    depth: jnp.ndarray  # [H, W] expected depth (alpha-weighted z, metres; divide by alpha for surface depth)
    means2d: jnp.ndarray  # [N, 2] projected centres, pixels
    depths: jnp.ndarray  # [N] camera-frame z, metres
    radii: jnp.ndarray  # [N] int32 larger of the x/y box half-sizes ceil(3.33 sigma) (gsplat 1.5.3), pixels, 0 when culled
    overflow: jnp.ndarray  # [] int32 Gaussian-tile pairs dropped for lack of tile capacity (0 on the dense path)

"""The joint-optimization baseline (Table 5, "Joint Opt."): human and object part poses optimized together.

Instead of Stage I's per-frame articulation, the object's part poses start from the closed-form (PnP) initial
poses and are optimized in Stage II's single optimization together with the human (`Stage2Config.mode:
joint`), held to the video by the object's track reprojection loss below plus every human-object term, which
now move the object as well as the body. The paper's claim, that decoupling is more stable under monocular
ambiguity, is then measured by `benchmarks/interaction.py` rather than assumed.
"""

from __future__ import annotations

import jax.numpy as jnp

from arthoi_jax.stage1 import Stage1Scene

# Reprojection error is in pixels; this brings a 1 px error to the scale of the other (metric) terms.
TRACK_WEIGHT = 1.0


def tracking_loss(obj: Stage1Scene, poses: jnp.ndarray, tracks: jnp.ndarray, track_vis: jnp.ndarray,
                  K: jnp.ndarray, T_cam_world: jnp.ndarray | None = None) -> jnp.ndarray:
    """Mean squared reprojection error (px^2) of the moving parts' track points, summed over frames.

    poses [T, P, 4, 4] part poses (frame 0 -> t); tracks [T, M, 2] pixels; track_vis [T, M] bool; obj.track_points
    [M, 3] frame-0 points and obj.track_part [M] (p >= 1: moving part p; 0: not a moving-part track);
    T_cam_world [T, 4, 4] world-to-camera extrinsics (None: static camera).
    """
    all_poses = jnp.concatenate([jnp.broadcast_to(jnp.eye(4), poses.shape[:1] + (1, 4, 4)), poses], 1)
    T_pt = all_poses[:, obj.track_part]  # [T, M, 4, 4]
    x = jnp.einsum("tmij,mj->tmi", T_pt[..., :3, :3], obj.track_points) + T_pt[..., :3, 3]
    if T_cam_world is not None:
        x = jnp.einsum("tij,tmj->tmi", T_cam_world[:, :3, :3], x) + T_cam_world[:, None, :3, 3]
    z = jnp.maximum(x[..., 2:3], 1e-3)
    uv = x[..., :2] / z * jnp.stack([K[0, 0], K[1, 1]]) + jnp.stack([K[0, 2], K[1, 2]])
    w = (track_vis & (obj.track_part > 0)[None]).astype(uv.dtype)
    err = jnp.sum((uv - tracks) ** 2, -1)
    return TRACK_WEIGHT * jnp.sum(jnp.sum(w * err, 1) / jnp.maximum(jnp.sum(w, 1), 1.0))

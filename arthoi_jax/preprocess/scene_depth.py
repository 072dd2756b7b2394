"""Metric depth of frame 0 from the fitted body: a weight-free coarse default, and the metric scale of a
monocular depth model's relative output.

Geometry default (`geometry_depth`), COARSE by construction, a stand-in for a real depth map:
  * ground: the plane under the fitted feet, normal = the body's mean up axis, through the lowest heel/toe joint
    over the frames with a body, each in its own camera frame (the fit runs before the camera motion is known, so
    a moving camera blurs the plane a little). Each pixel below the horizon gets its ray's intersection;
    pixels above it (walls, sky, far background) and ground farther than `far_m` get `far_m`;
  * human: the frame-0 human mask at the body's pelvis depth (a fronto-parallel slab);
  * object: a fronto-parallel plane at, in order, the depth of a wrist that touches the object (its projection
    within `TOUCH_RADIUS_PX` of the object mask for `TOUCH_FRAMES` consecutive frames) where the touch begins; else the ground depth under the object's lowest pixel
    (objects stand on the ground); else the body's depth.
It is exact only for flat scenes standing on one plane; use it to get a metric, roughly placed scene, not shape.

Relative models (`align_to_body`): a relative inverse depth fixes depth up to one scale; the scale is the one
that puts the frame-0 human mask's median depth at the fitted body's pelvis depth.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from arthoi_jax.body.fit2d import LANDMARK_MAP, FitResult
from arthoi_jax.errors import InputError

log = logging.getLogger("arthoi_jax")

_NAMES = [m for m, _, _ in LANDMARK_MAP]
FOOT = [_NAMES.index(n) for n in ("left_heel", "right_heel", "left_foot_index", "right_foot_index")]
HIPS = [_NAMES.index(n) for n in ("left_hip", "right_hip")]
SHOULDERS = [_NAMES.index(n) for n in ("left_shoulder", "right_shoulder")]
WRISTS = [_NAMES.index(n) for n in ("left_wrist", "right_wrist")]
TOUCH_RADIUS_PX = 6  # a wrist within this distance of the object mask touches it ...
TOUCH_FRAMES = 5  # ... when it does so in this many consecutive frames


def ground_plane(joints3d: np.ndarray, found: np.ndarray) -> tuple[np.ndarray, float]:
    """Plane {x : n.x = d} under the feet. joints3d [T, 21, 3] (`LANDMARK_MAP` order, camera frames); found [T].

    Up n is the mean feet-to-shoulders direction (so n points up, away from the ground); d puts the plane
    through the lowest foot joint. Raises InputError without a found frame."""
    if not found.any():
        raise InputError("geometry depth: no frame with a fitted body; the ground plane is unknown")
    J = joints3d[found]
    up = (J[:, SHOULDERS].mean(1) - J[:, FOOT].mean(1)).mean(0)
    n = up / np.linalg.norm(up)
    return n, float((J[:, FOOT] @ n).min())


def ground_depth(K: np.ndarray, size_hw: tuple[int, int], n: np.ndarray, d: float, far_m: float) -> np.ndarray:
    """[H, W] z-depth of each pixel's ray on the plane n.x = d, `far_m` where the ray misses it or goes farther."""
    H, W = size_hw
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)  # z = 1
    denom = rays @ n
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(denom < -1e-6, d / denom, np.inf)  # the camera is above the plane: n.0 > d
    return np.where((z > 0) & (z < far_m), z, far_m).astype(np.float32)


def object_depth(fit: FitResult, object_masks: np.ndarray, ground: np.ndarray) -> tuple[float, str]:
    """Depth (metres) of the object plane and how it was found (module docstring)."""
    T, H, W = object_masks.shape
    touch = np.zeros((T, len(WRISTS)), bool)
    kernel = np.ones((2 * TOUCH_RADIUS_PX + 1,) * 2, np.uint8)
    for t in np.flatnonzero(fit.body_found):
        near = cv2.dilate(object_masks[t].astype(np.uint8), kernel)
        for i, w in enumerate(WRISTS):
            x, y = np.floor(fit.joints2d[t, w]).astype(int)
            touch[t, i] = 0 <= y < H and 0 <= x < W and near[y, x]
    for t in range(T - TOUCH_FRAMES + 1):  # a touch that lasts, not a hand passing in front
        for i, w in enumerate(WRISTS):
            if touch[t:t + TOUCH_FRAMES, i].all():
                return float(fit.joints3d[t, w, 2]), f"wrist contact at frame {t}"
    rows, cols = np.nonzero(object_masks[0])
    bottom = rows.max()
    x = int(np.median(cols[rows == bottom]))
    return float(ground[bottom, x]), "ground under the object's lowest pixel"


def geometry_depth(fit: FitResult, K: np.ndarray, object_masks: np.ndarray, human_mask0: np.ndarray,
                   far_factor: float = 4.0) -> tuple[np.ndarray, dict]:
    """Coarse metric depth of frame 0 from the fitted body (module docstring).

    Args:
      fit: the body fit (camera frames; with a moving camera frame 0's is the world's); K [3, 3];
      object_masks [T, H, W] bool; human_mask0 [H, W] bool; far_factor: background depth = this x body depth.
    Returns:
      depth [H, W] float32 metres, and a dict saying how each part was placed.
    """
    H, W = object_masks.shape[1:]
    body_z = float(np.median(fit.joints3d[fit.body_found][:, HIPS, 2]))
    far = far_factor * body_z
    n, d = ground_plane(fit.joints3d, fit.body_found)
    depth = ground_depth(K, (H, W), n, d, far)
    z_obj, how = object_depth(fit, object_masks, depth)
    depth[object_masks[0]] = z_obj
    pelvis0 = float(fit.joints3d[0, HIPS, 2].mean()) if fit.body_found[0] else body_z
    depth[human_mask0 & ~object_masks[0]] = pelvis0
    log.warning("depth: coarse geometry default (ground plane under the feet, object %.2f m from %s, body "
                "%.2f m); set preprocess.depth_model or depth_path for real geometry", z_obj, how, body_z)
    return depth, {"object_depth_m": z_obj, "object_depth_from": how, "body_depth_m": body_z,
                   "ground_normal": n.tolist(), "ground_offset_m": d}


def align_to_body(depth: np.ndarray, human_mask0: np.ndarray, fit: FitResult | None) -> tuple[np.ndarray, float]:
    """Relative depth [H, W] (any scale, 0 unknown) scaled so the frame-0 human mask's median depth is the fitted
    pelvis depth of frame 0. Returns (depth, scale); scale 1 and the input unchanged when frame 0 has no body or
    no human pixel with depth."""
    on = depth[human_mask0 & (depth > 0)]
    if fit is None or not fit.body_found[0] or on.size == 0:
        return depth, 1.0
    scale = float(fit.joints3d[0, HIPS, 2].mean()) / float(np.median(on))
    return (depth * scale).astype(np.float32), scale

"""Canonical Gaussians from frame 0: every `stride`-th masked pixel back-projected with the frame-0 depth.

Each Gaussian is isotropic, sized from its pixel footprint (sigma = half the sampling cell at its depth, so
neighbours overlap and the silhouette closes), coloured by the mean colour of its cell, nearly opaque. The same
function makes the object Gaussians (object mask) and the static background Gaussians (the rest of the image).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

from arthoi_jax.errors import InputError
from arthoi_jax.render.types import Gaussians

OPACITY = 0.99


def backproject_gaussians(image: np.ndarray, depth: np.ndarray, mask: np.ndarray, K: np.ndarray,
                          stride: int) -> tuple[Gaussians, np.ndarray]:
    """image: [H, W, 3] uint8 RGB; depth: [H, W] metres (0 = unknown); mask: [H, W] bool; K: [3, 3]; stride: pixels.

    Returns (Gaussians with N = the sampled pixels of `mask` with depth > 0, in the world = camera-0 frame;
    uv [N, 2] float32 their pixel centres). Raises InputError when no pixel qualifies.
    """
    H, W = depth.shape
    if image.shape[:2] != (H, W) or mask.shape != (H, W):
        raise InputError(f"backproject_gaussians: image {image.shape}, depth {depth.shape} and mask {mask.shape} "
                         "must share H x W")
    off = stride // 2
    rows, cols = np.mgrid[off:H:stride, off:W:stride]
    keep = mask[rows, cols] & (depth[rows, cols] > 0)
    rows, cols = rows[keep], cols[keep]
    if rows.size == 0:
        raise InputError(f"backproject_gaussians: no masked pixel with depth > 0 on the stride-{stride} grid "
                         f"(mask has {int(mask.sum())} pixels)")
    z = depth[rows, cols].astype(np.float64)
    uv = np.stack([cols + 0.5, rows + 0.5], -1)
    x = (uv[:, 0] - K[0, 2]) / K[0, 0] * z
    y = (uv[:, 1] - K[1, 2]) / K[1, 1] * z
    means = np.stack([x, y, z], -1)
    sigma = 0.5 * stride * z / np.sqrt(K[0, 0] * K[1, 1])
    cell_rgb = uniform_filter(image.astype(np.float32) / 255.0, size=(stride, stride, 1), mode="nearest")
    n = len(z)
    g = Gaussians(
        means=means.astype(np.float32),
        quats=np.tile(np.array([1.0, 0.0, 0.0, 0.0], np.float32), (n, 1)),
        log_scales=np.repeat(np.log(sigma)[:, None], 3, 1).astype(np.float32),
        opacity_logits=np.full(n, np.log(OPACITY / (1 - OPACITY)), np.float32),
        colors=cell_rgb[rows, cols].astype(np.float32),
    )
    return g, uv.astype(np.float32)


def pad_gaussians(g: Gaussians, n: int) -> tuple[Gaussians, np.ndarray]:
    """Pads to exactly n Gaussians with zeros (transparent, unit quaternion); returns (gaussians, valid [n] bool)."""
    m = g.means.shape[0]
    if m > n:
        raise InputError(f"pad_gaussians: {m} Gaussians do not fit in {n}")

    def pad(x, fill=0.0):
        x = np.asarray(x)
        out = np.full((n,) + x.shape[1:], fill, x.dtype)
        out[:m] = x
        return out

    quats = pad(g.quats)
    quats[m:, 0] = 1.0
    padded = Gaussians(means=pad(g.means), quats=quats, log_scales=pad(g.log_scales, -10.0),
                       opacity_logits=pad(g.opacity_logits, -20.0), colors=pad(g.colors))
    return padded, np.arange(n) < m

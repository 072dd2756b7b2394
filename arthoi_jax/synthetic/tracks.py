"""Ground-truth point tracks: surface points anchored to mesh faces, projected exactly, occlusion by ray casting.

A track is anchored to (face, barycentric weights) on the mesh, so it follows rigid and deforming parts alike.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from arthoi_jax.synthetic.raster import Fragments, nearest_depth

# A track is hidden when another surface lies this much closer along its ray (metres, plus a relative part).
OCCLUSION_TOL_M, OCCLUSION_TOL_REL = 1e-4, 1e-5
# Tracks are sampled this many pixels inside their part's frame-0 silhouette, so that a sub-pixel difference
# between a track and the pixel it falls in never puts it on another part.
EDGE_MARGIN_PX = 2


def sample_anchors(frags: Fragments, part_ids: np.ndarray, counts: dict[int, int], rng: np.random.Generator):
    """Picks visible surface points at the pixel centres of one frame.

    Args:
      frags: the frame's fragments (faces index the mesh the tracks will follow).
      part_ids: [H, W] uint8 part id per pixel.
      counts: part id -> number of points wanted (fewer when the part shows fewer pixels).
      rng: the only source of randomness.
    Returns:
      face [M] int64, bary [M, 3] float64, part [M] uint8; points ordered by part, then by pixel.
    """
    structure = np.ones((2 * EDGE_MARGIN_PX + 1,) * 2, bool)
    picked = []
    for pid, n in counts.items():
        inner = ndimage.binary_erosion(part_ids == pid, structure, border_value=0)
        pix = np.flatnonzero(inner)
        if n < len(pix):
            pix = np.sort(rng.choice(pix, n, replace=False))
        picked.append((pid, pix))
    pix = np.concatenate([p for _, p in picked]).astype(np.int64)
    part = np.concatenate([np.full(len(p), pid, np.uint8) for pid, p in picked])
    return frags.face.ravel()[pix], frags.bary.reshape(-1, 3)[pix], part


def project_anchors(vertices: np.ndarray, faces: np.ndarray, face: np.ndarray, bary: np.ndarray, K: np.ndarray,
                    height: int, width: int, near: float) -> tuple[np.ndarray, np.ndarray]:
    """Projects anchored points in one frame.

    Args:
      vertices: [V, 3] the frame's mesh vertices, metres, camera frame; faces: [F, 3].
      face, bary: [M], [M, 3] anchors from `sample_anchors`.
    Returns:
      xy [M, 2] float64 pixels (0 behind the camera); visible [M] bool: in the image, in front of the camera, and not occluded.
    """
    points = np.einsum("mk,mkj->mj", bary, vertices[faces[face]])
    z = points[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = points[:, :2] / z[:, None] * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])
    in_image = (z > near) & (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
    hit = nearest_depth(vertices, faces, K, np.where(in_image[:, None], xy, -1.0), height, width, near)
    visible = in_image & (hit >= z - (OCCLUSION_TOL_M + OCCLUSION_TOL_REL * z))
    return np.where((z > near)[:, None], xy, 0.0), visible

"""Weight-free masks from point prompts (the default for Eq. 2 when no SAM checkpoint is configured).

`tracks`: inside the object mask, each pixel takes the label of its nearest prompt (a Voronoi partition of the
object by the dynamic and static track points), up to a few prompt spacings away. `grabcut`: that partition seeds
OpenCV GrabCut as probable foreground/background, with small disks around the prompts as sure labels, and
GrabCut's colour models move the boundary onto image edges. Both keep only the connected pieces that hold a
positive prompt. Measured on the synthetic suite with exact tracks (dynamic-part IoU, mean over frames): grabcut
0.93-0.998, tracks 0.44-0.92; grabcut is the default.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import cKDTree

SEED_RADIUS_PX = 2
REACH, MIN_REACH_PX = 2.5, 3.0
GRABCUT_ITERS = 3


def _pixel_index(xy: np.ndarray, H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    # Continuous coordinates (centres at +0.5) -> integer row/column.
    cols = np.clip(np.floor(xy[:, 0]).astype(int), 0, W - 1)
    rows = np.clip(np.floor(xy[:, 1]).astype(int), 0, H - 1)
    return rows, cols


def voronoi_mask(object_mask: np.ndarray, positive_xy: np.ndarray, negative_xy: np.ndarray) -> np.ndarray:
    """[H, W] bool: object pixels whose nearest prompt is positive and lies within `REACH` prompt spacings
    (the median nearest-neighbour distance of the prompts): a region no track reaches, e.g. one a moving part
    uncovered after frame 0, is not claimed. xy: [K, 2] pixels (centres at +0.5)."""
    H, W = object_mask.shape
    if len(positive_xy) == 0:
        return np.zeros((H, W), bool)
    prompts = np.concatenate([positive_xy, negative_xy]).astype(np.float64)
    tree = cKDTree(prompts)
    spacing = np.median(tree.query(prompts, k=2)[0][:, 1]) if len(prompts) > 1 else 0.0
    rows, cols = np.nonzero(object_mask)
    dist, nearest = tree.query(np.stack([cols + 0.5, rows + 0.5], -1))
    out = np.zeros((H, W), bool)
    out[rows, cols] = (nearest < len(positive_xy)) & (dist <= max(REACH * spacing, MIN_REACH_PX))
    return out


def _keep_prompted(mask: np.ndarray, positive_xy: np.ndarray) -> np.ndarray:
    n, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    rows, cols = _pixel_index(positive_xy, *mask.shape)
    keep = np.zeros(n, bool)
    keep[comp[rows, cols]] = True
    keep[0] = False
    return keep[comp]


def prompt_mask(image: np.ndarray, object_mask: np.ndarray, positive_xy: np.ndarray, negative_xy: np.ndarray,
                method: str = "grabcut") -> np.ndarray:
    """The part of `object_mask` [H, W] bool that the positive prompts [K, 2] select against the negative ones
    [L, 2] (pixels, centres at +0.5), in `image` [H, W, 3] uint8 RGB. method: "grabcut" | "tracks" -> [H, W] bool."""
    positive_xy = np.asarray(positive_xy, np.float64).reshape(-1, 2)
    negative_xy = np.asarray(negative_xy, np.float64).reshape(-1, 2)
    prior = voronoi_mask(object_mask, positive_xy, negative_xy)
    if method == "tracks" or len(positive_xy) == 0 or len(negative_xy) == 0:
        # Without negative prompts GrabCut has no colour to contrast against inside the object.
        return _keep_prompted(prior, positive_xy) if len(positive_xy) else prior
    H, W = object_mask.shape
    gc = np.full((H, W), cv2.GC_BGD, np.uint8)
    gc[object_mask] = cv2.GC_PR_BGD
    gc[prior] = cv2.GC_PR_FGD
    seeds = np.zeros((H, W), np.uint8)
    for xy, label in ((negative_xy, cv2.GC_BGD), (positive_xy, cv2.GC_FGD)):
        seeds[:] = 0
        for r, c in zip(*_pixel_index(xy, H, W)):
            cv2.circle(seeds, (int(c), int(r)), SEED_RADIUS_PX, 1, -1)
        gc[(seeds > 0) & object_mask] = label
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(image[..., ::-1])
    cv2.grabCut(bgr, gc, None, bgd, fgd, GRABCUT_ITERS, cv2.GC_INIT_WITH_MASK)
    fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)) & object_mask
    return _keep_prompted(fg, positive_xy)

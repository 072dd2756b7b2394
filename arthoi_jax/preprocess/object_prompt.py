"""Weight-free frame-0 object mask from the config's prompts (a box and/or points): OpenCV GrabCut seeded by them.

Seeds: outside the box is sure background; inside it probable foreground (without a box, a disk of
`POINT_REACH` x the image size around each positive point is probable foreground, the rest probable background);
disks of `SEED_RADIUS_PX` around positive points are sure foreground, around negative points sure background.
The result keeps the connected pieces holding a positive point (with no points, the largest piece). Later
frames are carried by optical flow (`masks.carry_mask_with_flow`) or, with a checkpoint, by SAM.
"""

from __future__ import annotations

import cv2
import numpy as np

from arthoi_jax.errors import ConfigError, InputError

SEED_RADIUS_PX = 3
POINT_REACH = 0.15
GRABCUT_ITERS = 5


def _disks(shape, points: np.ndarray, radius: int) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    for x, y in points:
        cv2.circle(out, (int(np.floor(x)), int(np.floor(y))), radius, 1, -1)
    return out > 0


def grabcut_object_mask(image: np.ndarray, box: tuple[float, float, float, float] | None = None,
                        points=(),
                        negative_points=()) -> np.ndarray:
    """image [H, W, 3] uint8 RGB; box (x0, y0, x1, y1) and points [K, 2] / [L, 2] in pixels (centres at +0.5)
    -> [H, W] bool mask of the prompted object.

    Raises:
      ConfigError: no box and no positive point, a box outside the image or empty, a point outside the image.
      InputError: GrabCut leaves nothing (the prompts do not separate an object from its surroundings).
    """
    H, W = image.shape[:2]
    points = np.asarray(points, np.float64).reshape(-1, 2)
    negative_points = np.asarray(negative_points, np.float64).reshape(-1, 2)
    if box is None and len(points) == 0:
        raise ConfigError("preprocess.object_box / preprocess.object_points: the weight-free object mask "
                          "(masks: grabcut) needs a box or points on the object in frame 0, in output pixels")
    for name, pts in (("object_points", points), ("object_negative_points", negative_points)):
        out = (pts[:, 0] < 0) | (pts[:, 0] >= W) | (pts[:, 1] < 0) | (pts[:, 1] >= H)
        if out.any():
            raise ConfigError(f"preprocess.{name}: point {pts[out][0].tolist()} is outside the {W}x{H} frame "
                              f"(prompts are in output pixels, after resizing)")
    gc = np.full((H, W), cv2.GC_PR_BGD, np.uint8)
    if box is not None:
        x0, y0, x1, y1 = (round(v) for v in box)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
        if x1 - x0 < 2 or y1 - y0 < 2:
            raise ConfigError(f"preprocess.object_box: {list(box)} leaves no area inside the {W}x{H} frame; "
                              f"expected [x0, y0, x1, y1] in output pixels with x0 < x1, y0 < y1")
        gc[:] = cv2.GC_BGD
        gc[y0:y1, x0:x1] = cv2.GC_PR_FGD
    else:
        gc[_disks((H, W), points, int(POINT_REACH * max(H, W)))] = cv2.GC_PR_FGD
    gc[_disks((H, W), points, SEED_RADIUS_PX)] = cv2.GC_FGD
    gc[_disks((H, W), negative_points, SEED_RADIUS_PX)] = cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(np.ascontiguousarray(image[..., ::-1]), gc, None, bgd, fgd, GRABCUT_ITERS, cv2.GC_INIT_WITH_MASK)
    fg = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    if n <= 1:
        raise InputError("GrabCut object mask: empty; the prompts do not separate the object from its "
                         "surroundings (tighten preprocess.object_box or add object_points)")
    if len(points):
        keep = np.unique(comp[np.floor(points[:, 1]).astype(int), np.floor(points[:, 0]).astype(int)])
        keep = keep[keep > 0]
    else:
        keep = [1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))]
    mask = np.isin(comp, keep)
    if not mask.any():
        raise InputError("GrabCut object mask: no foreground under the positive points; move them onto the object")
    return mask

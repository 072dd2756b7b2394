"""Human and object masks for every frame, from a frame-0 mask or prompts, carried through the video.

Two ways to carry a frame-0 mask to later frames:
  * `masks_with_sam`: SAM on every frame, prompted with the tracked points (tracks that started inside the
    frame-0 mask are positive, those that started outside negative), as the paper prompts SAM with tracks (Eq. 2).
  * `carry_mask_with_flow`: weight-free; each frame's mask is the previous one pulled along DIS optical flow,
    small holes filled.
A frame whose carried mask comes out empty (the target left the view or is occluded) is kept empty and logged,
never filled in: later stages handle empty frames explicitly. An empty frame-0 mask is an error.
"""

from __future__ import annotations

import logging
from typing import Optional

import cv2
import numpy as np

from arthoi_jax.errors import InputError
from arthoi_jax.preprocess.lk_tracker import check_frames, dense_flow

log = logging.getLogger("arthoi_jax")


def check_first_mask(mask: np.ndarray, size_hw: tuple[int, int], what: str) -> np.ndarray:
    """[H, W] bool, non-empty, of the video's size; else InputError naming `what`."""
    mask = np.asarray(mask)
    if mask.shape != tuple(size_hw):
        raise InputError(f"{what}: mask of shape {list(mask.shape)} for frames of size {list(size_hw)}")
    if not mask.any():
        raise InputError(f"{what}: the frame-0 mask is empty; the target must be visible in frame 0 "
                         f"(check the mask image or the prompts)")
    return mask.astype(bool)


def log_empty_frames(masks: np.ndarray, what: str) -> None:
    empty = np.flatnonzero(~masks.reshape(len(masks), -1).any(axis=1))
    if empty.size:
        log.warning("%s: mask empty in %d of %d frames (%s); kept empty", what, empty.size, len(masks),
                    ", ".join(str(int(t)) for t in empty[:10]) + (" ..." if empty.size > 10 else ""))


def fill_small_holes(mask: np.ndarray, max_fraction: float) -> np.ndarray:
    """Fills holes (background components not touching the border) smaller than `max_fraction` of the mask."""
    holes = ~mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(holes.astype(np.uint8), connectivity=4)
    H, W = mask.shape
    out = mask.copy()
    for i in range(1, count):
        x, y, w, h, area = stats[i]
        touches = x == 0 or y == 0 or x + w == W or y + h == H
        if not touches and area <= max_fraction * mask.sum():
            out[labels == i] = True
    return out


def carry_mask_with_flow(frames: np.ndarray, mask0: np.ndarray, max_hole_fraction: float = 0.05) -> np.ndarray:
    """Frame-0 mask carried through the video by DIS flow. frames: [T, H, W, 3] uint8; mask0: [H, W] bool ->
    [T, H, W] bool (frame 0 is `mask0`).

    Each pixel of frame t takes the mask value where the backward flow says it came from in frame t-1. Flow
    fails inside regions without texture (or with stripes along the motion), which leaves holes; holes smaller
    than `max_hole_fraction` of the mask are filled (larger ones, e.g. a real opening, are kept). Known bias:
    background just uncovered behind a moving part inherits the part's smooth flow, so the mask lags there.
    """
    check_frames(frames)
    T, H, W, _ = frames.shape
    mask0 = check_first_mask(mask0, (H, W), "mask")
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    out = np.zeros((T, H, W), bool)
    out[0] = mask0
    for t in range(1, T):
        backward = dense_flow(frames[t], frames[t - 1])
        pulled = cv2.remap(out[t - 1].astype(np.float32), xs + backward[..., 0], ys + backward[..., 1],
                           cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        out[t] = fill_small_holes(pulled >= 0.5, max_hole_fraction)
    return out


def spread(points: np.ndarray, k: int) -> np.ndarray:
    """At most k of the points, spread over the set (farthest-point sampling, deterministic)."""
    if len(points) <= k:
        return points
    chosen = [int(np.argmin(np.linalg.norm(points - points.mean(0), axis=1)))]
    dist = np.linalg.norm(points - points[chosen[0]], axis=1)
    for _ in range(k - 1):
        chosen.append(int(np.argmax(dist)))
        dist = np.minimum(dist, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return points[chosen]


def masks_with_sam(frames: np.ndarray, sam, mask0: np.ndarray, tracks: np.ndarray, visibility: np.ndarray,
                   started_inside: np.ndarray, *, num_positive: int = 8, num_negative: int = 8,
                   box_margin_px: Optional[float] = None) -> np.ndarray:
    """Frame-0 mask carried by SAM prompted with tracked points on every later frame.

    Args:
      frames: [T, H, W, 3] uint8; sam: a `SamAdapter` (anything with its `predict`); mask0: [H, W] bool.
      tracks: [T, N, 2] pixels and visibility: [T, N] bool of points tracked from frame 0.
      started_inside: [N] bool, which tracks began inside `mask0`.
      num_positive, num_negative: prompts per frame, spread over the visible points.
      box_margin_px: when set, also prompt with the positive tracks' bounding box grown by this margin.
    Returns:
      [T, H, W] bool; frame 0 is `mask0`. A frame with no visible positive track is left empty.
    """
    check_frames(frames)
    T, H, W, _ = frames.shape
    out = np.zeros((T, H, W), bool)
    out[0] = check_first_mask(mask0, (H, W), "mask")
    for t in range(1, T):
        vis = visibility[t]
        pos = tracks[t, vis & started_inside]
        neg = tracks[t, vis & ~started_inside]
        if len(pos) == 0:
            continue
        box = None
        if box_margin_px is not None:
            lo = np.maximum(pos.min(0) - box_margin_px, 0)
            hi = np.minimum(pos.max(0) + box_margin_px, [W, H])
            box = np.concatenate([lo, hi]) if np.all(hi > lo) else None
        out[t] = sam.predict(frames[t], spread(pos, num_positive), spread(neg, num_negative), box)
    return out

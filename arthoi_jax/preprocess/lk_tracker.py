"""Weight-free point tracking: OpenCV pyramidal Lucas-Kanade, or chained DIS dense flow, each with a
forward-backward check; and the DIS dense flow helper.

Coordinates in and out are the bundle's (pixel centres at +0.5); OpenCV puts pixel centres at integers, so
points are shifted by -0.5 on the way in and +0.5 on the way out, and nowhere else.

A track is followed frame to frame (t-1 -> t). It ends, and is invisible from then on, when LK fails, when
tracking the new position back to t-1 misses the old one by more than `fb_threshold_px` (drift breaks this
round trip), when the matched windows differ by more than `max_patch_error` grey levels on average (an
occluder sliding over the point keeps the round trip consistent but changes the window's content), or when it
leaves the image. An ended track keeps its last position.
"""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from arthoi_jax.errors import InputError


def check_frames(frames: np.ndarray, name: str = "frames") -> None:
    """Raises InputError unless frames is [T, H, W, 3] uint8 with T >= 2."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"{name}: expected [T, H, W, 3] uint8 RGB, got {list(frames.shape)} {frames.dtype}")
    if frames.shape[0] < 2:
        raise InputError(f"{name}: need at least 2 frames to track, got T={frames.shape[0]}")


def check_points(points: np.ndarray, height: int, width: int, name: str) -> np.ndarray:
    """[N, 2] (x, y) finite and inside the image [0, W] x [0, H], else InputError naming the first bad point."""
    points = np.asarray(points, dtype=np.float64)
    if points.size == 0:
        return points.reshape(0, 2)
    if points.ndim != 2 or points.shape[1] != 2:
        raise InputError(f"{name}: expected an [N, 2] array of (x, y) pixels, got shape {list(points.shape)}")
    bad = ~np.isfinite(points).all(axis=1)
    bad |= (points[:, 0] < 0) | (points[:, 0] > width) | (points[:, 1] < 0) | (points[:, 1] > height)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{name}: point {i} at (x, y) = {points[i].tolist()} lies outside the {width}x{height} "
                         f"image (expected 0 <= x <= {width}, 0 <= y <= {height}, pixel centres at +0.5)")
    return points


def track_points(frames: np.ndarray, queries: np.ndarray, *, window_px: int = 21, levels: int = 3,
                 fb_threshold_px: float = 1.0, max_patch_error: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Tracks frame-0 points through a video.

    Args:
      frames: [T, H, W, 3] uint8 RGB, T >= 2.
      queries: [N, 2] (x, y) pixels at frame 0.
      window_px: LK window side in pixels; levels: pyramid levels above the full image.
      fb_threshold_px: largest forward-backward round-trip error of a visible point.
      max_patch_error: largest mean absolute grey-level difference (0..255) between the matched LK windows.
    Returns:
      tracks [T, N, 2] float32 (x, y) pixels (row 0 equals the queries) and visibility [T, N] bool.
    Raises:
      InputError: malformed frames, or a query outside the image.
    """
    check_frames(frames)
    T, H, W, _ = frames.shape
    q = check_points(queries, H, W, "queries")
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    lk = dict(winSize=(window_px, window_px), maxLevel=levels,
              criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 0.003))
    pos = (q - 0.5).astype(np.float32)  # OpenCV coordinates
    tracks = np.empty((T, len(q), 2), np.float32)
    vis = np.zeros((T, len(q)), bool)
    tracks[0], vis[0] = pos, True
    alive = np.ones(len(q), bool)
    for t in range(1, T):
        idx = np.flatnonzero(alive)
        if idx.size:
            p0 = pos[idx].reshape(-1, 1, 2)
            p1, st1, err = cv2.calcOpticalFlowPyrLK(grey[t - 1], grey[t], p0, None, **lk)
            back, st2, _ = cv2.calcOpticalFlowPyrLK(grey[t], grey[t - 1], p1, None, **lk)
            p1, back = p1.reshape(-1, 2), back.reshape(-1, 2)
            fb = np.linalg.norm(back - p0.reshape(-1, 2), axis=1)
            inside = (p1[:, 0] >= -0.5) & (p1[:, 0] <= W - 0.5) & (p1[:, 1] >= -0.5) & (p1[:, 1] <= H - 0.5)
            ok = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb <= fb_threshold_px) & inside & np.isfinite(p1).all(1)
            ok &= err.ravel() <= max_patch_error
            pos[idx[ok]] = p1[ok]
            alive[idx[~ok]] = False
        tracks[t], vis[t] = pos, alive
    return tracks + np.float32(0.5), vis


def grid_queries(mask: np.ndarray, step_px: int, *, max_points: Optional[int] = None,
                 erode_px: int = 0, allow_empty: bool = False) -> np.ndarray:
    """Pixel centres on a regular grid inside a mask: [N, 2] float32 (x, y), row-major order.

    Args:
      mask: [H, W] bool; step_px: grid spacing; max_points: keep this many, evenly spread, when there are more;
      erode_px: first shrink the mask by this many pixels, so points avoid its boundary (mixed pixels track badly).
      allow_empty: return [0, 2] instead of raising when no grid point falls inside the mask.
    Raises:
      InputError: no grid point falls inside the (eroded) mask and `allow_empty` is False.
    """
    mask = np.asarray(mask, bool)
    if mask.ndim != 2:
        raise InputError(f"mask: expected [H, W] bool, got shape {list(mask.shape)}")
    if erode_px > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode_px + 1, 2 * erode_px + 1))
        eroded = cv2.erode(mask.astype(np.uint8), kernel).astype(bool)
        mask = eroded if eroded.any() else mask  # a thin mask keeps its points rather than losing all
    off = step_px // 2
    ys, xs = np.mgrid[off:mask.shape[0]:step_px, off:mask.shape[1]:step_px]
    keep = mask[ys, xs]
    if not keep.any() and allow_empty:
        return np.zeros((0, 2), np.float32)
    if not keep.any():
        raise InputError(f"mask: no grid point with step {step_px} px falls inside the mask "
                         f"({int(mask.sum())} pixels); lower preprocess.grid_step_px or check the mask")
    pts = np.stack([xs[keep], ys[keep]], axis=1).astype(np.float32) + 0.5
    if max_points is not None and len(pts) > max_points:
        pts = pts[np.linspace(0, len(pts) - 1, max_points).round().astype(int)]
    return pts


def _dis() -> "cv2.DISOpticalFlow":
    # MEDIUM preset refined down to full resolution (finest scale 0) with more variational iterations:
    # measured on the synthetic scenes (benchmarks/tracking.py) this halves the endpoint error of the preset.
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setFinestScale(0)
    dis.setVariationalRefinementIterations(25)
    return dis


def dense_flow(frame_a: np.ndarray, frame_b: np.ndarray) -> np.ndarray:
    """DIS optical flow from a to b: [H, W, 2] float32, the (dx, dy) displacement of each pixel of a in pixels.

    frame_a, frame_b: [H, W, 3] uint8 RGB. A displacement is the same in OpenCV's and our pixel convention.
    """
    a = cv2.cvtColor(np.ascontiguousarray(frame_a), cv2.COLOR_RGB2GRAY)
    b = cv2.cvtColor(np.ascontiguousarray(frame_b), cv2.COLOR_RGB2GRAY)
    return _dis().calc(a, b, None)


def _sample(flow: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Bilinear sample of an [H, W, 2] flow at [N, 2] OpenCV-convention positions -> [N, 2]."""
    x, y = pos[:, 0:1].astype(np.float32), pos[:, 1:2].astype(np.float32)
    return np.concatenate([cv2.remap(flow[..., k], x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                           for k in range(2)], axis=1)


def track_points_dense(frames: np.ndarray, queries: np.ndarray, *,
                       fb_threshold_px: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Tracks frame-0 points by chaining DIS dense flow frame to frame, with the same forward-backward rule
    as `track_points` (the backward flow is a second dense field, sampled where the point landed).

    Dense variational flow keeps motion boundaries sharper than LK's square windows, which straddle them on
    thin parts (door frames, handles). Same arguments, returns and errors as `track_points`.
    """
    check_frames(frames)
    T, H, W, _ = frames.shape
    q = check_points(queries, H, W, "queries")
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    dis = _dis()
    pos = (q - 0.5).astype(np.float32)
    tracks = np.empty((T, len(q), 2), np.float32)
    vis = np.zeros((T, len(q)), bool)
    tracks[0], vis[0] = pos, True
    alive = np.ones(len(q), bool)
    for t in range(1, T):
        forward = dis.calc(grey[t - 1], grey[t], None)
        backward = dis.calc(grey[t], grey[t - 1], None)
        p1 = pos + _sample(forward, pos)
        fb = np.linalg.norm(p1 + _sample(backward, p1) - pos, axis=1)
        inside = (p1[:, 0] >= -0.5) & (p1[:, 0] <= W - 0.5) & (p1[:, 1] >= -0.5) & (p1[:, 1] <= H - 0.5)
        ok = alive & (fb <= fb_threshold_px) & inside & np.isfinite(p1).all(1)
        pos[ok] = p1[ok]
        alive = ok
        tracks[t], vis[t] = pos, alive
    return tracks + np.float32(0.5), vis
